//! Shared helpers of the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Max |a − b| and max |b|.
pub fn max_errors(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0f32, f32::max);
    (err, scale)
}

/// A fresh empty directory for one test, removed when the test passes.
pub fn scratch(name: &str) -> hydra_testkit::Scratch {
    hydra_testkit::scratch("hydra-test", name)
}

/// Run the `hydra` binary with `args` and extra environment variables.
pub fn hydra_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hydra"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run hydra")
}

/// A small synthetic training config writing to `run_dir`, with extra TOML appended.
pub fn tiny_config(dir: &Path, run_dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[model]
num_classes = 6
[data]
palette = "synthetic"
workers = 2
[data.train]
kind = "synthetic"
count = 16
size = [48, 64]
seed = 1
[data.val]
kind = "synthetic"
count = 4
size = [48, 64]
seed = 2
[augment]
scale = [0.8, 1.25]
crop = [48, 48]
jitter = 0.2
[training]
epochs = 3
batch_size = 4
log_interval = 1
[output]
dir = "{}"
{extra}"#,
        run_dir.display()
    );
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// stdout and stderr as text.
pub fn text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// How one SGD step on `device` (an autodiff device) compares with PyTorch's
/// (`fixtures/pytorch/sgd_step1.*`, made by scripts/make_step_fixture.py: the authors' recipe on
/// two real NYUv2 frames).
pub struct SgdStepReport {
    /// Total, segmentation and depth loss before the step.
    pub losses: [f64; 3],
    /// PyTorch's.
    pub reference_losses: [f64; 3],
    /// Median over the parameter tensors of ‖ours − PyTorch's‖ / ‖PyTorch's update‖.
    pub median: f64,
    /// The worst tensor of those, with its key.
    pub worst: (f64, String),
    /// The worst BatchNorm running statistic, max |difference| / max |value|, with its key.
    pub worst_bn: (f64, String),
}

/// The two real NYUv2 frames of the PyTorch step fixture, batched at 480×640, or their
/// centres cropped to `crop = [h, w]`.
pub fn step_batch(crop: Option<[usize; 2]>) -> hydra_data::batch::HostBatch {
    use hydra_data::batch::collate;
    use hydra_data::dataset::{open, OpenOptions, SourceSpec};
    let dir = scratch("sgd-step");
    std::fs::write(dir.join("list.txt"), "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n").unwrap();
    let spec = SourceSpec::List { root: fixtures().join("samples/nyud"), list: dir.join("list.txt"), depth_scale: 5000.0, label_palette: None };
    let (ds, _) = open(&spec, &OpenOptions::default()).unwrap();
    let sample = |i| {
        let s = ds.get(i).unwrap();
        match crop {
            Some([h, w]) => {
                let (top, left) = ((h as isize - 480) / 2, (w as isize - 640) / 2);
                (i, hydra_data::augment::place(s, [h, w], top, left, 255), [h, w])
            }
            None => (i, s, [480, 640]),
        }
    };
    collate((0..2).map(sample).collect(), 255)
}

/// One SGD step of the authors' recipe (momentum 0.9, weight decay 1e-5, learning rates 1e-3
/// encoder / 1e-2 decoder, losses ½ CE + ½ L1) from the fixture checkpoint on `host`, on
/// `device` (an autodiff device): the total, segmentation and depth
/// losses before the step and the network's tensors after it.
pub fn sgd_step(device: &burn::tensor::Device, host: &hydra_data::batch::HostBatch) -> ([f64; 3], hydra_model::StateDict) {
    use burn::optim::GradientsParams;
    use hydra_model::weights::{self, LoadScope};
    use hydra_model::{HydraNetConfig, Task};
    use hydra_train::loss::{task_losses, DepthLoss};
    use hydra_train::optim::{Hyper, Optimizer, OptimizerKind};
    use hydra_train::train::TrainModule;
    use hydra_train::weighting::Weighting;

    let file = weights::read(&fixtures().join("pytorch/hydranet40_s0.ckpt")).unwrap();
    let (net, _) = file.apply(HydraNetConfig::new(40).init(device), LoadScope::Full).unwrap();
    let tasks = [Task::Segmentation, Task::Depth];
    let module = TrainModule { net, task_weights: None };
    let mut optim = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: false });
    let losses = task_losses(&module.net, host.to_device(device), &tasks, 255, DepthLoss::L1);
    let total = Weighting::Fixed(vec![0.5, 0.5]).combine(&losses, &[0.5, 0.5], None);
    let got = [total.clone().into_scalar::<f32>() as f64, losses[0].clone().into_scalar::<f32>() as f64, losses[1].clone().into_scalar::<f32>() as f64];
    let grads = GradientsParams::from_grads(total.backward(), &module);
    let hyper = |path: &str| Hyper { lr: if path.starts_with("net.encoder") { 1e-3 } else { 1e-2 }, weight_decay: 1e-5 };
    let module = optim.step(module, grads, hyper, 1.0);
    (got, module.net.state_dict())
}

