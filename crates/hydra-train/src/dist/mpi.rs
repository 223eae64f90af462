//! MPI as the [`Collective`] of a run across processes and machines (`mpirun -n N hydra
//! train`), through rsmpi over the system's MPI (Open MPI here). MPI's default error handler
//! is fatal: a failed or vanished rank ends the whole job, and `mpirun` names it.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::Collective;

/// Elements per MPI call (MPI counts are C ints): longer buffers go in several calls.
const MAX_COUNT: usize = 1 << 30;

/// MPI's world communicator; MPI is finalised when the last reference is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: Universe,
}

impl Mpi {
    /// Initialise MPI (one thread calls it: the training loop's). `None` when it was
    /// initialised before.
    pub fn init() -> Option<Self> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)?;
        Some(Self { world: universe.world(), _universe: universe })
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        for chunk in values.chunks_mut(MAX_COUNT) {
            let send = chunk.to_vec();
            self.world.all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }

    fn all_reduce_sum_f32(&self, values: &mut [f32]) {
        for chunk in values.chunks_mut(MAX_COUNT) {
            let send = chunk.to_vec();
            self.world.all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = [bytes.len() as u64];
        root.broadcast_into(&mut len[..]);
        bytes.resize(len[0] as usize, 0);
        for chunk in bytes.chunks_mut(MAX_COUNT) {
            root.broadcast_into(chunk);
        }
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
