//! Deterministic parameter initialisation, identical on every backend.
//!
//! Burn's own random initialisers draw from the backend's generator, so the same seed gives
//! different weights on flex, wgpu and cuda. Training runs must be reproducible across
//! backends and across resumes, so weights are drawn here on the host from a seeded
//! generator and uploaded.

/// The seeded generator (from `hydra-core`, shared with the data pipeline).
pub use hydra_core::SplitMix64;

/// `n` samples from N(0, std^2) as f32.
pub fn normal_vec(rng: &mut SplitMix64, n: usize, std: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * std) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_variance() {
        let mut g = SplitMix64::new(7);
        let v = normal_vec(&mut g, 200_000, 1.0);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }
}
