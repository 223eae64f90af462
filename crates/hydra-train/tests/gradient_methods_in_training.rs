//! The gradient methods inside the training step, against references computed another way:
//! - parameter mode: each task's gradient of the shared parameters (encoder and decoder) is
//!   the one a one-hot loss weighting gives (one backward pass of `1·L_t + 0·L_others`); the
//!   applied shared gradient is the method's combination of those, each head gets its own
//!   loss's gradient, and BatchNorm's running statistics are those of one forward pass;
//! - representation mode (MGDA-UB and the others): the applied gradient is that of the loss
//!   weighting with the weights the method chose, `Σ w_t L_t`;
//!   (GradVac, Nash-MTL and DB-MTL at their first step too; their later steps and GradNorm,
//!   GradDrop: tests/stateful_methods_in_training.rs);
//! - EW equals the fixed weighting 1, 1;
//! - a restored state continues PCGrad's random task orders exactly;
//! - the gradient conflict logged at an iteration is the same whichever objective measured it.

mod common;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_data::batch::Batch;
use hydra_model::{HydraNet, HydraNetConfig, Task};
use hydra_testkit::random;
use hydra_train::loss::{BatchLosses, DepthLoss};
use hydra_train::mtl::grads::flatten;
use hydra_train::mtl::{Draw, GradientMethod, GradientObjective, Groups, Normalisation, Rescale};
use hydra_train::objective::{scalar, LossWeighting, Objective, StepGradient, StepInfo};
use hydra_train::train::TrainModule;
use hydra_train::weighting::Weighting;

const TASKS: [Task; 3] = [Task::Segmentation, Task::Depth, Task::Normals];

fn device() -> Device {
    Device::flex().autodiff()
}

/// The same seeded network every call (separate running statistics each).
fn module(tasks: &[Task]) -> TrainModule {
    TrainModule { net: HydraNetConfig::new(6).with_tasks(tasks.to_vec()).with_seed(3).init(&device()), task_weights: None }
}

/// A seeded batch of 2 images 32×32 with labels (some ignored), depth (some unmeasured) and
/// unit normals.
fn batch() -> Batch {
    let d = device();
    let labels: Vec<i64> = (0..2 * 32 * 32).map(|i| if i % 7 == 0 { 255 } else { (i * 31 % 6) as i64 }).collect();
    let depth = random([2, 32, 32], Distribution::Uniform(-1.0, 8.0), 11, &d).clamp_min(0.0);
    let n = random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), 12, &d);
    let norm = n.clone().powf_scalar(2.0).sum_dim(1).sqrt();
    Batch {
        images: random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), 10, &d),
        labels: Some(Tensor::from_data(TensorData::new(labels, [2, 32, 32]), &d)),
        depth: Some(depth),
        normals: Some(n / norm),
    }
}

fn losses<'a>(tasks: &'a [Task]) -> BatchLosses<'a> {
    BatchLosses { batch: batch(), tasks, ignore: 255, depth: DepthLoss::L1, replica_scale: None }
}

fn shared(net: &HydraNet, g: &GradientsParams) -> Vec<f64> {
    let mut v = flatten(&net.encoder, g);
    v.extend(flatten(&net.decoder, g));
    v
}

fn head(net: &HydraNet, task: Task, g: &GradientsParams) -> Vec<f64> {
    flatten(net.head(task).unwrap(), g)
}

/// The gradient of `Σ w_t L_t` by one backward pass (a fresh network).
fn weighted(tasks: &[Task], w: &[f64]) -> (TrainModule, GradientsParams) {
    let m = module(tasks);
    let b = losses(tasks);
    let mut o = LossWeighting::new(Weighting::Fixed(w.to_vec()));
    o.epoch_start(tasks.len(), &Default::default());
    let l = b.all(&m.net);
    let (_, g) = o.combine(&m, &l, 1).unwrap();
    (m, g)
}

