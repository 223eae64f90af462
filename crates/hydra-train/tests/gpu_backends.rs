//! The GPU backends compute what the CPU computes. Compiled only with `--features wgpu` and/or
//! `--features cuda` (the default test run has neither); run them on a machine with a device:
//!
//! `cargo test --release -p hydra-train --features wgpu --test gpu_backends`
//!
//! For wgpu any Vulkan driver serves, a GPU's or Mesa's lavapipe on the CPU (how these tests
//! were first run: see `scripts/gpu_check.sh`).
//!
//! On a GPU every operation takes the portable path (hydra's CPU kernels apply only on
//! burn-flex), whose summation orders differ from PyTorch's CPU kernels. Each check is held to
//! twice the spread of the same computation on flex when its input moves by one ulp, measured
//! in the same run: the network amplifies rounding (a 1-ulp input change moves the fixture's
//! outputs by 4.1e-4 / 6.1e-4 × max |output| — PyTorch's own spread between its two CPU
//! kernel paths is 3.8e-4 / 6.1e-4 — and a training step's updated tensors by 1 % of their
//! update in the median), so any valid summation order lands about that far apart.
//! The same bounds hold for the portable path on the CPU (`tests/portable_path.rs`, in the
//! default test run), which shows what a GPU run should give without a GPU.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

mod common;

use burn::tensor::Device;
use common::selftest_fixtures;
use hydra_train::selftest::{compare_step, flex_step, inference_errors, inference_nudge_spread, sgd_step, step_against_pytorch};
use hydra_train::backend::Backend;
use hydra_train::reduction_check::ReductionCheck;

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
    let fx = selftest_fixtures();
    let spread = inference_nudge_spread(&fx).unwrap();
    for (backend, device) in gpu_devices() {
        let [segm, depth] = inference_errors(&fx, &device).unwrap();
        eprintln!("{backend}: segm {segm:.2e}, depth {depth:.2e} × max |reference|; 1-ulp spread {:.2e} / {:.2e}", spread[0], spread[1]);
        assert!(segm <= 2.0 * spread[0] && depth <= 2.0 * spread[1], "{backend}: segm {segm}, depth {depth}, 1-ulp spread {spread:?}");
    }
}

/// The step of the PyTorch fixture, batch 2 × 480×640, held to twice the spread the step shows
/// on flex when its input moves by one ulp (`selftest::flex_step`; measured: losses 1.2e-5,
/// updated tensors median 1.0 % / worst 4.7 %, BatchNorm statistics 1.1e-6). A driver that
/// cannot sum this step's long reductions (Mesa's lavapipe) is refused, as `hydra train`
/// refuses it, and then only the next test compares this device's training.
#[test]
fn one_sgd_step_on_the_gpu_matches_pytorch() {
    let fx = selftest_fixtures();
    let spread = flex_step(&fx, &fx.step_batch(None).unwrap()).unwrap().spread;
    for (backend, device) in gpu_devices() {
        let device = device.autodiff();
        let encoder = hydra_model::HydraNetConfig::new(40).init(&device).encoder;
        if let Err(e) = ReductionCheck::default().check(&encoder, &device, [2, 480, 640]) {
            eprintln!("{backend}: NOT COMPARED with PyTorch at batch 2 × 480×640; `hydra train` refuses this device there: {e}");
            continue;
        }
        let r = step_against_pytorch(&fx, &device).unwrap();
        eprintln!("{backend}: {}\n1-ulp spread: {}", r.summary(), spread.summary());
        r.within_spread(&spread).unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}

/// The same step on 240×320 centre crops (every reduction short enough for lavapipe), on the
/// GPU against burn-flex (pinned to PyTorch at full size by `tests/pytorch_sgd_step.rs`), held
/// to twice flex's own 1-ulp spread at this size (measured: losses 5.7e-5, median 1.6 % /
/// worst 4.1 %, BatchNorm statistics 2.5e-6; lavapipe: 1.4e-4, 1.3 % / 3.3 %, 1.7e-6).
#[test]
fn one_sgd_step_on_the_gpu_matches_flex_on_crops() {
    let fx = selftest_fixtures();
    let host = fx.step_batch(Some([240, 320])).unwrap();
    let flex = flex_step(&fx, &host).unwrap();
    for (backend, device) in gpu_devices() {
        let device = device.autodiff();
        let encoder = hydra_model::HydraNetConfig::new(40).init(&device).encoder;
        ReductionCheck::default().check(&encoder, &device, [2, 240, 320]).unwrap();
        let (losses, state) = sgd_step(&fx, &device, &host).unwrap();
        let r = compare_step(&fx, losses, &state, flex.losses, &flex.state).unwrap();
        eprintln!("{backend}: {}\n1-ulp spread: {}", r.summary(), flex.spread.summary());
        r.within_spread(&flex.spread).unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}
