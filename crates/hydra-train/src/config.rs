//! The training configuration (TOML): schema, defaults, validation, overrides, and the
//! resolved form saved in each run folder.
//!
//! Every key is validated for type and range; unknown keys are errors that suggest the
//! closest valid key. See `configs/*.toml` and the README for documented examples.

use std::path::{Path, PathBuf};

use hydra_model::{HydraNetConfig, Task};
use serde::{Deserialize, Serialize};

use crate::config_reader::{apply_override, ConfigError};

/// `[model]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSection {
    pub num_classes: usize,
    pub tasks: Vec<String>,
    pub crp_stages: usize,
    pub decoder_width: usize,
    /// ImageNet MobileNetV2 weights (torchvision `.pth`) or any checkpoint, loaded into the encoder.
    pub encoder_weights: Option<PathBuf>,
    /// A full checkpoint (official or ours) to start from.
    pub init_weights: Option<PathBuf>,
    /// Keep BatchNorm statistics fixed (running statistics used in training too).
    pub freeze_bn: bool,
    /// Weight initialisation before any loaded weights: `reference` (N(0, 0.01²), the official
    /// code), `kaiming` (fan-out He normal everywhere) or `scratch` (for training without
    /// pretrained weights, see `InitScheme::Scratch`).
    pub init: String,
}

/// Where samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSection {
    /// `nyud` (list file: RGB, mask, depth), `mtan` (.npy folders), `synthetic`.
    pub kind: String,
    /// Dataset root (nyud, mtan).
    pub root: Option<PathBuf>,
    /// List file, relative to `root` unless absolute (nyud).
    pub list: Option<PathBuf>,
    /// Depth PNG value per metre (5000 NYUv2, 800 KITTI of the official release).
    pub depth_scale: f64,
    /// Colour-coded label PNGs: palette name or file mapping colours to classes.
    pub label_palette: Option<String>,
    /// Synthetic: number of scenes.
    pub count: usize,
    /// Synthetic: image size [height, width].
    pub size: Vec<usize>,
    /// Synthetic: seed of the scenes.
    pub seed: u64,
    /// Skip samples that fail validation (reported) instead of refusing the dataset.
    pub skip_bad: bool,
}

/// `[data]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSection {
    pub train: SourceSection,
    pub val: Option<SourceSection>,
    /// Label value excluded from segmentation loss and metrics.
    pub ignore_index: usize,
    /// Worker threads loading samples.
    pub workers: usize,
    /// Class names and colours for reports and predictions (`nyud`, `nyud13`, `kitti`, a file,
    /// or `synthetic`).
    pub palette: String,
}

/// `[augment]` (training samples only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentSection {
    /// Random scale range [min, max]; [1, 1] disables.
    pub scale: Vec<f64>,
    /// Random crop [height, width] with padding; [0, 0] disables.
    pub crop: Vec<usize>,
    /// Random horizontal flip.
    pub flip: bool,
    /// Photometric jitter strength (brightness, contrast, saturation); 0 disables.
    pub jitter: f64,
}

/// `[eval]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSection {
    /// Pad evaluation images to a multiple of this (padding excluded from metrics); 1 = none.
    pub pad_to: usize,
    /// Largest ground-truth depth counted, metres (0 = no limit).
    pub max_depth: f64,
    /// Evaluate depth inside the Eigen crop (480×640 frames).
    pub eigen_crop: bool,
    /// Metrics JSON files of single-task runs, for the multi-task gain Δm.
    pub baselines: Vec<PathBuf>,
    /// Arithmetic of the 1×1 convolutions in `hydra eval` and in training's validation:
    /// `f32`, or `bf16` (CPU backend, AMX-BF16 or AVX512-BF16).
    #[serde(default = "f32_precision")]
    pub precision: String,
}

fn f32_precision() -> String {
    "f32".into()
}

