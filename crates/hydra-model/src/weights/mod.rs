//! Weight files: recognised by content, read without executing code, applied strictly.
//!
//! | format | read | write |
//! |---|---|---|
//! | PyTorch checkpoint, legacy serialization (official releases, PyTorch ≤ 1.5) | yes | no |
//! | PyTorch checkpoint, zip serialization (PyTorch ≥ 1.6) | yes | no |
//! | torchvision MobileNetV2 state dict (either serialization) | yes, into the encoder | no |
//! | safetensors, reference key layout | yes | yes |
//! | hydra native (burnpack, `.bpk`) | yes | yes |
//! | hydra training checkpoint (burnpack) | yes, its network tensors | (by training) |
//!
//! Every file is read through [`crate::fsio::read_input`] (a FIFO, a device or a file over
//! [`MAX_FILE_BYTES`] is refused before a byte is read); every reader checks sizes and offsets
//! against the file before allocating and walks nested structures without recursion; every
//! float read must be finite and every BatchNorm variance non-negative ([`values`]); and the
//! files hydra writes carry a checksum of their tensors that its readers verify
//! ([`checksum`]).

pub mod checksum;
pub mod native;
pub mod pickle;
pub mod safetensors;
pub mod torch;
pub mod torchvision;
pub mod values;
pub mod zip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::WeightsError;
use hydra_core::text::one_line;
use crate::fsio::{read_input, write_atomic};
use crate::hydranet::{HydraNet, HydraNetConfig, Task};
use crate::state::{LoadReport, ReferenceKeys, StateDict, StateLoader};

/// Largest weight file read (far above any HydraNet checkpoint; bounds memory on bad input).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// The container format of a weight file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `torch.save` zip archive.
    TorchZip,
    /// `torch.save` legacy (non-zip) serialization.
    TorchLegacy,
    /// safetensors.
    Safetensors,
    /// hydra's burnpack file.
    Native,
    /// A hydra training checkpoint (burnpack): its `model/` tensors are the network; the
    /// optimiser and task-weighting state are left out.
    Checkpoint,
}

impl WeightFormat {
    /// A short name, for messages.
    pub fn short_name(self) -> &'static str {
        match self {
            WeightFormat::TorchZip => "PyTorch zip checkpoint",
            WeightFormat::TorchLegacy => "PyTorch legacy checkpoint",
            WeightFormat::Safetensors => "safetensors",
            WeightFormat::Native => "hydra native file",
            WeightFormat::Checkpoint => "hydra training checkpoint",
        }
    }
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightFormat::TorchZip => "PyTorch checkpoint (zip serialization)",
            WeightFormat::TorchLegacy => "PyTorch checkpoint (legacy serialization)",
            WeightFormat::Safetensors => "safetensors",
            WeightFormat::Native => "hydra native (burnpack)",
            WeightFormat::Checkpoint => "hydra training checkpoint (burnpack; its network tensors, the optimiser state left out)",
        })
    }
}

/// The key layout found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// `layer1.*`, `conv3.*`, `crp1.*`, `segm.*`, ... (official checkpoints, our exports).
    Reference,
    /// torchvision MobileNetV2 (`features.*`), converted to the reference encoder on read.
    Torchvision,
}

/// A weight file read into memory, its tensors in the reference key layout.
#[derive(Debug, Clone)]
pub struct WeightFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Detected container format.
    pub format: WeightFormat,
    /// Detected key layout.
    pub layout: KeyLayout,
    /// The entry the tensors came from (`state_dict`), empty for the top level.
    pub container: String,
    /// A prefix removed from every key (`module.` from multi-GPU training).
    pub stripped_prefix: Option<String>,
    /// The tensors, reference keys.
    pub state: StateDict,
    /// Metadata strings (safetensors and native files).
    pub metadata: BTreeMap<String, String>,
}

/// Which part of the network a load fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadScope {
    /// Every tensor of the network, strictly: missing, unexpected or mis-shaped keys are errors.
    Full,
    /// The encoder only (`layer1`..`layer8`), strictly within it; other keys in the file are
    /// ignored. For fine-tuning to another class count, or from ImageNet weights.
    EncoderOnly,
}

