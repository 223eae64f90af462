//! The stateful and special gradient methods inside the training step, against references
//! computed another way (the one-hot loss weightings' gradients, the method's own arithmetic):
//! - GradVac over several steps with per-tensor and per-layer groups: the targets it carries
//!   move the applied gradient exactly as `combine_step` does on the one-hot gradients; the
//!   groups are the network's parameter tensors and leaf modules (checked against the state
//!   dict's keys); restored targets continue exactly;
//! - GradNorm's first epoch is the fixed weighting 1, 1 (and the loss scales get nothing);
//!   from the second, its shared gradient and its loss scales' gradient are
//!   `gradnorm::combine`'s;
//! - GradDrop's applied gradient is the backpropagation of `graddrop::upstream` of the
//!   representation gradients, with the objective's uniforms; at leak 1 it is EW's;
//! - Nash-MTL between updates backpropagates `Σ α_t L_t` once, with the shared gradient clipped.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_core::rng::SplitMix64;
use hydra_data::batch::Batch;
use hydra_model::{HydraNet, HydraNetConfig, Task};
use hydra_testkit::random;
use hydra_train::loss::{BatchLosses, DepthLoss};
use hydra_train::mtl::grads::{flatten, layout};
use hydra_train::mtl::{graddrop, gradnorm, GradientMethod, GradientObjective, Groups, MethodState};
use hydra_train::objective::{scalar, LossWeighting, Objective, StepInfo};
use hydra_train::train::TrainModule;
use hydra_train::weighting::{LossHistory, UncertaintyWeights, Weighting};

const TASKS: [Task; 2] = [Task::Segmentation, Task::Depth];

fn device() -> Device {
    Device::flex().autodiff()
}

fn module() -> TrainModule {
    TrainModule { net: HydraNetConfig::new(6).with_tasks(TASKS.to_vec()).with_seed(3).init(&device()), task_weights: None }
}

fn batch() -> Batch {
    let d = device();
    let labels: Vec<i64> = (0..2 * 32 * 32).map(|i| if i % 7 == 0 { 255 } else { (i * 31 % 6) as i64 }).collect();
    Batch {
        images: random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), 10, &d),
        labels: Some(Tensor::from_data(TensorData::new(labels, [2, 32, 32]), &d)),
        depth: Some(random([2, 32, 32], Distribution::Uniform(-1.0, 8.0), 11, &d).clamp_min(0.0)),
        normals: None,
    }
}

fn losses() -> BatchLosses<'static> {
    BatchLosses { batch: batch(), tasks: &TASKS, ignore: 255, depth: DepthLoss::L1, replica_scale: None }
}

fn shared(net: &HydraNet, g: &GradientsParams) -> Vec<f64> {
    let mut v = flatten(&net.encoder, g);
    v.extend(flatten(&net.decoder, g));
    v
}

/// The shared gradient of `Σ w_t L_t` by one backward pass of a fresh network.
fn weighted(w: &[f64]) -> Vec<f64> {
    let m = module();
    let mut o = LossWeighting::new(Weighting::Fixed(w.to_vec()));
    o.epoch_start(2, &Default::default());
    let (_, g) = o.combine(&m, &losses().all(&m.net), 1).unwrap();
    shared(&m.net, &g)
}

