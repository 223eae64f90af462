//! The portable path, what the GPU backends compute (Burn's own operations in place of
//! hydra's CPU kernels), run on burn-flex through `kernels::set_portable_only` and held to the
//! bounds the GPU backends are held to (`tests/gpu_backends.rs`). Every test in this file (one
//! process) turns the switch on first, so any of them may run on it.
//!
//! Measured (--nocapture): inference 1.7e-4 segm / 3.0e-4 depth × max |reference| (hydra's
//! CPU kernels: 2.2e-5 / 4.8e-5), where the outputs move by 4.1e-4 / 6.1e-4 when the input
//! moves by one ulp (bound: twice that); one SGD step against PyTorch: losses within 3.4e-6, updated
//! tensors median 0.75 % / worst 3.1 % of their update, BatchNorm statistics 5.3e-7, where the
//! same step with its input moved by one ulp moves by 1.2e-5, 1.0 % / 4.7 % and 1.1e-6.

mod common;

use burn::prelude::*;
use common::selftest_fixtures;
use hydra_train::reduction_check::ReductionCheck;
use hydra_train::selftest::{flex_step, inference_errors, inference_nudge_spread, step_against_pytorch};

fn portable() {
    hydra_model::kernels::set_portable_only(true);
}

#[test]
fn portable_path_reproduces_the_pytorch_fixture_outputs() {
    portable();
    let fx = selftest_fixtures();
    let spread = inference_nudge_spread(&fx).unwrap();
    let [segm, depth] = inference_errors(&fx, &Device::flex()).unwrap();
    eprintln!("portable path: segm {segm:.2e}, depth {depth:.2e} × max |reference|; 1-ulp spread {:.2e} / {:.2e}", spread[0], spread[1]);
    assert!(segm <= 2.0 * spread[0] && depth <= 2.0 * spread[1], "segm {segm}, depth {depth}, 1-ulp spread {spread:?}");
}

#[test]
fn portable_path_takes_the_pytorch_sgd_step() {
    portable();
    let fx = selftest_fixtures();
    let spread = flex_step(&fx, &fx.step_batch(None).unwrap()).unwrap().spread;
    let r = step_against_pytorch(&fx, &Device::flex().autodiff()).unwrap();
    eprintln!("portable path: {}\n1-ulp spread: {}", r.summary(), spread.summary());
    r.within_spread(&spread).unwrap();
}

#[test]
fn portable_path_passes_the_reduction_check_at_full_size() {
    portable();
    let device = Device::flex().autodiff();
    let encoder = hydra_model::HydraNetConfig::new(40).init(&device).encoder;
    let mut check = ReductionCheck::default();
    check.check(&encoder, &device, [2, 480, 640]).unwrap();
    assert_eq!(check.probes_passed(), 18 + 5);
}

