//! `hydra selftest`: a device checked against the PyTorch references in the repository's
//! `fixtures/` (the official checkpoint `hydranet40_s0.ckpt`, its outputs on a real NYUv2 frame,
//! one SGD step of the authors' recipe on two frames), with the bounds the test suite uses.
//! One binary and the fixtures are all a GPU machine needs (no cargo, no Python there).
//!
//! Checks: (1) inference on the frame against PyTorch's outputs; (2) on a device other than
//! burn-flex, the [`crate::reduction_check`] at batch 2 × 480×640; (3) one SGD step against
//! PyTorch's at that size; (4) the same step on 240×320 centre crops against burn-flex. On the
//! portable path (GPUs) each is held to twice the spread of the same computation on flex when
//! its input moves by one ulp ([`inference_nudge_spread`], [`flex_step`]), measured in the
//! same run: the network amplifies rounding (a 1-ulp input change moves the outputs by 4e-4
//! of their range, about PyTorch's own spread between its two CPU kernel paths), so any valid
//! summation order lands about that far from another. hydra's CPU kernels, which follow
//! PyTorch's order, are held to the parity bar 1e-4 for inference.

use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::prelude::*;
use hydra_data::batch::{collate, HostBatch};
use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_data::{image_io, npy};
use hydra_model::weights::{self, LoadScope, WeightFile};
use hydra_model::{HydraNet, StateDict, Task};

use crate::loss::{task_losses, DepthLoss};
use crate::optim::{Hyper, Optimizer, OptimizerKind};
use crate::train::TrainModule;
use crate::weighting::Weighting;

/// A fixture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    #[error(transparent)]
    Weights(#[from] hydra_model::WeightsError),
    #[error(transparent)]
    Data(#[from] hydra_data::error::DataError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Fixture { path: PathBuf, message: String },
}

/// How the tensors after one SGD step from the fixture checkpoint compare with a reference
/// step's (PyTorch's, or another backend's).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Total, segmentation and depth loss before the step.
    pub losses: [f64; 3],
    /// The reference's.
    pub reference_losses: [f64; 3],
    /// Median over the parameter tensors of ‖ours − reference‖ / ‖reference update‖ (plus
    /// 1e-3 ‖reference‖, for tensors that barely move).
    pub median: f64,
    /// The worst tensor of those, with its key.
    pub worst: (f64, String),
    /// The worst BatchNorm running statistic, max |difference| / max |value|, with its key.
    pub worst_bn: (f64, String),
}

impl StepReport {
    /// The worst relative difference of the three losses.
    pub fn worst_loss(&self) -> f64 {
        self.losses.iter().zip(&self.reference_losses).map(|(a, b)| (a - b).abs() / b.abs()).fold(0.0, f64::max)
    }

    /// `Err` with the first excess when this report is not within twice `spread`
    /// ([`flex_step`]) for the updated tensors and BatchNorm statistics, and within five
    /// times its worst relative loss change for each loss.
    pub fn within_spread(&self, spread: &StepReport) -> Result<(), String> {
        let loss_bound = 5.0 * spread.worst_loss();
        for (g, w) in self.losses.iter().zip(&self.reference_losses) {
            if (g - w).abs() > loss_bound * w.abs() {
                return Err(format!("loss {g} vs {w}: beyond 5 × the 1-ulp spread {:.1e}", spread.worst_loss()));
            }
        }
        if self.worst.0 > 2.0 * spread.worst.0 {
            return Err(format!("{} differs by {:.4} of its update (1-ulp spread: worst {:.4})", self.worst.1, self.worst.0, spread.worst.0));
        }
        if self.median > 2.0 * spread.median {
            return Err(format!("median tensor differs by {:.4} of its update (1-ulp spread {:.4})", self.median, spread.median));
        }
        if self.worst_bn.0 > 2.0 * spread.worst_bn.0 {
            return Err(format!("{} differs by {:.2e} (1-ulp spread {:.2e})", self.worst_bn.1, self.worst_bn.0, spread.worst_bn.0));
        }
        Ok(())
    }