fn step(o: &mut dyn Objective, m: &TrainModule, tasks: &[Task]) -> StepGradient {
    o.epoch_start(tasks.len(), &Default::default());
    o.gradients(m, &losses(tasks), StepInfo { iteration: 1, logged: false }).unwrap()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |a, x| a.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn statistics(net: &HydraNet) -> Vec<Vec<f32>> {
    net.encoder.running_statistics().into_iter().flatten().map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect()
}

fn methods() -> Vec<GradientMethod> {
    vec![
        GradientMethod::Ew,
        GradientMethod::Mgda { normalisation: Normalisation::LossL2 },
        GradientMethod::PcGrad,
        GradientMethod::Imtl,
        GradientMethod::AlignedMtl,
        GradientMethod::CaGrad { c: 0.5, rescale: Rescale::Quadratic },
        GradientMethod::GradVac { beta: 0.5, groups: Groups::WholeModel },
        GradientMethod::NashMtl { update_every: 1, iterations: 20, max_norm: 1.0 },
        GradientMethod::DbMtl { beta: 0.9, beta_sigma: 0.0 },
    ]
}

#[test]
fn parameter_mode_combines_each_tasks_own_gradient() {
    let tasks = &TASKS[..2];
    // Per task: the one-hot loss weighting's gradients.
    let per_task: Vec<(TrainModule, GradientsParams)> = (0..2).map(|t| weighted(tasks, &[(t == 0) as u8 as f64, (t == 1) as u8 as f64])).collect();
    let rows: Vec<Vec<f64>> = per_task.iter().map(|(m, g)| shared(&m.net, g)).collect();
    let values: Vec<f64> = { let m = module(tasks); losses(tasks).all(&m.net).iter().map(scalar).collect() };
    let once = module(tasks);
    let _ = losses(tasks).all(&once.net);
    for method in methods() {
        let m = module(tasks);
        let mut o = GradientObjective::new(method.clone(), false, 2, 5);
        let got = step(&mut o, &m, tasks);
        assert_eq!(got.losses, values, "{method:?}: task losses");
        // With two tasks PCGrad's order does not change the result (a projection off g_j
        // leaves pc_i · g_i ≥ 0), so any order is the reference's; GradVac has one order.
        let order = if matches!(method, GradientMethod::GradVac { .. }) { vec![0] } else { vec![0, 1] };
        let want = method.combine(&rows, &values, &mut |_| order.clone());
        let applied = shared(&m.net, &got.grads);
        let want32: Vec<f64> = want.gradient.iter().map(|&v| v as f32 as f64).collect();
        assert_eq!(applied, want32, "{method:?}: the applied shared gradient is not the method's combination of the tasks' gradients");
        assert_eq!(o.task_weights(&m), want.weights, "{method:?}: weights");
        // Each head gets its own loss's gradient; DB-MTL's that of its log-loss (× 1/(L+1e-8)),
        // Nash-MTL's α_t times it.
        let factors = method.head_weights(&values, &want.weights);
        for (t, &task) in tasks.iter().enumerate() {
            let own = head(&per_task[t].0.net, task, &per_task[t].1);
            let own: Vec<f64> = match &factors {
                Some(f) => own.iter().map(|&v| (v as f32 * f[t] as f32) as f64).collect(),
                None => own,
            };
            assert_eq!(head(&m.net, task, &got.grads), own, "{method:?}: the {task:?} head's gradient is not its own loss's");
        }
        let total: f64 = want.weights.iter().zip(&values).map(|(w, l)| w * l).sum();
        assert_eq!(got.total, total, "{method:?}: total");
        assert_eq!(statistics(&m.net), statistics(&once.net), "{method:?}: BatchNorm statistics differ from one forward pass's");
    }
}

#[test]
fn representation_mode_backpropagates_the_weighted_sum_of_losses() {
    let tasks = &TASKS[..2];
    let once = module(tasks);
    let _ = losses(tasks).all(&once.net);
    for method in [GradientMethod::Ew, GradientMethod::Mgda { normalisation: Normalisation::LossL2 }, GradientMethod::Mgda { normalisation: Normalisation::None }, GradientMethod::Imtl, GradientMethod::AlignedMtl] {
        let m = module(tasks);
        let mut o = GradientObjective::new(method.clone(), true, 2, 5);
        let got = step(&mut o, &m, tasks);
        let w = o.task_weights(&m);
        if let GradientMethod::Mgda { .. } = method {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12 && w.iter().all(|&x| x >= 0.0), "MGDA-UB weights on the simplex: {w:?}");
        }
        let (rm, rg) = weighted(tasks, &w);
        let (applied, want) = (shared(&m.net, &got.grads), shared(&rm.net, &rg));
        // Two roundings differ: the weighted sum of the representation gradients is formed in
        // f64 here and in f32 by the autodiff graph there. Bound: the suite's parity bar,
        // 1e-4 × max |gradient|.
        let err = max_diff(&applied, &want) / max_abs(&want);
        assert!(err < 1e-4, "{method:?}: shared gradient off by {err:.2e} of max");
        for &task in tasks {
            let per = weighted(tasks, &tasks.iter().map(|&t| (t == task) as u8 as f64).collect::<Vec<_>>());
            assert_eq!(head(&m.net, task, &got.grads), head(&per.0.net, task, &per.1), "{method:?}: {task:?} head");
        }
        assert_eq!(statistics(&m.net), statistics(&once.net), "{method:?}: BatchNorm statistics");
    }
}

