//! hydra's optimisers take the steps `torch.optim` takes (fixtures/optim/torch_optim.json,
//! made by scripts/make_optim_fixture.py): SGD with momentum, with and without Nesterov;
//! Adam with L2 weight decay; AdamW with decoupled weight decay; two parameter groups with
//! their own learning rate and weight decay; SGD after clipping the global gradient norm;
//! five steps of changing, non-zero gradients, through the real `Optimizer::step` on a module.
//!
//! Bound, from one principle: both sides compute in f32 with different association, so each
//! step may move a value by a few rounding errors of its own size; allowed: 4 ulp of
//! max(|p|, 1) per step taken (4.8e-7 × step; measured: at most 1.1e-7 after 5 steps). The fixture tells the variants apart: the
//! other rule of each pair (Adam ↔ AdamW, Nesterov ↔ plain, β1 ↔ β2) misses by far more.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use hydra_train::optim::{grad_norm, Hyper, Optimizer, OptimizerKind};
use serde_json::Value;

#[derive(Module, Debug)]
struct Two {
    a: Param<Tensor<1>>,
    b: Param<Tensor<2>>,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/optim/torch_optim.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn kind(case: &Value) -> OptimizerKind {
    let h = &case["hyper"];
    let f = |k: &str| h[k].as_f64().unwrap();
    match case["optimizer"].as_str().unwrap() {
        "SGD" => OptimizerKind::Sgd { momentum: f("momentum"), nesterov: h["nesterov"].as_bool().unwrap() },
        "Adam" => OptimizerKind::Adam { beta1: h["betas"][0].as_f64().unwrap(), beta2: h["betas"][1].as_f64().unwrap(), eps: f("eps") },
        "AdamW" => OptimizerKind::AdamW { beta1: h["betas"][0].as_f64().unwrap(), beta2: h["betas"][1].as_f64().unwrap(), eps: f("eps") },
        o => panic!("{o}"),
    }
}

/// Run `kind` on the fixture's gradients with `case`'s groups and clipping; per step, the
/// largest error against torch in units of max(|p|, 1), and the gradient norms.
fn run(fx: &Value, case: &Value, kind: OptimizerKind) -> (Vec<f64>, Vec<f64>) {
    let device = Device::flex().autodiff();
    let b_shape: Vec<usize> = fx["b_shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let a = Tensor::<1>::from_data(TensorData::new(floats(&fx["a0"]), [5]), &device);
    let b = Tensor::<2>::from_data(TensorData::new(floats(&fx["b0"]), [b_shape[0], b_shape[1]]), &device);
    let mut module = Two { a: Param::from_tensor(a), b: Param::from_tensor(b) };
    let groups = case["groups"].as_array().unwrap();
    let hyper = |path: &str| {
        let g = &groups[if path == "a" { 0 } else { assert_eq!(path, "b"); 1 }];
        Hyper { lr: g["lr"].as_f64().unwrap(), weight_decay: g["weight_decay"].as_f64().unwrap() }
    };
    let mut optim = Optimizer::new(kind);
    let (mut errors, mut norms) = (Vec::new(), Vec::new());
    for (step, want) in fx["grads"].as_array().unwrap().iter().zip(case["steps"].as_array().unwrap()) {
        // d/dθ Σ θ·g = g: the backward pass hands the optimiser exactly the fixture's gradient.
        let ga = Tensor::<1>::from_data(TensorData::new(floats(&step[0]), [5]), &device);
        let gb = Tensor::<2>::from_data(TensorData::new(floats(&step[1]), [b_shape[0], b_shape[1]]), &device);
        let loss = (module.a.val() * ga).sum() + (module.b.val() * gb).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &module);
        let norm = grad_norm(&module, &grads);
        norms.push(norm);
        let scale = case["clip"].as_f64().map_or(1.0, |max| Optimizer::clip_scale(norm, max));
        module = optim.step(module, grads, hyper, scale);
        let got_a: Vec<f32> = module.a.val().into_data().try_to_vec::<f32>().unwrap();
        let got_b: Vec<f32> = module.b.val().into_data().try_to_vec::<f32>().unwrap();
        let err = got_a.iter().zip(floats(&want["a"])).chain(got_b.iter().zip(floats(&want["b"]))).map(|(g, w)| ((g - w).abs() / w.abs().max(1.0)) as f64).fold(0.0, f64::max);
        errors.push(err);
    }
    (errors, norms)
}

const ULP: f64 = f32::EPSILON as f64;

fn bound(step: usize) -> f64 {
    4.0 * ULP * (step + 1) as f64
}

#[test]
fn every_optimiser_takes_torchs_steps() {
    let fx = fixture();
    for (name, case) in fx["cases"].as_object().unwrap() {
        let (errors, norms) = run(&fx, case, kind(case));
        eprintln!("{name}: error per step (units of max(|p|, 1)): {:?}", errors.iter().map(|e| format!("{e:.1e}")).collect::<Vec<_>>());
        for (k, e) in errors.iter().enumerate() {
            assert!(*e <= bound(k), "{name}, step {}: {e:.3e} > {:.3e}", k + 1, bound(k));
        }
        if case["clip"].is_number() {
            let want: Vec<f64> = case["steps"].as_array().unwrap().iter().map(|s| s["grad_norm"].as_f64().unwrap()).collect();
            for (g, w) in norms.iter().zip(&want) {
                assert!((g - w).abs() <= 4.0 * ULP * w, "global norm {g} vs torch {w}");
            }
            assert!(want.iter().any(|&n| n > 4.0) && want.iter().any(|&n| n < 4.0), "the fixture clips some steps and not others: {want:?}");
        }
    }
}

#[test]
fn the_fixture_tells_each_rule_from_its_neighbour() {
    let fx = fixture();
    let c = &fx["cases"];
    let far = |errors: Vec<f64>| {
        let e = errors.iter().cloned().fold(0.0, f64::max);
        eprintln!("neighbour's error {e:.2e} (bound {:.2e})", bound(4));
        e > 100.0 * bound(4)
    };
    let OptimizerKind::Adam { beta1, beta2, eps } = kind(&c["adam"]) else { panic!() };
    assert!(far(run(&fx, &c["adamw"], OptimizerKind::Adam { beta1, beta2, eps }).0), "Adam's L2 decay passes for AdamW's");
    assert!(far(run(&fx, &c["adam"], OptimizerKind::AdamW { beta1, beta2, eps }).0), "AdamW's decay passes for Adam's");
    assert!(far(run(&fx, &c["adam"], OptimizerKind::Adam { beta1: beta2, beta2: beta1, eps }).0), "swapped betas pass");
    assert!(far(run(&fx, &c["sgd_nesterov"], OptimizerKind::Sgd { momentum: 0.9, nesterov: false }).0), "plain momentum passes for Nesterov");
    // Without the clipping the clipped case's steps are not reached.
    let unclipped = { let mut case = c["sgd_clipped"].clone(); case["clip"] = Value::Null; run(&fx, &case, kind(&case)).0 };
    assert!(far(unclipped), "clipping makes no difference");
}