    /// One line: losses, median, worst, BatchNorm.
    pub fn summary(&self) -> String {
        format!(
            "losses within {:.1e}; updated tensors median {:.2} %, worst {:.2} % ({}) of their update; BatchNorm statistics {:.1e} ({})",
            self.worst_loss(),
            100.0 * self.median,
            100.0 * self.worst.0,
            self.worst.1,
            self.worst_bn.0,
            self.worst_bn.1
        )
    }
}

/// The fixtures used here, under `dir` (the repository's `fixtures/`), with the checkpoint
/// every check starts from read once.
#[derive(Debug, Clone)]
pub struct Fixtures {
    pub dir: PathBuf,
    checkpoint: WeightFile,
}

impl Fixtures {
    /// Read the checkpoint under `dir` (the other fixtures are read when a check needs them).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SelftestError> {
        let dir = dir.into();
        let checkpoint = weights::read(&Self::checkpoint_in(&dir))?;
        Ok(Self { dir, checkpoint })
    }

    /// Where the checkpoint lies under `dir`.
    pub fn checkpoint_in(dir: &Path) -> PathBuf {
        dir.join("pytorch/hydranet40_s0.ckpt")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The fixture checkpoint's network on `device`.
    fn network(&self, device: &Device) -> Result<HydraNet, SelftestError> {
        let config = self.checkpoint.config()?;
        Ok(self.checkpoint.apply(config.init(device), LoadScope::Full)?.0)
    }

    /// The two real NYUv2 frames of the PyTorch step, batched at 480×640, or their centres
    /// cropped to `crop = [h, w]`.
    pub fn step_batch(&self, crop: Option<[usize; 2]>) -> Result<HostBatch, SelftestError> {
        let dir = std::env::temp_dir().join(format!("hydra-selftest-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| SelftestError::Io { path: dir.clone(), source: e })?;
        let list = dir.join("list.txt");
        let text = "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n";
        std::fs::write(&list, text).map_err(|e| SelftestError::Io { path: list.clone(), source: e })?;
        let spec = SourceSpec::List { root: self.path("samples/nyud"), list, depth_scale: 5000.0, label_palette: None };
        let opened = open(&spec, &OpenOptions::default());
        let _ = std::fs::remove_dir_all(&dir);
        let (ds, _) = opened?;
        let mut samples = Vec::new();
        for i in 0..2 {
            let s = ds.get(i)?;
            samples.push(match crop {
                Some([h, w]) => {
                    let (top, left) = ((h as isize - 480) / 2, (w as isize - 640) / 2);
                    (i, hydra_data::augment::place(s, [h, w], top, left, 255), [h, w])
                }
                None => (i, s, [480, 640]),
            });
        }
        Ok(collate(samples, 255))
    }
}

fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Max |a − b| / max |b| (∞ when the lengths differ).
pub fn max_relative_error(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0f32, f32::max);
    err as f64 / scale as f64
}

/// The fixture checkpoint's segmentation logits and depth on frame 000464 on `device`,
/// against PyTorch's: `[(segm ratio), (depth ratio)]` as max |err| / max |reference|.
pub fn inference_errors(fx: &Fixtures, device: &Device) -> Result<[f64; 2], SelftestError> {
    let img = image_io::read_rgb(&fx.path("samples/nyud/000464.png"))?;
    let pred = crate::predict::predict(&fx.network(device)?, device, &img);
    let mut out = [0.0; 2];
    for (i, (ours, rel)) in [(&pred.segm_logits, "pytorch/hydranet40_s0_000464_segm.npy"), (&pred.depth_raw, "pytorch/hydranet40_s0_000464_depth.npy")]
        .into_iter()
        .enumerate()
    {
        let path = fx.path(rel);
        let reference = npy::read(&path)?.to_f32();
        let ours = ours.as_ref().ok_or_else(|| SelftestError::Fixture { path: fx.checkpoint.path.clone(), message: "the network lacks a head".into() })?;
        out[i] = max_relative_error(ours, &reference);
    }
    Ok(out)
}

/// How far the fixture checkpoint's outputs on frame 000464 move on burn-flex when every
/// third input value moves up and every third down by one ulp: `[segm, depth]` as
/// max |difference| / max |output|. The float sensitivity of inference itself, the scale
/// against which another valid summation order is judged.
pub fn inference_nudge_spread(fx: &Fixtures) -> Result<[f64; 2], SelftestError> {
    let device = Device::flex();
    let img = image_io::read_rgb(&fx.path("samples/nyud/000464.png"))?;
    let model = fx.network(&device)?;
    Ok(nudge_spread(&model, &device, &img))
}

/// How far `model`'s segmentation and depth outputs on `img` move (max |Δ| / max |output|)
/// when its normalised input moves by one ulp (every third value up, every third down).
pub fn nudge_spread(model: &HydraNet, device: &Device, img: &image_io::RgbImage) -> [f64; 2] {
    let (h, w) = (img.height, img.width);
    let x = hydra_data::normalize::normalize_chw(&img.data, w, h);
    let outputs = |x: Vec<f32>| {
        let out = model.forward(Tensor::<4>::from_data(TensorData::new(x, [1, 3, h, w]), device));
        let host = |t: Option<Tensor<4>>| t.map(|t| t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()).unwrap_or_default();
        [host(out.segm), host(out.depth)]
    };
    let base = outputs(x.clone());
    let moved = outputs(nudged(&x));
    [max_relative_error(&moved[0], &base[0]), max_relative_error(&moved[1], &base[1])]
}

/// `x` with every third value moved up and every third down by one ulp.
fn nudged(x: &[f32]) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, v)| match i % 3 {
            0 => f32::from_bits(v.to_bits() + 1),
            1 => f32::from_bits(v.to_bits() - 1),
            _ => *v,
        })
        .collect()
}