#[test]
fn ew_is_the_fixed_weighting_one_one() {
    let tasks = &TASKS[..2];
    let m = module(tasks);
    let got = step(&mut GradientObjective::new(GradientMethod::Ew, false, 2, 5), &m, tasks);
    let (rm, rg) = weighted(tasks, &[1.0, 1.0]);
    let (applied, want) = (shared(&m.net, &got.grads), shared(&rm.net, &rg));
    // The per-task gradients are summed in f64 here, in f32 at the representation there.
    let err = max_diff(&applied, &want) / max_abs(&want);
    assert!(err < 1e-4, "EW off the fixed weighting by {err:.2e} of max");
    assert!(err > 0.0 || applied == want);
}

#[test]
fn a_restored_state_continues_pcgrads_task_orders() {
    let tasks = &TASKS[..];
    let m = module(tasks);
    let mut a = GradientObjective::new(GradientMethod::PcGrad, false, 3, 9);
    for _ in 0..3 {
        step(&mut a, &m, tasks);
    }
    let mut b = GradientObjective::new(GradientMethod::PcGrad, false, 3, 9);
    b.restore(&a.state()).unwrap();
    let (ga, gb) = (step(&mut a, &m, tasks), step(&mut b, &m, tasks));
    assert_eq!(shared(&m.net, &ga.grads), shared(&m.net, &gb.grads), "the restored objective applied another gradient");
    assert_eq!(a.task_weights(&m), b.task_weights(&m));
    // Both drew the same orders (their generators agree), which a fresh objective does not.
    assert_eq!(a.state(), b.state());
    let mut fresh = GradientObjective::new(GradientMethod::PcGrad, false, 3, 9);
    step(&mut fresh, &m, tasks);
    assert_ne!(fresh.state().rng, a.state().rng, "the generator did not move");
    // A state from another kind of objective is refused in words.
    let err = GradientObjective::new(GradientMethod::PcGrad, false, 3, 9).restore(&Default::default()).unwrap_err();
    assert!(err.contains("no state of the gradient method"), "{err}");
}

#[test]
fn the_logged_conflict_is_the_same_whoever_measures_it() {
    let tasks = &TASKS[..];
    let logged = StepInfo { iteration: 1, logged: true };
    let m = module(tasks);
    let mut fixed = LossWeighting::new(Weighting::Fixed(vec![0.5, 0.3, 0.2]));
    fixed.epoch_start(3, &Default::default());
    let a = fixed.gradients(&m, &losses(tasks), logged).unwrap().conflict.expect("measured at a logged iteration");
    let m2 = module(tasks);
    let mut pc = GradientObjective::new(GradientMethod::PcGrad, false, 3, 1);
    pc.epoch_start(3, &Default::default());
    let b = pc.gradients(&m2, &losses(tasks), logged).unwrap().conflict.unwrap();
    assert_eq!(a, b);
    // And it is the norms and cosines of the one-hot weightings' shared gradients.
    let rows: Vec<Vec<f64>> = (0..3)
        .map(|t| {
            let (rm, g) = weighted(tasks, &(0..3).map(|i| (i == t) as u8 as f64).collect::<Vec<_>>());
            shared(&rm.net, &g)
        })
        .collect();
    for t in 0..3 {
        let n = rows[t].iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((a.norms[t] - n).abs() <= 1e-12 * n, "norm {t}: {} vs {n}", a.norms[t]);
    }
    for (k, (i, j)) in [(0, 1), (0, 2), (1, 2)].into_iter().enumerate() {
        let d: f64 = rows[i].iter().zip(&rows[j]).map(|(x, y)| x * y).sum();
        let c = d / (a.norms[i] * a.norms[j]);
        assert!((a.cosines[k] - c).abs() < 1e-12, "cosine {i}/{j}: {} vs {c}", a.cosines[k]);
    }
    // Not at iterations that are not logged.
    let none = fixed.gradients(&m, &losses(tasks), StepInfo { iteration: 2, logged: false }).unwrap();
    assert!(none.conflict.is_none());
}

#[test]
fn draws_are_permutations_and_every_order_comes_up() {
    let mut rng = hydra_core::rng::SplitMix64::new(4);
    let mut d = Draw { rng: &mut rng };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..600 {
        let p = d.permutation(3);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, [0, 1, 2]);
        seen.insert(p);
    }
    assert_eq!(seen.len(), 6, "all 3! orders appear");
}