/// `[loss]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossSection {
    /// `l1` (masked L1) or `berhu`.
    pub depth: String,
    /// A loss weighting (`fixed`, `uncertainty`, `dwa`, `rlw`, `gls`) or a gradient method
    /// (`ew`, `mgda`, `pcgrad`, `imtl`, `aligned_mtl`, `cagrad`, `gradvac`, `nash_mtl`,
    /// `db_mtl`, `gradnorm`, `graddrop`): see `components::objective`.
    pub weighting: String,
    /// Fixed weights (also the initial weights of DWA's mean).
    pub segm_weight: f64,
    pub depth_weight: f64,
    pub normal_weight: f64,
    /// DWA temperature.
    pub dwa_temperature: f64,
    /// Gradient methods: combine the gradients of the shared representation (the decoder's
    /// output) instead of the shared parameters' (LibMTL's `rep_grad`; MGDA-UB for `mgda`).
    #[serde(default)]
    pub rep_grad: bool,
    /// MGDA's gradient normalisation: `none`, `l2`, `loss` or `loss+` (LibMTL's `mgda_gn`).
    #[serde(default = "default_mgda_normalisation")]
    pub mgda_normalisation: String,
    /// CAGrad's radius `c` (LibMTL's `calpha`).
    #[serde(default = "default_cagrad_c")]
    pub cagrad_c: f64,
    /// CAGrad's rescaling: 0 none, 1 by `1 / (1 + c²)`, 2 by `1 / (1 + c)` (LibMTL's `rescale`).
    #[serde(default = "default_cagrad_rescale")]
    pub cagrad_rescale: usize,
    /// GradNorm's restoring force α (LibMTL's `alpha`).
    #[serde(default = "default_gradnorm_alpha")]
    pub gradnorm_alpha: f64,
    /// GradVac's EMA rate β of the target similarities (LibMTL's `GradVac_beta`).
    #[serde(default = "default_gradvac_beta")]
    pub gradvac_beta: f64,
    /// GradVac's parameter groups: `whole_model`, `all_layer` or `all_matrix` (LibMTL's
    /// `GradVac_group_type` 0, 1, 2).
    #[serde(default = "default_gradvac_groups")]
    pub gradvac_groups: String,
    /// Nash-MTL: update the weights every this many steps (LibMTL's `update_weights_every`).
    #[serde(default = "one")]
    pub nash_update_every: usize,
    /// Nash-MTL: at most this many convex problems per update (LibMTL's `optim_niter`).
    #[serde(default = "default_nash_iterations")]
    pub nash_iterations: usize,
    /// Nash-MTL: the shared gradient's norm is clipped to this (0: off; LibMTL's `max_norm`).
    #[serde(default = "one_f64")]
    pub nash_max_norm: f64,
    /// DB-MTL's EMA rate β and its decay exponent β_σ (LibMTL's `DB_beta`, `DB_beta_sigma`).
    #[serde(default = "default_db_beta")]
    pub db_beta: f64,
    #[serde(default)]
    pub db_beta_sigma: f64,
    /// GradDrop's leak (LibMTL's `leak`).
    #[serde(default)]
    pub graddrop_leak: f64,
}

fn default_gradnorm_alpha() -> f64 {
    1.5
}

fn default_gradvac_beta() -> f64 {
    0.5
}

fn default_gradvac_groups() -> String {
    "whole_model".into()
}

fn one() -> usize {
    1
}

fn one_f64() -> f64 {
    1.0
}

fn default_nash_iterations() -> usize {
    20
}

fn default_db_beta() -> f64 {
    0.9
}

fn default_mgda_normalisation() -> String {
    "none".into()
}

fn default_cagrad_c() -> f64 {
    0.5
}

fn default_cagrad_rescale() -> usize {
    1
}

/// `[optimizer]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSection {
    /// `sgd`, `adam`, `adamw`.
    pub kind: String,
    pub encoder_lr: f64,
    pub decoder_lr: f64,
    pub encoder_weight_decay: f64,
    pub decoder_weight_decay: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub betas: Vec<f64>,
    pub eps: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub grad_clip_norm: f64,
}

/// `[schedule]` (stepped every iteration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSection {
    /// `constant`, `multistep`, `cosine`, `poly`.
    pub kind: String,
    /// multistep: epochs at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// poly: exponent.
    pub power: f64,
    /// cosine / poly: final rate as a fraction of the initial one.
    pub min_lr_factor: f64,
    /// Linear warm-up length in iterations (0 = none), starting at `warmup_factor` × rate.
    pub warmup_iters: usize,
    pub warmup_factor: f64,
}

/// `[training]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Validate every N epochs (0 = never).
    pub val_interval: usize,
    /// Log every N iterations.
    pub log_interval: usize,
    /// Backend: `flex`, `wgpu`, `cuda`.
    pub backend: String,
    /// Cap on iterations per epoch (0 = the whole training set).
    pub iters_per_epoch: usize,
    /// At logged iterations, measure the tasks' gradient norms and cosines on the shared
    /// parameters: `auto` where it costs nothing (gradient methods on parameter gradients),
    /// `always` (one backward pass per task more for the others), `never`.
    #[serde(default = "default_log_conflict")]
    pub log_conflict: String,
    /// With several ranks (`mpirun -n N`): BatchNorm's batch statistics over the whole
    /// batch (SyncBatchNorm), or each rank's own (`false`, PyTorch DDP's default; the running
    /// statistics are then averaged across ranks at the end of every epoch). No effect in one
    /// process.
    #[serde(default = "default_sync_bn")]
    pub sync_bn: bool,
    /// Several devices of one machine, one replica each (`["wgpu:0", "wgpu:1"]`,
    /// `["cuda:0", "cuda:1"]`; `["cpu", "cpu"]` for replicas on the CPU): data parallelism in
    /// one process. Empty: the backend's one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