/// One SGD step of the authors' recipe (momentum 0.9, weight decay 1e-5, learning rates 1e-3
/// encoder / 1e-2 decoder, losses ½ CE + ½ L1) from the fixture checkpoint on `host`, on
/// `device` (an autodiff device): the total, segmentation and depth losses before the step and
/// the network's tensors after it.
pub fn sgd_step(fx: &Fixtures, device: &Device, host: &HostBatch) -> Result<([f64; 3], StateDict), SelftestError> {
    let net = fx.network(device)?;
    let tasks = [Task::Segmentation, Task::Depth];
    let module = TrainModule { net, task_weights: None };
    let mut optim = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: false });
    let losses = task_losses(&module.net, host.to_device(device), &tasks, 255, DepthLoss::L1);
    let total = Weighting::Fixed(vec![0.5, 0.5]).combine(&losses, &[0.5, 0.5], None);
    let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f32>() as f64;
    let got = [scalar(&total), scalar(&losses[0]), scalar(&losses[1])];
    let grads = GradientsParams::from_grads(total.backward(), &module);
    let hyper = |path: &str| Hyper { lr: if path.starts_with("net.encoder") { 1e-3 } else { 1e-2 }, weight_decay: 1e-5 };
    let module = optim.step(module, grads, hyper, 1.0);
    Ok((got, module.net.state_dict()))
}