#[test]
fn training_logs_and_plots_the_conflict() {
    use common::{hydra_env, scratch, text, tiny_config};
    let dir = scratch("mtl-train-pcgrad");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "[loss]\nweighting = \"pcgrad\"\n");
    let t = std::fs::read_to_string(&cfg).unwrap().replace("epochs = 3", "epochs = 1");
    std::fs::write(&cfg, t).unwrap();
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let iters: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|v: &serde_json::Value| v["kind"] == "iter").collect();
    assert_eq!(iters.len(), 4, "16 images, batch 4, log_interval 1");
    for r in &iters {
        let c = r["grad_cosines"]["segm/depth"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&c), "{r}");
        assert!(r["grad_norms"]["segm"].as_f64().unwrap() > 0.0 && r["grad_norms"]["depth"].as_f64().unwrap() > 0.0, "{r}");
        let w = &r["weights"];
        // PCGrad adds |coefficient| to the weight of each gradient it projects off: with the
        // two tasks in conflict (cosine < 0) both weights exceed 1, else both are 1.
        let (ws, wd) = (w["segm"].as_f64().unwrap(), w["depth"].as_f64().unwrap());
        if c < 0.0 {
            assert!(ws > 1.0 && wd > 1.0, "{r}");
        } else {
            assert!(ws == 1.0 && wd == 1.0, "{r}");
        }
    }
    for plot in ["gradient_conflict", "gradient_norms"] {
        let svg = std::fs::read_to_string(run.join("plots").join(format!("{plot}.svg"))).unwrap();
        assert!(svg.contains("segm"), "{plot} has its series");
    }
}

#[test]
fn rlw_draws_softmax_weights_and_gls_is_the_geometric_mean() {
    let tasks = &TASKS[..2];
    let m = module(tasks);
    let l = losses(tasks).all(&m.net);
    let values: Vec<f64> = l.iter().map(scalar).collect();
    let mut rlw = LossWeighting::seeded(Weighting::Rlw, 4);
    rlw.epoch_start(2, &Default::default());
    let (total, g) = rlw.combine(&m, &l, 1).unwrap();
    let w = rlw.task_weights(&m);
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12 && w.iter().all(|&x| x > 0.0), "{w:?}");
    assert!((total - (w[0] * values[0] + w[1] * values[1])).abs() < 1e-5 * total, "{total} vs {w:?} · {values:?}");
    // The gradient is the fixed weighting's with the drawn weights.
    let (rm, rg) = weighted(tasks, &w);
    let err = max_diff(&shared(&m.net, &g), &shared(&rm.net, &rg)) / max_abs(&shared(&rm.net, &rg));
    assert!(err < 1e-4, "RLW gradient off by {err:.2e}");
    // A new draw every step; the state carries the generator.
    let l2 = losses(tasks).all(&m.net);
    let state = rlw.state();
    rlw.combine(&m, &l2, 2).unwrap();
    assert_ne!(rlw.task_weights(&m), w);
    let mut again = LossWeighting::seeded(Weighting::Rlw, 99);
    again.restore(&state).unwrap();
    again.combine(&m, &losses(tasks).all(&m.net), 2).unwrap();
    assert_eq!(again.task_weights(&m), rlw.task_weights(&m));
    // GLS: (L_1 L_2)^{1/2}, and each task's weight d total / d L_t = total / (2 L_t).
    let mut gls = LossWeighting::seeded(Weighting::Gls, 0);
    gls.epoch_start(2, &Default::default());
    let l = losses(tasks).all(&m.net);
    let (total, g) = gls.combine(&m, &l, 1).unwrap();
    let want = (values[0] * values[1]).sqrt();
    assert!((total - want).abs() < 1e-6 * want, "{total} vs {want}");
    let w = gls.task_weights(&m);
    for t in 0..2 {
        assert!((w[t] - total / (2.0 * values[t])).abs() < 1e-6 * w[t]);
    }
    let (rm, rg) = weighted(tasks, &w);
    let err = max_diff(&shared(&m.net, &g), &shared(&rm.net, &rg)) / max_abs(&shared(&rm.net, &rg));
    assert!(err < 1e-4, "GLS gradient off by {err:.2e}");
}

#[test]
fn a_loss_weighting_measures_the_conflict_only_when_asked() {
    use common::{hydra_env, scratch, text, tiny_config};
    for (setting, measured) in [("", false), ("log_conflict = \"always\"\n", true), ("log_conflict = \"never\"\n", false)] {
        let dir = scratch("mtl-conflict-setting");
        let run = dir.join("run");
        let cfg = tiny_config(&dir, &run, "");
        let t = std::fs::read_to_string(&cfg).unwrap().replace("epochs = 3", "epochs = 1").replace("log_interval = 1\n", &format!("log_interval = 1\n{setting}"));
        std::fs::write(&cfg, t).unwrap();
        let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{}", text(&o).1);
        let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let iters: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|v: &serde_json::Value| v["kind"] == "iter").collect();
        assert_eq!(iters.len(), 4);
        assert!(iters.iter().all(|r| r.get("grad_cosines").is_some() == measured), "`{setting}`: {:?}", iters[0]);
    }
}