fn default_sync_bn() -> bool {
    true
}

fn default_log_conflict() -> String {
    "auto".into()
}

/// `[early_stopping]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingSection {
    pub enabled: bool,
    /// `miou`, `rmse`, `loss`, `combined` (mIoU − RMSE / max depth), evaluated on val.
    pub monitor: String,
    /// Validations without improvement before stopping.
    pub patience: usize,
    pub min_delta: f64,
}

/// `[checkpoint]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSection {
    /// Write a checkpoint every N epochs.
    pub interval: usize,
    /// Keep the newest K (the best is kept besides).
    pub keep_last: usize,
}

/// `[output]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSection {
    /// The run folder.
    pub dir: PathBuf,
    /// Validation images shown in each prediction panel (`RUN/panels/`); 0 = no panels.
    #[serde(default = "default_samples")]
    pub samples: usize,
}

fn default_samples() -> usize {
    4
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub model: ModelSection,
    pub data: DataSection,
    pub augment: AugmentSection,
    pub eval: EvalSection,
    pub loss: LossSection,
    pub optimizer: OptimizerSection,
    pub schedule: ScheduleSection,
    pub training: TrainingSection,
    pub early_stopping: EarlyStoppingSection,
    pub checkpoint: CheckpointSection,
    pub output: OutputSection,
}

mod files;
mod schema;