fn detect(b: &[u8]) -> Option<WeightFormat> {
    if torch::looks_zip(b) {
        Some(WeightFormat::TorchZip)
    } else if torch::looks_legacy(b) {
        Some(WeightFormat::TorchLegacy)
    } else if native::looks_native(b) {
        Some(WeightFormat::Native)
    } else if safetensors::looks_safetensors(b) {
        Some(WeightFormat::Safetensors)
    } else {
        None
    }
}

fn describe_start(b: &[u8]) -> String {
    if b.is_empty() {
        return "the file is empty".into();
    }
    let hex: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    if b[0] == 0x80 {
        format!("a pickle without PyTorch's framing, first bytes {}", hex.join(" "))
    } else {
        format!("first bytes {}", hex.join(" "))
    }
}

/// Read a weight file, recognising its format by content. Only a regular file of at most
/// [`MAX_FILE_BYTES`] is read: a FIFO, a device (`/dev/zero` behind a symlink) or a folder is
/// refused at once, naming the path.
pub fn read(path: &Path) -> Result<WeightFile, WeightsError> {
    let bytes = read_input(path, MAX_FILE_BYTES).map_err(|e| WeightsError::io(path, e))?;
    from_bytes(path, &bytes)
}

/// Prefix of a training checkpoint's network tensors.
const CHECKPOINT_MODEL: &str = "model/";

/// A training checkpoint's network: its `model/` tensors, prefix removed.
fn checkpoint_network(state: StateDict) -> Result<StateDict, String> {
    let model = state.map_keys(|k| k.strip_prefix(CHECKPOINT_MODEL).map(str::to_string));
    if model.is_empty() {
        return Err(format!("a training checkpoint without network tensors (`{CHECKPOINT_MODEL}...`)"));
    }
    Ok(model)
}

/// Parse weight-file bytes (`path` is used in messages only).
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<WeightFile, WeightsError> {
    let mut format = detect(bytes).ok_or_else(|| WeightsError::UnknownFormat { path: path.into(), detail: describe_start(bytes) })?;
    let name = format.short_name();
    let corrupt = |d: String| WeightsError::corrupt(path, name, d);
    let (state, mut container, metadata) = match format {
        WeightFormat::TorchZip => {
            let f = torch::read_zip(bytes).map_err(corrupt)?;
            (f.state, f.container.to_string(), BTreeMap::new())
        }
        WeightFormat::TorchLegacy => {
            let f = torch::read_legacy(bytes).map_err(corrupt)?;
            (f.state, f.container.to_string(), BTreeMap::new())
        }
        WeightFormat::Safetensors => {
            let (s, m) = safetensors::read(bytes).map_err(corrupt)?;
            (s, String::new(), m)
        }
        WeightFormat::Native | WeightFormat::Checkpoint => {
            let (s, m) = native::read(bytes).map_err(corrupt)?;
            (s, String::new(), m)
        }
    };
    let state = if format == WeightFormat::Native && metadata.contains_key(native::CHECKPOINT_KEY) {
        format = WeightFormat::Checkpoint;
        container = CHECKPOINT_MODEL.to_string();
        checkpoint_network(state).map_err(|d| WeightsError::corrupt(path, format.short_name(), d))?
    } else {
        state
    };
    let corrupt = |d: String| WeightsError::corrupt(path, format.short_name(), d);
    if state.is_empty() {
        return Err(corrupt("the file holds no tensors".into()));
    }
    values::check(&state, if format == WeightFormat::Checkpoint { CHECKPOINT_MODEL } else { "" }).map_err(corrupt)?;
    let stripped_prefix = ["module."].into_iter().find(|p| state.keys().all(|k| k.starts_with(p))).map(str::to_string);
    let state = match &stripped_prefix {
        Some(p) => state.map_keys(|k| Some(k[p.len()..].to_string())),
        None => state,
    };
    let (state, layout) = if torchvision::is_torchvision(&state) {
        (torchvision::to_reference(&state, 1e-5), KeyLayout::Torchvision)
    } else {
        (state, KeyLayout::Reference)
    };
    Ok(WeightFile { path: path.into(), format, layout, container, stripped_prefix, state, metadata })
}