/// How `ours` (after one step from the fixture checkpoint, losses `losses`) compares with
/// `expected` after the same step (losses `reference_losses`).
pub fn compare_step(fx: &Fixtures, losses: [f64; 3], ours: &StateDict, reference_losses: [f64; 3], expected: &StateDict) -> Result<StepReport, SelftestError> {
    let start = &fx.checkpoint.state;
    let mismatch = |message: String| SelftestError::Fixture { path: fx.checkpoint.path.clone(), message };
    let mut update_errors = Vec::new();
    let mut worst_bn = (0.0f64, String::new());
    for (key, want) in expected.iter() {
        let got = ours.get(key).ok_or_else(|| mismatch(format!("{key} missing after the step")))?;
        let (g, w) = (got.to_f32(), want.to_f32());
        if g.len() != w.len() {
            return Err(mismatch(format!("{key}: {} values, reference {}", g.len(), w.len())));
        }
        if key.ends_with("num_batches_tracked") {
            let before = start.get(key).map(|t| t.to_f32()[0]).unwrap_or(f32::NAN);
            if g != vec![before + 1.0] || w != g {
                return Err(mismatch(format!("{key}: {g:?}, reference {w:?}, before {before}")));
            }
            continue;
        }
        if key.contains("running_") {
            let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
            let scale = w.iter().map(|a| a.abs()).fold(0f32, f32::max) as f64;
            if err / scale > worst_bn.0 || err.is_nan() {
                worst_bn = (if err.is_nan() { f64::INFINITY } else { err / scale }, key.to_string());
            }
            continue;
        }
        let s0 = start.get(key).ok_or_else(|| mismatch(format!("{key} not in the checkpoint")))?.to_f32();
        let l2 = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = l2(&mut g.iter().zip(&w).map(|(a, b)| (*a - *b) as f64));
        let update = l2(&mut w.iter().zip(&s0).map(|(a, b)| (*a - *b) as f64));
        let norm = l2(&mut w.iter().map(|a| *a as f64));
        let e = diff / (update + 1e-3 * norm);
        update_errors.push((if e.is_nan() { f64::INFINITY } else { e }, key.to_string()));
    }
    update_errors.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = update_errors.get(update_errors.len() / 2).map_or(f64::INFINITY, |e| e.0);
    let worst = update_errors.last().cloned().unwrap_or((f64::INFINITY, String::new()));
    Ok(StepReport { losses, reference_losses, median, worst, worst_bn })
}

/// The step on burn-flex at a batch's size, the reference of a backend's step there, with its
/// own float sensitivity.
#[derive(Debug, Clone)]
pub struct FlexStep {
    /// Total, segmentation and depth loss before the step.
    pub losses: [f64; 3],
    /// The tensors after it.
    pub state: StateDict,
    /// How far the step moves when every third input value is moved up and every third down
    /// by one ulp: the float sensitivity of the step itself at this size.
    pub spread: StepReport,
}

/// [`FlexStep`] on `host`.
pub fn flex_step(fx: &Fixtures, host: &HostBatch) -> Result<FlexStep, SelftestError> {
    let flex = Device::flex().autodiff();
    let (losses, state) = sgd_step(fx, &flex, host)?;
    let mut moved = host.clone();
    moved.images = nudged(&host.images);
    let (nudged_losses, nudged_state) = sgd_step(fx, &flex, &moved)?;
    let spread = compare_step(fx, nudged_losses, &nudged_state, losses, &state)?;
    Ok(FlexStep { losses, state, spread })
}

/// The step at batch 2 × 480×640 on `device` (an autodiff device) against PyTorch's
/// (`pytorch/sgd_step1.{json,safetensors}`, made by scripts/make_step_fixture.py).
pub fn step_against_pytorch(fx: &Fixtures, device: &Device) -> Result<StepReport, SelftestError> {
    let json_path = fx.path("pytorch/sgd_step1.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| SelftestError::Io { path: json_path.clone(), source: e })?;
    let bad = |message: &str| SelftestError::Fixture { path: json_path.clone(), message: message.into() };
    let reference: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let r = &reference["losses"][0];
    let field = |k: &str| r[k].as_f64().ok_or_else(|| bad(&format!("no losses[0].{k}")));
    let want = [field("loss")?, field("segm")?, field("depth")?];
    let (got, ours) = sgd_step(fx, device, &fx.step_batch(None)?)?;
    let expected = weights::read(&fx.path("pytorch/sgd_step1.safetensors"))?.state;
    compare_step(fx, got, &ours, want, &expected)
}
