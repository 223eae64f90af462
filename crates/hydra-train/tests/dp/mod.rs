//! Helpers of the data-parallel tests (MPI ranks, replicas on threads): real NYUv2 frames,
//! the training config, runs, their checkpoints and losses, and the distance between two runs
//! with the bounds of `pytorch_sgd_step.rs`.
//!
//! Bound (the principle of `pytorch_sgd_step.rs`): twice the spread of the same steps on
//! burn-flex when the arithmetic moves by rounding alone. Several ranks change only the order
//! of additions (the BatchNorm sums, the gradient average), so their distance from one process
//! is measured against the bounds of that test: losses 1.5e-4 relative (5 × its 1-ulp spread
//! of 3.1e-5), weight updates median 2 % and worst 10 % of each tensor's update (2 × 0.98 %
//! and 2 × 4.9 %), BatchNorm statistics 1.6e-6 (2 × 8.0e-7) relative to their range per two
//! steps. From scratch some tensors are zero in exact arithmetic and hold rounding noise (a
//! BatchNorm shift whose output feeds another BatchNorm: 1e-15; the running mean of such an
//! output: 1e-9): a floor of 1e-7 on an update's norm, and a running mean measured against its
//! channels' standard deviation, keep noise from being divided by noise.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hydra_model::state::is_buffer_key;
use hydra_model::StateDict;
use hydra_train::checkpoint::Checkpoint;

use crate::common::{fixtures, text};

/// A NYUv2 folder of the two fixture frames, each listed `copies` times (augmentation makes
/// every entry a different crop: the per-sample random stream is keyed by the entry).
pub fn nyud(dir: &Path, copies: usize) -> PathBuf {
    let data = dir.join("nyud");
    for sub in ["rgb", "masks", "depth"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
    }
    let mut list = String::new();
    for id in ["000433", "000464"] {
        let s = fixtures().join("samples/nyud");
        std::fs::copy(s.join(format!("{id}.png")), data.join(format!("rgb/{id}.png"))).unwrap();
        std::fs::copy(s.join(format!("segm_gt_{id}.png")), data.join(format!("masks/{id}.png"))).unwrap();
        std::fs::copy(s.join(format!("depth_gt_{id}.png")), data.join(format!("depth/{id}.png"))).unwrap();
    }
    for _ in 0..copies {
        for id in ["000433", "000464"] {
            list.push_str(&format!("rgb/{id}.png\tmasks/{id}.png\tdepth/{id}.png\n"));
        }
    }
    std::fs::write(data.join("list.txt"), list).unwrap();
    data
}

/// The training config: batch 4 of real frames at 96×128 crops, SGD, every epoch checkpointed.
pub fn config(dir: &Path, data: &Path, run: &Path, epochs: usize, extra: &str) -> PathBuf {
    let text = format!(
        r#"[model]
num_classes = 40
[data]
workers = 1
[data.train]
kind = "nyud"
root = "{data}"
list = "list.txt"
[augment]
scale = [0.2, 0.3]
crop = [96, 128]
flip = true
jitter = 0.2
[optimizer]
kind = "sgd"
momentum = 0.9
encoder_lr = 1e-3
decoder_lr = 1e-2
[schedule]
kind = "constant"
[training]
epochs = {epochs}
batch_size = 4
log_interval = 1
val_interval = 0
[checkpoint]
interval = 1
keep_last = 10
[output]
dir = "{run}"
{extra}"#,
        data = data.display(),
        run = run.display()
    );
    let p = dir.join(format!("{}.toml", run.file_name().unwrap().to_string_lossy()));
    std::fs::write(&p, text).unwrap();
    p
}

pub fn hydra() -> &'static str {
    env!("CARGO_BIN_EXE_hydra")
}

/// `hydra train --config C ARGS` in one process.
pub fn one_process(cfg: &Path, args: &[&str]) -> Output {
    Command::new(hydra()).args(["train", "--plain", "--config", cfg.to_str().unwrap()]).args(args).env("RAYON_NUM_THREADS", "1").output().expect("run hydra")
}

pub fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "failed:\n{out}\n{err}");
    out
}

pub fn checkpoint(run: &Path, epoch: usize) -> Checkpoint {
    Checkpoint::load(&run.join(format!("checkpoints/epoch-{epoch:05}.bpk"))).unwrap()
}

/// Per-iteration losses of metrics.jsonl: (total, each task's).
pub fn losses(run: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "iter")
        .map(|r| {
            let mut v = vec![r["loss"].as_f64().unwrap()];
            v.extend(["segm", "depth"].iter().map(|t| r["losses"][t].as_f64().unwrap()));
            v
        })
        .collect()
}