fn f32s(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn task_values() -> Vec<f64> {
    let m = module();
    losses().all(&m.net).iter().map(scalar).collect()
}

/// The shared parameters' keys (encoder, decoder; the heads are `pre_*` and the task names)
/// of the state dict (the official names) with their sizes, in
/// the state dict's order; buffers left out.
fn shared_tensors(net: &HydraNet) -> Vec<(String, usize)> {
    let sd = net.state_dict();
    sd.iter()
        .filter(|(k, _)| !(["pre_", "segm", "depth", "normal"].iter().any(|h| k.starts_with(h)) || k.contains("running_") || k.contains("num_batches")))
        .map(|(k, t)| (k.to_string(), t.shape.iter().product()))
        .collect()
}

/// `a == b`, naming the first difference (not printing millions of values).
fn same(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    if let Some(k) = (0..a.len()).find(|&k| a[k].to_bits() != b[k].to_bits()) {
        panic!("{what}: first difference at {k} of {}: {} vs {}", a.len(), a[k], b[k]);
    }
}

/// Sizes of the shared tensors and of their leaf modules, in the gradients' layout.
fn layout_groups(m: &TrainModule, template: &GradientsParams) -> (Vec<usize>, Vec<usize>) {
    let mut l = layout(&m.net.encoder, template);
    l.extend(layout(&m.net.decoder, template).into_iter().map(|(p, n)| (format!("decoder.{p}"), n)));
    let tensors = l.iter().map(|(_, n)| *n).collect();
    let mut leaves: Vec<(String, usize)> = Vec::new();
    for (path, n) in l {
        match leaves.last_mut() {
            Some((p, total)) if *p == path => *total += n,
            _ => leaves.push((path, n)),
        }
    }
    (tensors, leaves.into_iter().map(|(_, n)| n).collect())
}

#[test]
fn gradvac_carries_its_targets_over_steps_in_its_groups() {
    let rows = vec![weighted(&[1.0, 0.0]), weighted(&[0.0, 1.0])];
    let values = task_values();
    let m = module();
    // The groups: the layout's tensors and leaf modules are the state dict's (official names:
    // a leaf is a key without its last part), as multisets; the layout gives their order.
    // (In training mode BatchNorm normalises with the batch's statistics, so this extra pass
    // on `m` changes nothing the objective computes.)
    let template = {
        let mut o = LossWeighting::new(Weighting::Fixed(vec![1.0, 1.0]));
        o.epoch_start(2, &Default::default());
        o.combine(&m, &losses().all(&m.net), 1).unwrap().1
    };
    let (tensors, leaves) = layout_groups(&m, &template);
    let mut sd_tensors: Vec<usize> = shared_tensors(&m.net).into_iter().map(|(_, n)| n).collect();
    let mut sd_leaves: Vec<(String, usize)> = Vec::new();
    for (key, n) in shared_tensors(&m.net) {
        let leaf = key.rsplit_once('.').map_or(key.clone(), |(l, _)| l.to_string());
        match sd_leaves.iter_mut().find(|(l, _)| *l == leaf) {
            Some((_, total)) => *total += n,
            None => sd_leaves.push((leaf, n)),
        }
    }
    let mut sd_leaves: Vec<usize> = sd_leaves.into_iter().map(|(_, n)| n).collect();
    let (mut t_sorted, mut l_sorted) = (tensors.clone(), leaves.clone());
    for v in [&mut sd_tensors, &mut sd_leaves, &mut t_sorted, &mut l_sorted] {
        v.sort();
    }
    assert_eq!(t_sorted, sd_tensors, "per-tensor groups are the network's parameter tensors");
    assert_eq!(l_sorted, sd_leaves, "per-layer groups are the network's leaf modules");
    assert!(leaves.len() < tensors.len() && tensors.iter().sum::<usize>() == rows[0].len());
    for (groups, sizes) in [(Groups::AllMatrix, tensors), (Groups::AllLayer, leaves)] {
        let method = GradientMethod::GradVac { beta: 0.5, groups };
        let mut o = GradientObjective::new(method.clone(), false, 2, 5);
        o.epoch_start(2, &Default::default());
        let mut reference = MethodState { groups: sizes, ..Default::default() };
        let mut moved = 0;
        for k in 0..3 {
            let got = o.gradients(&m, &losses(), StepInfo { iteration: k + 1, logged: false }).unwrap();
            let want = method.combine_step(&rows, &values, &mut reference, &mut |_| vec![0]);
            same(&shared(&m.net, &got.grads), &f32s(&want.gradient), &format!("{groups:?} step {k}"));
            let ew: Vec<f64> = rows[0].iter().zip(&rows[1]).map(|(a, b)| a + b).collect();
            moved += usize::from(want.gradient != ew);
        }
        // A group moves once its cosine falls below its target: with the same gradients every
        // step that happens from the second step in the groups whose cosine is negative
        // (some tensors here; no leaf module need have one).
        if groups == Groups::AllMatrix {
            assert!(moved >= 2, "{groups:?}: the targets moved the gradient off EW after the first step");
        }
        // The targets go into the checkpoint's state and come back.
        let mut again = GradientObjective::new(method.clone(), false, 2, 5);
        again.restore(&o.state()).unwrap();
        let (a, b) = (o.gradients(&m, &losses(), StepInfo { iteration: 4, logged: false }).unwrap(), again.gradients(&m, &losses(), StepInfo { iteration: 4, logged: false }).unwrap());
        same(&shared(&m.net, &a.grads), &shared(&m.net, &b.grads), "restored");
    }
}

#[test]
fn gradnorm_is_ew_in_the_first_epoch_then_balances_with_learned_scales() {
    let values = task_values();
    let scales = [0.3, -0.2];
    let mut m = module();
    m.task_weights = Some(UncertaintyWeights { log_vars: Param::from_tensor(Tensor::from_data(TensorData::new(scales.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2]), &device())) });
    let mut o = GradientObjective::new(GradientMethod::GradNorm { alpha: 1.5 }, false, 2, 5);
    o.epoch_start(2, &Default::default());
    let first = o.gradients(&m, &losses(), StepInfo { iteration: 1, logged: false }).unwrap();
    let ew = weighted(&[1.0, 1.0]);
    assert!(rel(&shared(&m.net, &first.grads), &ew) < 1e-6, "first epoch: Σ L_t");
    let scale_param = &m.task_weights.as_ref().unwrap().log_vars;
    assert!(first.grads.get::<1>(scale_param.id).is_none(), "no gradient for the scales in the first epoch");
    // Second epoch: against gradnorm::combine on the one-hot gradients.
    let initial = vec![values[0] * 1.7, values[1] * 0.6];
    o.epoch_start(2, &LossHistory { epochs: vec![initial.clone()] });
    let got = o.gradients(&m, &losses(), StepInfo { iteration: 2, logged: false }).unwrap();
    let rows = vec![weighted(&[1.0, 0.0]), weighted(&[0.0, 1.0])];
    let scales32: Vec<f64> = f32s(&scales);
    let (want, scale_grad) = gradnorm::combine(&rows, &values, &initial, &scales32, 1.5);
    same(&shared(&m.net, &got.grads), &f32s(&want.gradient), "GradNorm shared gradient");
    let g: Vec<f64> = got.grads.get::<1>(scale_param.id).expect("the scales' gradient").into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect();
    assert_eq!(g, f32s(&scale_grad));
    assert!(scale_grad.iter().all(|v| v.abs() > 0.0) && (scale_grad[0] + scale_grad[1]).abs() < 1e-9 * scale_grad[0].abs(), "softmax: the scales' gradient sums to 0: {scale_grad:?}");
    assert_eq!(o.task_weights(&m), want.weights);
}

