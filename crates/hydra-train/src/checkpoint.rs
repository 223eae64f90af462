//! Checkpoints: everything needed to continue a run exactly, in one burnpack file written
//! atomically, followed by a marker file that vouches for it (size and hash). A checkpoint
//! without a valid marker is incomplete and never used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hydra_model::state::{RawTensor, StateDict, TensorValues};
use hydra_model::weights::native;
use serde::{Deserialize, Serialize};

use crate::weighting::LossHistory;

/// Format version of the checkpoint metadata.
pub const CHECKPOINT_VERSION: u32 = 1;
const META_KEY: &str = "hydra.checkpoint";

/// Early-stopping state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopState {
    /// Best monitored value so far (in "higher is better" orientation).
    pub best: Option<f64>,
    /// Epoch of the best value.
    pub best_epoch: Option<usize>,
    /// Validations since the last improvement.
    pub bad_validations: usize,
}

impl EarlyStopState {
    /// A validation at `epoch` gave the monitored `value` ("higher is better", see
    /// `components::monitor_value`): it improves when it beats the best by more than
    /// `min_delta` (the first value always does). Returns whether it improved.
    pub fn observe(&mut self, value: f64, min_delta: f64, epoch: usize) -> bool {
        if self.best.is_none_or(|b| value > b + min_delta) {
            self.best = Some(value);
            self.best_epoch = Some(epoch);
            self.bad_validations = 0;
            true
        } else {
            self.bad_validations += 1;
            false
        }
    }

    /// Whether `patience` validations in a row have not improved.
    pub fn exhausted(&self, patience: usize) -> bool {
        self.bad_validations >= patience
    }
}

/// The scalar part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub version: u32,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub iteration: u64,
    /// The run's seed (data order and augmentation derive from it).
    pub seed: u64,
    /// Per-parameter optimiser step counts.
    pub optimizer_steps: BTreeMap<String, u64>,
    pub early_stopping: EarlyStopState,
    pub loss_history: LossHistory,
    /// The state of the objective (gradient methods' random generator and running values).
    #[serde(default)]
    pub objective: crate::objective::ObjectiveState,
    /// The resolved configuration of the run.
    pub config: String,
}

/// A checkpoint in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// Network tensors, reference keys.
    pub model: StateDict,
    /// Uncertainty-weighting log-variances, if used.
    pub log_vars: Option<RawTensor>,
    /// Optimiser slots: `(parameter path, slot index) → values`.
    pub optimizer: BTreeMap<(String, usize), RawTensor>,
}

/// The marker written after a checkpoint file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker {
    file: String,
    bytes: u64,
    fnv1a64: String,
}

/// FNV-1a, 64 bit: a cheap hash that detects truncated or damaged files.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

fn io(path: &Path, e: std::io::Error) -> CheckpointError {
    CheckpointError::Io { path: path.into(), source: e }
}

/// File name of the checkpoint after `epoch` epochs.
pub fn file_name(epoch: usize) -> String {
    format!("epoch-{epoch:05}.{}", native::EXTENSION)
}

/// The rows of an objective buffer stored as a `[rows, columns]` tensor of f64 bit patterns.
fn buffer_rows(t: &RawTensor) -> Option<Vec<Vec<f64>>> {
    let TensorValues::I64(bits) = &t.values else { return None };
    let [rows, columns] = t.shape[..] else { return None };
    if rows.checked_mul(columns) != Some(bits.len()) || columns == 0 {
        return None;
    }
    Some(bits.chunks(columns).map(|r| r.iter().map(|&b| f64::from_bits(b as u64)).collect()).collect())
}

fn marker_path(ckpt: &Path) -> PathBuf {
    ckpt.with_extension("ok")
}