pub fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// How far `b` is from `a`: the largest relative loss difference; the median and worst of
/// each parameter tensor's ‖update_b − update_a‖ / ‖update_a‖ (updates from `start`); the
/// largest BatchNorm-statistic difference relative to that tensor's largest magnitude.
pub struct Distance {
    pub loss: f64,
    pub update_median: f64,
    pub update_worst: f64,
    pub worst_key: String,
    pub bn: (f64, String),
}

pub fn distance(start: &StateDict, a: &StateDict, b: &StateDict, la: &[Vec<f64>], lb: &[Vec<f64>]) -> Distance {
    assert_eq!(la.len(), lb.len(), "iterations logged");
    let loss = la.iter().flatten().zip(lb.iter().flatten()).map(|(x, y)| (x - y).abs() / x.abs().max(1e-12)).fold(0.0, f64::max);
    let mut rel = Vec::new();
    let mut bn = (0.0f64, String::new());
    for (key, ta) in a.iter() {
        let (va, vb) = (ta.to_f32(), b.get(key).unwrap().to_f32());
        if key.ends_with("num_batches_tracked") {
            assert_eq!(va, vb, "{key}");
        } else if is_buffer_key(key) {
            // A mean in units of its channel's standard deviation (the normalisation it moves).
            let spread = match key.strip_suffix("running_mean") {
                Some(p) => a.get(&format!("{p}running_var")).unwrap().to_f32().iter().map(|v| v.sqrt()).fold(0f32, f32::max),
                None => 0.0,
            };
            let scale = va.iter().map(|v| v.abs()).fold(spread, f32::max).max(1e-3) as f64;
            let e = va.iter().zip(&vb).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max) / scale;
            if e > bn.0 {
                bn = (e, key.to_string());
            }
        } else {
            // As `selftest::compare_step`: plus 1e-3 ‖w‖ for tensors that barely move, and 1e-7
            // for those that are zero in exact arithmetic (see the file's doc).
            let v0 = start.get(key).unwrap().to_f32();
            let ua = norm(va.iter().zip(&v0).map(|(x, s)| (x - s) as f64));
            let d = norm(va.iter().zip(&vb).map(|(x, y)| (x - y) as f64));
            rel.push((d / (ua + 1e-3 * norm(va.iter().map(|&x| x as f64)) + 1e-7), key.to_string()));
        }
    }
    rel.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (update_worst, worst_key) = rel.last().cloned().unwrap();
    Distance { loss, update_median: rel[rel.len() / 2].0, update_worst, worst_key, bn }
}

impl Distance {
    /// Within the bounds of the one-step test after `steps` steps: the BatchNorm bound grows
    /// with the steps (each step's statistics enter the running averages with their own
    /// rounding: 1.6e-6 per two steps).
    pub fn check(&self, what: &str, steps: usize) {
        let bn_bound = 1.6e-6 * (steps as f64 / 2.0).max(1.0);
        let line = format!(
            "{what}: losses {:.2e}, updates median {:.3} % worst {:.3} % ({}), BatchNorm {:.2e} ({})",
            self.loss,
            100.0 * self.update_median,
            100.0 * self.update_worst,
            self.worst_key,
            self.bn.0,
            self.bn.1
        );
        eprintln!("{line}");
        assert!(self.loss <= 1.5e-4 && self.update_median <= 0.02 && self.update_worst <= 0.10 && self.bn.0 <= bn_bound, "beyond the bounds: {line}");
    }
}

/// The initial network of `cfg` (every rank starts from rank 0's, which is this one).
pub fn initial(cfg: &Path) -> StateDict {
    let config = hydra_train::config::Config::from_file(cfg, &[]).unwrap();
    hydra_train::components::initial_network(&config, &burn::tensor::Device::flex()).unwrap().state_dict()
}

pub fn rewrite(path: &Path, from: &str, to: &str) -> PathBuf {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from));
    std::fs::write(path, s.replace(from, to)).unwrap();
    path.to_path_buf()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy().contains(".lock") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The state dict of a safetensors fixture.
pub fn safetensors(path: &Path) -> StateDict {
    let file = hydra_model::weights::read(path).unwrap();
    file.state
}

/// Every tensor of `a` equals `b`'s bit for bit (`what` names the comparison).
pub fn assert_same_bits(a: &StateDict, b: &StateDict, what: &str) {
    for (key, t) in a.iter() {
        assert_eq!(t.to_f32(), b.get(key).unwrap().to_f32(), "{key}: {what}");
    }
}

/// `run` holds no checkpoint.
pub fn no_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints")).map_or(true, |mut d| d.next().is_none())
}
