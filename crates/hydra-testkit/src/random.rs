//! Seeded random tensors for tests: the same seed gives the same values on every run and
//! thread, so a failing tolerance test reproduces (Burn's `Tensor::random` draws from a
//! process-wide generator that tests running in parallel share).

use burn::tensor::{Distribution, Device, Tensor, TensorData};
use hydra_core::rng::SplitMix64;

/// A float tensor of `shape` drawn from `dist` (`Normal(mean, std)` or `Uniform(lo, hi)`)
/// with SplitMix64 seeded by `seed`.
pub fn random<const D: usize>(shape: [usize; D], dist: Distribution, seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = SplitMix64::new(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| match dist {
            Distribution::Normal(mean, std) => (mean + std * rng.normal()) as f32,
            Distribution::Uniform(lo, hi) => rng.range(lo, hi) as f32,
            other => panic!("random: {other:?} is not offered"),
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}