impl Checkpoint {
    /// Serialise to burnpack bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut sd = StateDict::new();
        for (k, t) in self.model.iter() {
            sd.insert(format!("model/{k}"), t.clone());
        }
        if let Some(t) = &self.log_vars {
            sd.insert("weighting/log_vars", t.clone());
        }
        for ((path, slot), t) in &self.optimizer {
            sd.insert(format!("optim/{path}/{slot}"), t.clone());
        }
        for (name, rows) in &self.meta.objective.buffers {
            let bits: Vec<i64> = rows.iter().flatten().map(|v| v.to_bits() as i64).collect();
            sd.insert(format!("objective/{name}"), RawTensor::i64(vec![rows.len(), rows.first().map_or(0, Vec::len)], bits));
        }
        let mut meta = BTreeMap::new();
        meta.insert(META_KEY.to_string(), serde_json::to_string(&self.meta).expect("meta is JSON"));
        native::write(&sd, &meta).expect("in-memory burnpack")
    }

    /// Parse burnpack bytes.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let invalid = |d: String| CheckpointError::Invalid { path: path.into(), detail: d };
        let (sd, meta) = native::read(bytes).map_err(|e| invalid(format!("not a hydra checkpoint: {e}")))?;
        let json = meta.get(META_KEY).ok_or_else(|| invalid("no checkpoint metadata (is this an exported weight file? use it as model.init_weights)".into()))?;
        let meta: CheckpointMeta = serde_json::from_str(json).map_err(|e| invalid(format!("bad checkpoint metadata: {e}")))?;
        if meta.version != CHECKPOINT_VERSION {
            return Err(invalid(format!("checkpoint version {} (this hydra reads {CHECKPOINT_VERSION})", meta.version)));
        }
        let mut model = StateDict::new();
        let mut log_vars = None;
        let mut optimizer = BTreeMap::new();
        let mut meta = meta;
        for (k, t) in sd.iter() {
            if let Some(rest) = k.strip_prefix("model/") {
                model.insert(rest, t.clone());
            } else if k == "weighting/log_vars" {
                log_vars = Some(t.clone());
            } else if let Some(rest) = k.strip_prefix("optim/") {
                let (path, slot) = rest.rsplit_once('/').ok_or_else(|| invalid(format!("bad optimiser key `{k}`")))?;
                let slot: usize = slot.parse().map_err(|_| invalid(format!("bad optimiser key `{k}`")))?;
                optimizer.insert((path.to_string(), slot), t.clone());
            } else if let Some(name) = k.strip_prefix("objective/") {
                meta.objective.buffers.insert(name.to_string(), buffer_rows(t).ok_or_else(|| invalid(format!("bad objective buffer `{k}`")))?);
            } else {
                return Err(invalid(format!("unexpected tensor `{k}`")));
            }
        }
        Ok(Self { meta, model, log_vars, optimizer })
    }

    /// Write to `dir/epoch-NNNNN.bpk` atomically, then its marker. Returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(file_name(self.meta.epochs_done));
        let bytes = self.to_bytes();
        match crate::fault::checkpoint_pause() {
            None => hydra_model::fsio::write_atomic(&path, &bytes).map_err(|(p, e)| io(&p, e))?,
            Some(pause) => write_with_pause(&path, &bytes, pause)?,
        }
        let marker = Marker {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: bytes.len() as u64,
            fnv1a64: format!("{:016x}", fnv1a64(&bytes)),
        };
        let mpath = marker_path(&path);
        hydra_model::fsio::write_atomic(&mpath, serde_json::to_string(&marker).unwrap().as_bytes()).map_err(|(p, e)| io(&p, e))?;
        Ok(path)
    }

    /// Read a checkpoint, verifying its marker when one exists beside it.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = hydra_model::fsio::read_input(path, hydra_model::weights::MAX_FILE_BYTES).map_err(|e| io(path, e))?;
        let mpath = marker_path(path);
        if mpath.exists() {
            verify(path, &bytes)?;
        } else {
            return Err(CheckpointError::Invalid {
                path: path.into(),
                detail: "no completion marker beside it (the write did not finish); refusing to resume from it".into(),
            });
        }
        Self::from_bytes(&bytes, path)
    }
}

/// `write_atomic` with a pause halfway through (fault injection for the crash tests).
fn write_with_pause(path: &Path, bytes: &[u8], pause: std::time::Duration) -> Result<(), CheckpointError> {
    use std::io::Write;
    let dest = hydra_model::fsio::destination(path).map_err(|e| io(path, e))?;
    let (tmp, mut f) = hydra_model::fsio::create_temp(&dest).map_err(|e| io(path, e))?;
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).map_err(|e| io(&tmp, e))?;
    f.flush().map_err(|e| io(&tmp, e))?;
    std::thread::sleep(pause);
    f.write_all(&bytes[half..]).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    hydra_model::fsio::commit(&tmp, &dest).map_err(|e| io(path, e))
}

