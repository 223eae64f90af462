//! The replicas of one process (`training.devices`): one thread per device, exchanging through
//! shared memory. A sum is taken in replica order on every replica, so all of them hold the
//! same bits; a broadcast copies replica 0's bytes.

use std::sync::{Arc, Barrier, Mutex};

use super::Collective;

struct Shared {
    barrier: Barrier,
    f64s: Mutex<Vec<Vec<f64>>>,
    f32s: Mutex<Vec<Vec<f32>>>,
    bytes: Mutex<Vec<u8>>,
}

/// Replica `rank` of a group of threads made by [`ThreadGroup::new`].
pub struct ThreadGroup {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl ThreadGroup {
    /// The `n` members of a new group, replica 0 first: give each to its own thread.
    pub fn new(n: usize) -> Vec<ThreadGroup> {
        let shared = Arc::new(Shared { barrier: Barrier::new(n), f64s: Mutex::new(vec![Vec::new(); n]), f32s: Mutex::new(vec![Vec::new(); n]), bytes: Mutex::new(Vec::new()) });
        (0..n).map(|rank| ThreadGroup { rank, size: n, shared: shared.clone() }).collect()
    }

    fn sum<T: Copy + std::ops::Add<Output = T>>(&self, slots: &Mutex<Vec<Vec<T>>>, values: &mut [T]) {
        slots.lock().expect("replica slots")[self.rank] = values.to_vec();
        self.shared.barrier.wait();
        {
            let all = slots.lock().expect("replica slots");
            for (i, v) in values.iter_mut().enumerate() {
                *v = (1..self.size).fold(all[0][i], |acc, r| acc + all[r][i]);
            }
        }
        // Nobody writes its slot again before every replica has read them all.
        self.shared.barrier.wait();
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        self.sum(&self.shared.f64s, values);
    }

    fn all_reduce_sum_f32(&self, values: &mut [f32]) {
        self.sum(&self.shared.f32s, values);
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        if self.rank == 0 {
            *self.shared.bytes.lock().expect("broadcast") = bytes.clone();
        }
        self.shared.barrier.wait();
        if self.rank != 0 {
            *bytes = self.shared.bytes.lock().expect("broadcast").clone();
        }
        self.shared.barrier.wait();
    }

    /// The other replicas wait in a collective that will not complete: the process ends.
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}
