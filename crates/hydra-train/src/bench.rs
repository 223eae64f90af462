//! Benchmarks: inference latency, training step time, input pipeline and synthetic
//! generation throughput, peak memory. Warm-up, repeats, median and spread.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_model::{HydraNetConfig, Task};
use serde::Serialize;

use crate::loss::{BatchLosses, DepthLoss};
use crate::objective::{LossWeighting, Objective, StepInfo};
use crate::optim::{Hyper, Optimizer, OptimizerKind};
use crate::train::TrainModule;
use crate::weighting::Weighting;

/// Timing statistics of repeated measurements, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub repeats: usize,
    /// Every run's time in the order measured: a machine whose speed changes between runs
    /// (a shared VM: a fast and a slow mode) shows it here, where median and spread hide it.
    pub samples: Vec<f64>,
}

impl Timing {
    /// Statistics of `samples` (in measured order, at least one).
    pub fn of(samples: Vec<f64>) -> Self {
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Timing { median, min: sorted[0], max: sorted[n - 1], repeats: n, samples }
    }
}

#[cfg(test)]
mod tests {
    use super::Timing;

    #[test]
    fn statistics_of_hand_picked_samples_keep_the_runs_in_order() {
        let t = Timing::of(vec![0.3, 0.1, 0.4, 0.2]);
        assert_eq!((t.median, t.min, t.max, t.repeats), (0.25, 0.1, 0.4, 4));
        assert_eq!(t.samples, [0.3, 0.1, 0.4, 0.2]);
        let t = Timing::of(vec![0.5, 0.7, 0.6]);
        assert_eq!((t.median, t.min, t.max), (0.6, 0.5, 0.7));
    }
}

/// Time `f` `repeats` times after `warmup` calls.
pub fn time(warmup: usize, repeats: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let samples = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    Timing::of(samples)
}

/// Peak resident memory of this process so far, bytes (Linux `VmHWM`), if known.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Inference latency of a `classes`-class network on `[batch, 3, h, w]` random input.
pub fn inference(device: &Device, classes: usize, batch: usize, [h, w]: [usize; 2], warmup: usize, repeats: usize, fold_bn: bool) -> Timing {
    let net = HydraNetConfig::new(classes).init(device);
    let net = if fold_bn { net.fold_batch_norm() } else { net };
    let x = Tensor::<4>::random([batch, 3, h, w], Distribution::Normal(0.0, 1.0), device);
    time(warmup, repeats, || {
        let out = net.forward(x.clone());
        // Read back: the time includes finishing the work on asynchronous backends.
        let _ = out.segm.unwrap().sum().into_scalar::<f32>();
        let _ = out.depth.unwrap().sum().into_scalar::<f32>();
    })
}

/// One training step (forward, CE + L1 on outputs upsampled to the input size, backward,
/// SGD with momentum), as the PyTorch reference step of `scripts/bench_torch.py train`, the
/// gradient made by `objective` (the fixed weights 0.5 / 0.5 of the reference when `None`).
pub fn train_step(device: &Device, classes: usize, batch: usize, [h, w]: [usize; 2], warmup: usize, repeats: usize, objective: Option<Box<dyn Objective>>) -> Timing {
    let device = device.clone().autodiff();
    let net = HydraNetConfig::new(classes).init(&device);
    // Learned task parameters (GradNorm's loss scales) are there for every objective; the
    // others leave them alone.
    let mut module = Some(TrainModule { net, task_weights: Some(crate::weighting::UncertaintyWeights::new(2, &device)) });
    let mut optim = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: false });
    let images = Tensor::<4>::random([batch, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
    let labels = Tensor::<3, Int>::random([batch, h, w], Distribution::Uniform(0.0, classes as f64), &device);
    let depth = Tensor::<3>::random([batch, h, w], Distribution::Uniform(0.5, 8.0), &device);
    let tasks = [Task::Segmentation, Task::Depth];
    let mut objective = objective.unwrap_or_else(|| Box::new(LossWeighting::new(Weighting::Fixed(vec![0.5, 0.5]))));
    // As after a first epoch of unit losses: GradNorm runs as from its second epoch.
    objective.epoch_start(tasks.len(), &crate::weighting::LossHistory { epochs: vec![vec![1.0; tasks.len()]] });
    let mut iteration = 0;
    time(warmup, repeats, || {
        let m = module.take().unwrap();
        let b = hydra_data::batch::Batch { images: images.clone(), labels: Some(labels.clone()), depth: Some(depth.clone()), normals: None };
        iteration += 1;
        let step = objective.gradients(&m, &BatchLosses { batch: b, tasks: &tasks, ignore: 255, depth: DepthLoss::L1, replica_scale: None }, StepInfo { iteration, logged: false });
        let grads = step.expect("finite losses on random inputs").grads;
        let m = optim.step(m, grads, |_| Hyper { lr: 1e-3, weight_decay: 1e-5 }, 1.0);
        // Read one weight back so that asynchronous backends finish the step.
        let _ = m.net.depth.as_ref().unwrap().out.bias.as_ref().unwrap().val().sum().into_scalar::<f32>();
        module = Some(m);
    })
}