/// How the tensors `ours` after one step from the fixture checkpoint compare with `expected`
/// (PyTorch's, or another backend's) after the same step; the losses are filled in by the caller.
pub fn compare_step(ours: &hydra_model::StateDict, expected: &hydra_model::StateDict) -> SgdStepReport {
    let start = hydra_model::weights::read(&fixtures().join("pytorch/hydranet40_s0.ckpt")).unwrap().state;
    assert_eq!(ours.len(), expected.len());
    let mut update_errors = Vec::new();
    let mut worst_bn = (0.0f64, String::new());
    for (key, want) in expected.iter() {
        let got = ours.get(key).unwrap_or_else(|| panic!("{key}"));
        let (g, w) = (got.to_f32(), want.to_f32());
        if key.ends_with("num_batches_tracked") {
            let before = start.get(key).unwrap().to_f32()[0];
            assert_eq!(w, vec![before + 1.0], "{key}");
            assert_eq!(g, w, "{key}");
            continue;
        }
        if key.contains("running_") {
            let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
            let scale = w.iter().map(|a| a.abs()).fold(0f32, f32::max) as f64;
            if err / scale > worst_bn.0 {
                worst_bn = (err / scale, key.to_string());
            }
            continue;
        }
        let s0 = start.get(key).unwrap().to_f32();
        let l2 = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = l2(&mut g.iter().zip(&w).map(|(a, b)| (*a - *b) as f64));
        let update = l2(&mut w.iter().zip(&s0).map(|(a, b)| (*a - *b) as f64));
        let norm = l2(&mut w.iter().map(|a| *a as f64));
        update_errors.push((diff / (update + 1e-3 * norm), key.to_string()));
    }
    update_errors.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = update_errors[update_errors.len() / 2].0;
    let worst = update_errors.last().unwrap().clone();
    eprintln!("updated weights: median tensor {median:.2e}, worst {} {:.2e} of the update; BatchNorm statistics worst {} {:.2e}", worst.1, worst.0, worst_bn.1, worst_bn.0);
    SgdStepReport { losses: [0.0; 3], reference_losses: [0.0; 3], median, worst, worst_bn }
}

/// Runs the step of [`SgdStepReport`] on `device` and compares every updated tensor.
pub fn sgd_step_against_pytorch(device: &burn::tensor::Device) -> SgdStepReport {
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("pytorch/sgd_step1.json")).unwrap()).unwrap();
    let (got, ours) = sgd_step(device, &step_batch(None));
    let r = &reference["losses"][0];
    let want = [r["loss"].as_f64().unwrap(), r["segm"].as_f64().unwrap(), r["depth"].as_f64().unwrap()];
    eprintln!("loss, segm, depth: hydra {got:?} pytorch {want:?}");
    let expected = hydra_model::weights::read(&fixtures().join("pytorch/sgd_step1.safetensors")).unwrap().state;
    SgdStepReport { losses: got, reference_losses: want, ..compare_step(&ours, &expected) }
}

/// How far one SGD step on burn-flex moves when every third input value is moved up and every
/// third down by one ulp: the float sensitivity of the step itself at `host`'s size, the scale
/// against which a backend with other (valid) summation orders is judged. `losses` holds the
/// worst relative change of the three losses.
pub fn nudge_spread(host: &hydra_data::batch::HostBatch) -> SgdStepReport {
    let flex = burn::tensor::Device::flex().autodiff();
    let (losses, state) = sgd_step(&flex, host);
    let mut nudged = host.clone();
    for (i, v) in nudged.images.iter_mut().enumerate() {
        *v = match i % 3 {
            0 => f32::from_bits(v.to_bits() + 1),
            1 => f32::from_bits(v.to_bits() - 1),
            _ => *v,
        };
    }
    let (nudged_losses, nudged_state) = sgd_step(&flex, &nudged);
    eprint!("flex with its inputs moved by 1 ulp: losses {nudged_losses:?} vs {losses:?}; ");
    let worst = nudged_losses.iter().zip(&losses).map(|(a, b)| (a - b).abs() / b.abs()).fold(0.0, f64::max);
    SgdStepReport { losses: [worst; 3], reference_losses: losses, ..compare_step(&nudged_state, &state) }
}

/// Asserts that `r` (a step against its reference) stays within twice `spread`
/// ([`nudge_spread`]) for the updated tensors and BatchNorm statistics, and within five times
/// its worst relative loss change for each loss.
pub fn assert_within_spread(what: &str, r: &SgdStepReport, spread: &SgdStepReport) {
    for (g, w) in r.losses.iter().zip(&r.reference_losses) {
        assert!((g - w).abs() <= 5.0 * spread.losses[0] * w.abs(), "{what}: loss {g} vs {w} (1-ulp spread {:.1e})", spread.losses[0]);
    }
    assert!(r.worst.0 <= 2.0 * spread.worst.0, "{what}: {} differs by {:.4} of its update (1-ulp spread: worst {:.4})", r.worst.1, r.worst.0, spread.worst.0);
    assert!(r.median <= 2.0 * spread.median, "{what}: median tensor differs by {:.4} of its update (1-ulp spread {:.4})", r.median, spread.median);
    assert!(r.worst_bn.0 <= 2.0 * spread.worst_bn.0, "{what}: {} differs by {:.2e} (1-ulp spread {:.2e})", r.worst_bn.1, r.worst_bn.0, spread.worst_bn.0);
}
