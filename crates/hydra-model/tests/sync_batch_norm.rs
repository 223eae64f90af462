//! SyncBatchNorm: two replicas on two threads, each with half of a batch and a reducer that
//! sums across them ([`hydra_model::kernels::sync_bn`]), compute what one BatchNorm computes
//! on the whole batch: outputs, the input's gradient, γ's and β's gradients (summed over the
//! replicas), running statistics (the unbiased variance over the whole batch's count).

use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};

use burn::prelude::*;
use hydra_model::batch_norm::{BatchNorm, BatchNormConfig};
use hydra_model::kernels::sync_bn::{self, ChannelReduce};

mod common;
use common::{close_rel, vec1, vec4};

/// Two replicas' meeting point: each leaves its values, both read the sum (in replica order).
struct Pair {
    barrier: Barrier,
    slots: Mutex<[Vec<f64>; 2]>,
}

struct Replica {
    rank: usize,
    pair: Arc<Pair>,
}

impl ChannelReduce for Replica {
    fn all_reduce_sum(&self, values: &mut [f64]) {
        self.pair.slots.lock().unwrap()[self.rank] = values.to_vec();
        self.pair.barrier.wait();
        {
            let slots = self.pair.slots.lock().unwrap();
            for (i, v) in values.iter_mut().enumerate() {
                *v = slots[0][i] + slots[1][i];
            }
        }
        self.pair.barrier.wait();
    }

    fn replicas(&self) -> usize {
        2
    }
}

const B: usize = 4;
const C: usize = 3;
const H: usize = 5;
const W: usize = 7;

fn data(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = hydra_core::SplitMix64::new(seed);
    (0..n).map(|_| (rng.uniform() * 4.0 - 1.5) as f32).collect()
}

struct Outcome {
    y: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    running: [Vec<f32>; 3],
}

/// BatchNorm (γ, β not the identity) on images `images` of the batch: forward, then the
/// gradient of Σ y · g for the fixed upstream gradient `g`.
fn run(images: std::ops::Range<usize>) -> Outcome {
    let device = Device::flex().autodiff();
    let mut bn: BatchNorm = BatchNormConfig::new(C).init(&device);
    bn.gamma = burn::module::Param::from_tensor(Tensor::from_floats([1.5, -0.5, 2.0], &device)).set_require_grad(true);
    bn.beta = burn::module::Param::from_tensor(Tensor::from_floats([0.25, 0.0, -1.0], &device)).set_require_grad(true);
    let plane = C * H * W;
    let (x, g) = (data(1, B * plane), data(2, B * plane));
    let n = images.len();
    let part = |v: &[f32]| v[images.start * plane..images.end * plane].to_vec();
    let x = Tensor::<4>::from_data(TensorData::new(part(&x), [n, C, H, W]), &device).require_grad();
    let g = Tensor::<4>::from_data(TensorData::new(part(&g), [n, C, H, W]), &device);
    let y = bn.forward(x.clone());
    let grads = (y.clone() * g).sum().backward();
    let grad = |t: &Tensor<1>| vec1(t.grad(&grads).unwrap());
    Outcome {
        y: vec4(y),
        dx: vec4(x.grad(&grads).unwrap()),
        dgamma: grad(&bn.gamma.val()),
        dbeta: grad(&bn.beta.val()),
        running: bn.running_statistics().map(vec1),
    }
}

#[test]
fn two_replicas_with_half_a_batch_each_compute_the_whole_batch() {
    let whole = run(0..B);
    let pair = Arc::new(Pair { barrier: Barrier::new(2), slots: Mutex::new([Vec::new(), Vec::new()]) });
    let halves: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let pair = pair.clone();
                s.spawn(move || {
                    sync_bn::set_reducer(Some(Rc::new(Replica { rank, pair })));
                    let out = run(rank * B / 2..(rank + 1) * B / 2);
                    sync_bn::set_reducer(None);
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cat = |f: fn(&Outcome) -> &Vec<f32>| [f(&halves[0]).clone(), f(&halves[1]).clone()].concat();
    // The sums differ from one process's only in the order of f64 additions.
    close_rel(&cat(|o| &o.y), &whole.y, 1e-6, "output");
    close_rel(&cat(|o| &o.dx), &whole.dx, 1e-5, "input gradient");
    let sum = |f: fn(&Outcome) -> &Vec<f32>| f(&halves[0]).iter().zip(f(&halves[1])).map(|(a, b)| a + b).collect::<Vec<f32>>();
    close_rel(&sum(|o| &o.dgamma), &whole.dgamma, 1e-5, "γ's gradient, summed over the replicas");
    close_rel(&sum(|o| &o.dbeta), &whole.dbeta, 1e-5, "β's gradient, summed over the replicas");
    for (k, what) in ["running mean", "running variance", "batches tracked"].iter().enumerate() {
        for half in &halves {
            close_rel(&half.running[k], &whole.running[k], 1e-6, what);
        }
    }
    // Without the reducer each half normalises with its own statistics: another output.
    let alone = run(0..B / 2);
    let off = alone.y.iter().zip(&whole.y).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(off > 1e-2, "per-replica statistics differ visibly ({off})");
    // And the input's gradient of a replica is not its share of the whole batch's.
    assert!(alone.dx.iter().zip(&whole.dx).any(|(a, b)| (a - b).abs() > 1e-3));
}
