//! The GPU backends compute what the CPU computes. Compiled only with `--features wgpu` and/or
//! `--features cuda` (the default test run has neither); run them on a machine with a device:
//!
//! `cargo test --release -p hydra-train --features wgpu --test gpu_backends`
//!
//! For wgpu any Vulkan driver serves, a GPU's or Mesa's lavapipe on the CPU (how these tests
//! were first run: see `scripts/gpu_check.sh`).
//!
//! On a GPU every operation takes Burn's portable path (hydra's CPU kernels apply only on
//! burn-flex), whose summation orders differ from PyTorch's CPU kernels; the bounds are
//! PyTorch's own spread between its two CPU kernel paths on the same fixtures
//! (`scripts/parity_budget.py`): inference 3.8e-4 / 6.1e-4 × max |reference|; one SGD step:
//! loss 1e-5, updates median 0.91 % and worst 3.1 % of the update, BatchNorm statistics 8e-7.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

mod common;

use burn::tensor::Device;
use common::{fixtures, max_errors, sgd_step_against_pytorch};
use hydra_data::{image_io, npy};
use hydra_model::weights;
use hydra_train::backend::Backend;
use hydra_train::predict::predict;

/// The GPU backends compiled into this test binary.
fn gpu_devices() -> Vec<(Backend, Device)> {
    let mut v = Vec::new();
    for b in [Backend::Wgpu, Backend::Cuda] {
        if let Ok(d) = b.device() {
            v.push((b, d));
        }
    }
    assert!(!v.is_empty(), "built with a GPU feature, so a GPU backend must be compiled in");
    v
}

#[test]
fn fixture_outputs_on_the_gpu_match_pytorch() {
    let img = image_io::read_rgb(&fixtures().join("samples/nyud/000464.png")).unwrap();
    for (backend, device) in gpu_devices() {
        let (model, _) = weights::load_model(&fixtures().join("pytorch/hydranet40_s0.ckpt"), None, &device).unwrap();
        let pred = predict(&model, &device, &img);
        assert_eq!(pred.output_size, [120, 160], "{backend}");
        for (name, ours, fixture, bound) in [
            ("segm", pred.segm_logits.as_ref().unwrap(), "pytorch/hydranet40_s0_000464_segm.npy", 3.8e-4f32),
            ("depth", pred.depth_raw.as_ref().unwrap(), "pytorch/hydranet40_s0_000464_depth.npy", 6.1e-4),
        ] {
            let reference = npy::read(&fixtures().join(fixture)).unwrap().to_f32();
            let (err, scale) = max_errors(ours, &reference);
            eprintln!("{backend} {name}: max abs err {err:e}, ratio {:e}", err / scale);
            assert!(err <= bound * scale, "{backend} {name}: {err} > {bound} × {scale}");
        }
    }
}

#[test]
fn one_sgd_step_on_the_gpu_matches_pytorch() {
    for (backend, device) in gpu_devices() {
        let r = sgd_step_against_pytorch(&device.autodiff());
        for (g, w) in r.losses.iter().zip(&r.reference_losses) {
            assert!((g - w).abs() <= 1e-5 * w.abs(), "{backend}: loss {g} vs {w}");
        }
        assert!(r.worst.0 < 0.0313, "{backend}: {} differs by {:.3} of its update", r.worst.1, r.worst.0);
        assert!(r.median < 0.0091, "{backend}: median tensor differs by {:.3} of its update", r.median);
        assert!(r.worst_bn.0 < 8e-7, "{backend}: {} differs by {:.2e}", r.worst_bn.1, r.worst_bn.0);
    }
}