impl WeightFile {
    /// Whether the file holds decoder or head tensors (not only an encoder).
    pub fn has_decoder(&self) -> bool {
        self.state.keys().any(is_decoder_key)
    }

    /// Whether the file holds any tensor of `task`'s head (`pre_<task>.*` or `<task>.*`).
    fn has_head(&self, task: Task) -> bool {
        let (pre, out) = (format!("pre_{}.", task.key()), format!("{}.", task.key()));
        self.state.keys().any(|k| k.starts_with(&pre) || k.starts_with(&out))
    }

    /// The first of `keys` present, and its leading dimension.
    fn leading_dim(&self, keys: &[&str]) -> Option<usize> {
        keys.iter().find_map(|k| self.state.get(k)).and_then(|t| t.shape.first().copied())
    }

    /// The network configuration: from the file's metadata if it carries one, otherwise
    /// inferred from the tensor shapes (classes from `segm.weight`, tasks from the heads
    /// present, CRP stages and decoder width from the decoder keys).
    pub fn config(&self) -> Result<HydraNetConfig, WeightsError> {
        if let Some(json) = self.metadata.get(native::CONFIG_KEY) {
            let c: HydraNetConfig = serde_json::from_str(json)
                .map_err(|e| WeightsError::Config { path: self.path.clone(), detail: one_line(&format!("bad `{}` metadata: {e}", native::CONFIG_KEY)) })?;
            c.validate().map_err(|e| WeightsError::Config { path: self.path.clone(), detail: e })?;
            return Ok(c);
        }
        if !self.has_decoder() {
            return Err(WeightsError::Config {
                path: self.path.clone(),
                detail: "the file holds only an encoder (no decoder or heads); it can initialise the encoder for training, not predict".into(),
            });
        }
        // A head counts if any of its tensors is there, and the CRP stages are the highest
        // present in any block, so that a tensor missing from the file is reported as missing
        // by the strict load, not its neighbours as unexpected.
        let tasks: Vec<Task> = Task::ALL.into_iter().filter(|&t| self.has_head(t)).collect();
        let num_classes = match self.leading_dim(&["segm.weight", "segm.bias"]) {
            Some(n) => n,
            None if tasks.contains(&Task::Segmentation) => {
                return Err(WeightsError::Config {
                    path: self.path.clone(),
                    detail: "missing keys `segm.weight` and `segm.bias`: the class count cannot be read from the file; state it (num_classes)".into(),
                });
            }
            None => 0,
        };
        let crp_stages = (1..=16)
            .filter(|i| (1..=4).any(|b| self.state.get(&format!("crp{b}.0.{i}_outvar_dimred.weight")).is_some()))
            .max()
            .unwrap_or(4);
        let width = self
            .leading_dim(&["conv3.weight", "conv4.weight", "conv5.weight", "conv6.weight", "conv7.weight", "conv8.weight", "conv_adapt2.weight", "conv_adapt3.weight", "conv_adapt4.weight"])
            .unwrap_or(256);
        let c = HydraNetConfig::new(num_classes).with_tasks(tasks).with_crp_stages(crp_stages).with_decoder_width(width);
        c.validate().map_err(|e| WeightsError::Config { path: self.path.clone(), detail: one_line(&format!("cannot infer the network from the tensors: {e}")) })?;
        Ok(c)
    }

    /// Apply to `model`. `Full` is strict over the whole network; `EncoderOnly` strict over
    /// the encoder. Errors list every key that did not fit, with both shapes.
    pub fn apply(&self, model: HydraNet, scope: LoadScope) -> Result<(HydraNet, LoadReport), WeightsError> {
        let bad_values = |d: String| WeightsError::corrupt(&self.path, self.format.short_name(), d);
        match scope {
            LoadScope::Full => {
                if !self.has_decoder() {
                    return Err(WeightsError::Config {
                        path: self.path.clone(),
                        detail: "the file holds only an encoder (e.g. torchvision MobileNetV2): load it encoder-only".into(),
                    });
                }
                values::check(&self.state, "").map_err(bad_values)?;
                let mut loader = StateLoader::new(&self.state);
                let model = model.import_state("", &mut loader);
                self.check(model, loader.finish())
            }
            LoadScope::EncoderOnly => {
                let encoder_state = self.state.clone().map_keys(|k| is_encoder_key(k).then(|| k.to_string()));
                values::check(&encoder_state, "").map_err(bad_values)?;
                let mut loader = StateLoader::new(&encoder_state);
                let mut model = model;
                model.encoder = model.encoder.import_state("", &mut loader);
                self.check(model, loader.finish())
            }
        }
    }