#[test]
fn graddrop_backpropagates_its_upstream_gradient() {
    for leak in [0.0, 1.0] {
        let m = module();
        let mut o = GradientObjective::new(GradientMethod::GradDrop { leak }, true, 2, 5);
        o.epoch_start(2, &Default::default());
        let got = o.gradients(&m, &losses(), StepInfo { iteration: 1, logged: false }).unwrap();
        // The reference: the representation and each head's gradient of it, the objective's
        // uniforms (its generator: seed 5, stream 0x6d746c), graddrop::upstream, one backward.
        let r = module();
        let b = losses();
        let features = b.representation(&r.net);
        let rep: Vec<f64> = features.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect();
        let raw: Vec<Vec<f64>> = (0..2)
            .map(|t| {
                let x = features.clone().detach().require_grad();
                let g = x.grad(&b.head_loss(&r.net, x.clone(), t).backward()).unwrap();
                g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
            })
            .collect();
        let per_sample = rep.len() / 2;
        let mut rng = SplitMix64::stream(5, 0x6d_74_6c);
        let u: Vec<f64> = (0..per_sample).map(|_| rng.uniform()).collect();
        let up: Vec<f32> = graddrop::upstream(&rep, &raw, &u, leak).iter().map(|&v| v as f32).collect();
        let upstream = Tensor::<4>::from_data(TensorData::new(up, features.shape()), &device());
        let want = shared(&r.net, &GradientsParams::from_grads((features * upstream).sum().backward(), &r));
        same(&shared(&m.net, &got.grads), &want, &format!("leak {leak}"));
        if leak == 1.0 {
            assert!(rel(&want, &weighted(&[1.0, 1.0])) < 1e-4, "leak 1 keeps every gradient: EW");
        } else {
            assert!(rel(&want, &weighted(&[1.0, 1.0])) > 1e-3, "leak 0 drops some");
        }
    }
}

#[test]
fn nash_mtl_between_updates_takes_one_pass_with_its_last_weights() {
    let m = module();
    let mut o = GradientObjective::new(GradientMethod::NashMtl { update_every: 2, iterations: 20, max_norm: 0.05 }, false, 2, 5);
    o.epoch_start(2, &Default::default());
    let first = o.gradients(&m, &losses(), StepInfo { iteration: 1, logged: false }).unwrap();
    let alpha = o.task_weights(&m);
    assert!(alpha.iter().all(|&a| a > 0.0) && alpha != vec![1.0, 1.0], "{alpha:?}");
    let second = o.gradients(&m, &losses(), StepInfo { iteration: 2, logged: false }).unwrap();
    assert_eq!(o.task_weights(&m), alpha, "no update at the second step");
    // Σ α_t L_t by one pass, the shared part clipped to 0.05.
    let mut want = weighted(&alpha);
    let n = want.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(n > 0.05, "the clip is active");
    want.iter_mut().for_each(|v| *v *= 0.05 / (n + 1e-6));
    assert!(rel(&shared(&m.net, &second.grads), &want) < 1e-5);
    // The update step's gradient (per-task passes) agrees with it up to rounding.
    assert!(rel(&shared(&m.net, &first.grads), &want) < 1e-4);
}