impl Config {
    /// Parse and validate TOML text with `--set` overrides applied.
    pub fn from_toml(text: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().trim().replace('\n', "; ");
            ConfigError(match line {
                Some(l) => format!("invalid TOML at line {l}: {msg}"),
                None => format!("invalid TOML: {msg}"),
            })
        })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Self::from_table(&table)
    }

    /// Read a config file (relative paths inside are resolved against its folder).
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = hydra_model::fsio::read_text(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let mut c = Self::from_toml(&text, overrides).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.resolve_paths(base);
        c.check_palette().map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        Ok(c)
    }

    /// The tasks as enum values.
    pub fn tasks(&self) -> Vec<Task> {
        self.model.tasks.iter().filter_map(|t| Task::parse(t)).collect()
    }

    /// The network configuration.
    pub fn network(&self) -> HydraNetConfig {
        HydraNetConfig::new(self.model.num_classes)
            .with_tasks(self.tasks())
            .with_crp_stages(self.model.crp_stages)
            .with_decoder_width(self.model.decoder_width)
            .with_seed(self.training.seed)
            .with_init(match self.model.init.as_str() {
                "kaiming" => hydra_model::InitScheme::Kaiming,
                "scratch" => hydra_model::InitScheme::Scratch,
                _ => hydra_model::InitScheme::Reference,
            })
    }

    /// The resolved configuration as TOML (saved in the run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_checks_refuse_exactly_the_contradictions() {
        let val = "[data.val]\nkind = \"synthetic\"\n";
        let ok = |t: &str| Config::from_toml(t, &[]).map(|_| ()).map_err(|e| e.0);
        // Nesterov needs SGD with momentum.
        assert!(ok("[optimizer]\nnesterov = true\nmomentum = 0.9\n").is_ok());
        assert!(ok("[optimizer]\nnesterov = true\nmomentum = 0.0\n").unwrap_err().contains("needs kind = \"sgd\" and momentum > 0"));
        assert!(ok("[optimizer]\nkind = \"adamw\"\nnesterov = true\nmomentum = 0.9\n").is_err());
        // The ignore value must not be a class index: C itself is not one.
        assert!(ok("[model]\nnum_classes = 6\n[data]\nignore_index = 6\n").is_ok());
        assert!(ok("[model]\nnum_classes = 6\n[data]\nignore_index = 5\n").unwrap_err().contains("must not be a class index"));
        // A monitor needs the task it reads, only when early stopping is on.
        let es = |monitor: &str, tasks: &str, enabled: bool| {
            ok(&format!("[model]\ntasks = {tasks}\n{val}[early_stopping]\nenabled = {enabled}\nmonitor = \"{monitor}\"\n"))
        };
        for (monitor, tasks, refused) in [
            ("miou", "[\"depth\"]", Some("no segmentation task")),
            ("combined", "[\"depth\"]", Some("no segmentation task")),
            ("rmse", "[\"segm\"]", Some("no depth task")),
            ("combined", "[\"segm\"]", Some("no depth task")),
            ("miou", "[\"segm\"]", None),
            ("rmse", "[\"depth\"]", None),
            ("loss", "[\"depth\"]", None),
            ("combined", "[\"segm\", \"depth\"]", None),
        ] {
            match (es(monitor, tasks, true), refused) {
                (Err(e), Some(needle)) => assert!(e.contains(needle), "{monitor} {tasks}: {e}"),
                (Ok(()), None) => {}
                (got, want) => panic!("{monitor} with tasks {tasks}: got {got:?}, want refusal {want:?}"),
            }
            assert!(es(monitor, tasks, false).is_ok(), "{monitor} {tasks}: off, nothing to check");
        }
    }

    #[test]
    fn model_settings_reach_the_network() {
        let c = Config::from_toml("[model]\nnum_classes = 13\ntasks = [\"depth\", \"segm\"]\ncrp_stages = 2\ndecoder_width = 64\ninit = \"kaiming\"\n[training]\nseed = 9\n", &[]).unwrap();
        let n = c.network();
        assert_eq!((n.num_classes, n.crp_stages, n.decoder_width, n.seed, n.init), (13, 2, 64, 9, hydra_model::InitScheme::Kaiming));
        assert_eq!(n.tasks, vec![Task::Depth, Task::Segmentation]);
        for (name, scheme) in [("scratch", hydra_model::InitScheme::Scratch), ("reference", hydra_model::InitScheme::Reference)] {
            let c = Config::from_toml(&format!("[model]\ninit = \"{name}\"\n"), &[]).unwrap();
            assert_eq!(c.network().init, scheme, "{name}");
        }
    }

    #[test]
    fn a_toml_error_names_its_line() {
        let e = Config::from_toml("[training]\nepochs = 3\n[data\n", &[]).unwrap_err();
        assert!(e.0.starts_with("invalid TOML at line 3:"), "{}", e.0);
    }

    #[test]
    fn a_resolved_config_written_before_output_samples_existed_reads_with_four() {
        // Checkpoints and run folders hold the resolved config as JSON; older ones lack the key.
        let mut v = serde_json::to_value(Config::from_toml("", &[]).unwrap()).unwrap();
        v["output"].as_object_mut().unwrap().remove("samples");
        let c: Config = serde_json::from_value(v).unwrap();
        assert_eq!(c.output.samples, 4);
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("", &[]).unwrap();
        assert_eq!(c.model.num_classes, 40);
        assert_eq!(c.optimizer.kind, "sgd");
        assert_eq!(c.data.train.kind, "synthetic");
    }

    #[test]
    fn resolved_config_roundtrips() {
        let c = Config::from_toml("[training]\nepochs = 3\n[data.val]\nkind = \"synthetic\"\n", &[]).unwrap();
        let again = Config::from_toml(&c.to_toml(), &[]).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn errors_name_key_value_and_allowed() {
        let e = Config::from_toml("[optimizer]\nmomentum = 1.5\n", &[]).unwrap_err().0;
        assert_eq!(e, "optimizer.momentum = 1.5: must be in [0, 0.999999]");
        let e = Config::from_toml("[training]\nbatch_size = \"four\"\n", &[]).unwrap_err().0;
        assert!(e.starts_with("training.batch_size = \"four\": expected an integer"), "{e}");
        let e = Config::from_toml("[trainig]\nepochs = 1\n", &[]).unwrap_err().0;
        assert!(e.contains("trainig: unknown key (did you mean `training`?)"), "{e}");
        let e = Config::from_toml("[model]\ntasks = [\"segm\", \"dept\"]\n", &[]).unwrap_err().0;
        assert!(e.contains("\"dept\" must be one of segm, depth, normal"), "{e}");
    }

    #[test]
    fn overrides_apply_before_validation() {
        let c = Config::from_toml("[training]\nepochs = 3\n", &["training.epochs=5".into(), "optimizer.kind=adamw".into()]).unwrap();
        assert_eq!(c.training.epochs, 5);
        assert_eq!(c.optimizer.kind, "adamw");
        assert_eq!(c.optimizer.encoder_weight_decay, 1e-2);
        let e = Config::from_toml("", &["training.epochs=0".into()]).unwrap_err().0;
        assert!(e.contains("training.epochs = 0"), "{e}");
    }

    #[test]
    fn cross_checks() {
        let e = Config::from_toml("[early_stopping]\nenabled = true\n", &[]).unwrap_err().0;
        assert!(e.contains("needs a [data.val]"), "{e}");
        let e = Config::from_toml("[data]\nignore_index = 3\n", &[]).unwrap_err().0;
        assert!(e.contains("must not be a class index"), "{e}");
        let e = Config::from_toml("[data.train]\nkind = \"nyud\"\nroot = \"x\"\n", &[]).unwrap_err().0;
        assert!(e.contains("data.train.list: missing"), "{e}");
    }
}