    fn check(&self, model: HydraNet, report: LoadReport) -> Result<(HydraNet, LoadReport), WeightsError> {
        if report.issues.is_empty() {
            Ok((model, report))
        } else {
            Err(WeightsError::Mismatch {
                path: self.path.clone(),
                first: one_line(&report.issues[0].to_string()),
                more: report.issues.len() - 1,
                hint: self.class_hint(&report),
                report: report.describe(usize::MAX),
            })
        }
    }

    /// A hint when the segmentation head's class count differs (only then: a head that
    /// differs in another dimension, e.g. the decoder width, is not a class-count problem).
    fn class_hint(&self, report: &LoadReport) -> Option<String> {
        report.issues.iter().find_map(|i| match i {
            crate::state::KeyIssue::Shape { key, expected, found } if key == "segm.weight" || key == "segm.bias" => {
                let (&file, &model) = found.first().zip(expected.first()).filter(|(f, m)| f != m)?;
                Some(format!(
                    "`{key}` is {found:?} in the file and {expected:?} in the model: the file has {file} classes, the model {model}; set num_classes = {file} to use it, or load the encoder only to fine-tune"
                ))
            }
            _ => None,
        })
    }
}

/// Whether `key` belongs to the encoder (`layer1`..`layer8`).
pub fn is_encoder_key(key: &str) -> bool {
    key.strip_prefix("layer").and_then(|r| r.chars().next()).is_some_and(|c| c.is_ascii_digit())
}

/// Whether `key` belongs to the decoder (`conv3`..`conv8`, `conv_adapt*`, `crp*`) or a head
/// (`pre_segm`, `segm`, `depth`, `normal`, ...).
pub fn is_decoder_key(key: &str) -> bool {
    let module = key.split('.').next().unwrap_or("");
    let numbered = |p: &str| module.strip_prefix(p).is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()));
    numbered("conv") || numbered("conv_adapt") || numbered("crp") || Task::ALL.iter().any(|t| module == t.key() || module.strip_prefix("pre_") == Some(t.key()))
}

/// Build the network a weight file describes and load it strictly.
pub fn load_model(
    path: &Path,
    config: Option<&HydraNetConfig>,
    device: &burn::tensor::Device,
) -> Result<(HydraNet, WeightFile), WeightsError> {
    let file = read(path)?;
    let config = match config {
        Some(c) => c.clone(),
        None => file.config()?,
    };
    let model = config.init(device);
    let (model, _) = file.apply(model, LoadScope::Full)?;
    Ok((model, file))
}

/// The metadata written with exports.
fn export_metadata(model: &HydraNet) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("format".to_string(), "pt".to_string());
    m.insert(native::CONFIG_KEY.to_string(), serde_json::to_string(&model.config()).expect("config is JSON"));
    m.insert("hydra.version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    m
}

/// Which file format an export path asks for.
pub fn export_format(path: &Path) -> Option<WeightFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Some(WeightFormat::Safetensors),
        Some(native::EXTENSION) => Some(WeightFormat::Native),
        _ => None,
    }
}

/// Write `model` to `path` (`.safetensors` or `.bpk`), atomically.
pub fn save(model: &HydraNet, path: &Path) -> Result<WeightFormat, WeightsError> {
    let format = export_format(path).ok_or_else(|| WeightsError::Config {
        path: path.into(),
        detail: format!("unknown export extension: use .safetensors or .{}", native::EXTENSION),
    })?;
    let state = model.state_dict();
    let meta = export_metadata(model);
    let bytes = match format {
        WeightFormat::Safetensors => safetensors::write(&state, &meta),
        _ => native::write(&state, &meta).map_err(|e| WeightsError::corrupt(path, WeightFormat::Native.short_name(), e))?,
    };
    write_atomic(path, &bytes).map_err(|(p, e)| WeightsError::io(p, e))?;
    Ok(format)
}