fn verify(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mpath = marker_path(path);
    let text = hydra_model::fsio::read_text(&mpath).map_err(|e| io(&mpath, e))?;
    let m: Marker = serde_json::from_str(&text).map_err(|e| CheckpointError::Invalid { path: mpath.clone(), detail: format!("damaged marker: {e}") })?;
    if m.bytes != bytes.len() as u64 || m.fnv1a64 != format!("{:016x}", fnv1a64(bytes)) {
        return Err(CheckpointError::Invalid { path: path.into(), detail: "content does not match its completion marker (damaged or truncated)".into() });
    }
    Ok(())
}

/// Complete checkpoints in `dir`, oldest first, as (epochs done, path).
pub fn complete_checkpoints(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(num) = name.strip_prefix("epoch-").and_then(|r| r.strip_suffix(&format!(".{}", native::EXTENSION))) else { continue };
        let Ok(epoch) = num.parse::<usize>() else { continue };
        let path = e.path();
        if marker_path(&path).exists() {
            out.push((epoch, path));
        }
    }
    out.sort();
    out
}

/// The newest checkpoint in `dir` whose content matches its marker.
pub fn newest_valid(dir: &Path) -> Option<(usize, PathBuf)> {
    complete_checkpoints(dir).into_iter().rev().find(|(_, p)| hydra_model::fsio::read_input(p, hydra_model::weights::MAX_FILE_BYTES).ok().is_some_and(|b| verify(p, &b).is_ok()))
}

/// Delete checkpoints except the newest `keep_last` and `keep` (the best).
pub fn prune(dir: &Path, keep_last: usize, keep: Option<usize>) {
    let all = complete_checkpoints(dir);
    let n = all.len();
    for (i, (epoch, path)) in all.into_iter().enumerate() {
        if i + keep_last >= n || Some(epoch) == keep {
            continue;
        }
        let _ = std::fs::remove_file(marker_path(&path));
        let _ = std::fs::remove_file(&path);
    }
    // Scratch files of interrupted writes (".<name>.<pid>.tmp").
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_the_best_and_clears_scratch_files() {
        let dir = hydra_testkit::scratch("hydra-unit", "prune");
        let d = dir.path();
        for epoch in 1..=5 {
            let p = d.join(file_name(epoch));
            std::fs::write(&p, b"x").unwrap();
            std::fs::write(marker_path(&p), b"{}").unwrap();
        }
        // An incomplete checkpoint (no marker), a scratch file of an interrupted write, and a
        // file that is not hydra's.
        std::fs::write(d.join(file_name(6)), b"half").unwrap();
        std::fs::write(d.join(format!(".{}.123.tmp", file_name(7))), b"t").unwrap();
        std::fs::write(d.join("notes.txt"), b"mine").unwrap();
        std::fs::write(d.join("mine.tmp"), b"mine").unwrap();
        std::fs::write(d.join(".mine"), b"mine").unwrap();
        prune(d, 2, Some(1));
        let mut left: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let want = |e: usize| [file_name(e), marker_path(Path::new(&file_name(e))).to_string_lossy().into_owned()];
        let mut expected: Vec<String> = [1, 4, 5].into_iter().flat_map(want).chain([file_name(6), "notes.txt".into(), "mine.tmp".into(), ".mine".into()]).collect();
        expected.sort();
        assert_eq!(left, expected, "the best (1) and the newest two complete (4, 5) stay; the incomplete one and others' files are not touched");
        assert_eq!(complete_checkpoints(d).iter().map(|(e, _)| *e).collect::<Vec<_>>(), [1, 4, 5]);
        // Keep one, no best: the newest alone.
        prune(d, 1, None);
        assert_eq!(complete_checkpoints(d).iter().map(|(e, _)| *e).collect::<Vec<_>>(), [5]);
    }
}
