//! The training configuration (TOML): schema, defaults, validation, overrides, and the
//! resolved form saved in each run folder.
//!
//! Every key is validated for type and range; unknown keys are errors that suggest the
//! closest valid key. See `configs/*.toml` and the README for documented examples.

use std::path::{Path, PathBuf};

use hydra_model::{HydraNetConfig, Task};
use serde::{Deserialize, Serialize};

use crate::config_reader::{apply_override, ConfigError, Section};
use crate::limits;

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
}

/// `[loss]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossSection {
    /// `l1` (masked L1) or `berhu`.
    pub depth: String,
    /// `fixed`, `uncertainty` (Kendall et al. 2018) or `dwa` (Liu et al. 2019).
    pub weighting: String,
    /// Fixed weights (also the initial weights of DWA's mean).
    pub segm_weight: f64,
    pub depth_weight: f64,
    pub normal_weight: f64,
    /// DWA temperature.
    pub dwa_temperature: f64,
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

const TASKS: [&str; 3] = ["segm", "depth", "normal"];
const BIG: usize = 1 << 30;

fn source(s: &Section<'_>, train: bool) -> Result<SourceSection, ConfigError> {
    let kind = s.choice("kind", "synthetic", &["nyud", "mtan", "synthetic"])?;
    let root = s.opt_string("root")?.map(PathBuf::from);
    let list = s.opt_string("list")?.map(PathBuf::from);
    if kind != "synthetic" && root.is_none() {
        return Err(ConfigError(format!("{}.root: missing (the dataset folder is required for kind = \"{kind}\")", s.path())));
    }
    if kind == "nyud" && list.is_none() {
        return Err(ConfigError(format!("{}.list: missing (the list file is required for kind = \"nyud\")", s.path())));
    }
    let size = s.usize_array("size", &[240, 320], 2, *limits::IMAGE_SIDE.start(), *limits::IMAGE_SIDE.end())?;
    let out = SourceSection {
        kind,
        root,
        list,
        depth_scale: s.f64("depth_scale", 5000.0, 1e-6, 1e9)?,
        label_palette: s.opt_string("label_palette")?,
        count: s.usize("count", if train { 200 } else { 40 }, *limits::SCENES.start(), *limits::SCENES.end())?,
        size,
        seed: s.u64("seed", if train { 1 } else { 2 })?,
        skip_bad: s.bool("skip_bad", false)?,
    };
    s.finish()?;
    Ok(out)
}

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

    /// `data.palette` is readable and names at least `model.num_classes` classes (checked when
    /// the file is loaded, not when the palette is first used).
    pub fn check_palette(&self) -> Result<(), ConfigError> {
        let p = crate::setup::palette_named(&self.data.palette).map_err(|e| ConfigError(format!("data.palette = \"{}\": {e}", self.data.palette)))?;
        let segm = self.tasks().contains(&Task::Segmentation);
        if segm && p.len() < self.model.num_classes {
            return Err(ConfigError(format!(
                "data.palette = \"{}\": {} classes, fewer than model.num_classes = {}; give a palette with a colour for every class",
                self.data.palette,
                p.len(),
                self.model.num_classes
            )));
        }
        for s in std::iter::once(&self.data.train).chain(self.data.val.as_ref()) {
            if let Some(lp) = &s.label_palette {
                crate::setup::palette_named(lp).map_err(|e| ConfigError(format!("label_palette = \"{lp}\": {e}")))?;
            }
        }
        for b in &self.eval.baselines {
            hydra_model::fsio::open_input(b, hydra_model::fsio::MAX_TEXT_BYTES).map_err(|e| ConfigError(format!("eval.baselines: {}: {e}", b.display())))?;
        }
        Ok(())
    }

    /// The weight files training starts from (`model.encoder_weights`, `model.init_weights`)
    /// are readable, checked before the datasets are validated and the run folder is made.
    pub fn check_training_files(&self) -> Result<(), ConfigError> {
        for (key, p) in [("model.encoder_weights", &self.model.encoder_weights), ("model.init_weights", &self.model.init_weights)] {
            if let Some(p) = p {
                hydra_model::fsio::open_input(p, hydra_model::weights::MAX_FILE_BYTES).map_err(|e| ConfigError(format!("{key} = \"{}\": {e}", p.display())))?;
            }
        }
        Ok(())
    }

    /// Files the configuration reads (list files, palettes, weights, baselines): no output of
    /// a command may replace one of them.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in std::iter::once(&self.data.train).chain(self.data.val.as_ref()) {
            if let (Some(root), Some(list)) = (&s.root, &s.list) {
                out.push(root.join(list));
            }
            out.extend(s.label_palette.iter().map(PathBuf::from));
        }
        out.push(PathBuf::from(&self.data.palette));
        out.extend(self.model.encoder_weights.iter().cloned());
        out.extend(self.model.init_weights.iter().cloned());
        out.extend(self.eval.baselines.iter().cloned());
        out
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.starts_with(".") && !p.exists() && base.join(&*p).exists() {
                *p = base.join(&*p);
            }
        };
        for s in std::iter::once(&mut self.data.train).chain(self.data.val.as_mut()) {
            if let Some(r) = s.root.as_mut() {
                fix(r);
            }
        }
        for p in [self.model.encoder_weights.as_mut(), self.model.init_weights.as_mut()].into_iter().flatten() {
            fix(p);
        }
        for p in self.eval.baselines.iter_mut() {
            fix(p);
        }
        // Palette files (not built-in names) are found beside the config as dataset roots are.
        let fix_str = |s: &mut String| {
            if crate::setup::is_builtin_palette(s) {
                return;
            }
            let mut p = PathBuf::from(&*s);
            fix(&mut p);
            *s = p.to_string_lossy().into_owned();
        };
        fix_str(&mut self.data.palette);
        for s in std::iter::once(&mut self.data.train).chain(self.data.val.as_mut()) {
            if let Some(lp) = s.label_palette.as_mut() {
                fix_str(lp);
            }
        }
    }

    /// Validate a parsed TOML table.
    pub fn from_table(table: &toml::Table) -> Result<Self, ConfigError> {
        let root = Section::root(table);

        let m = root.section("model")?;
        let tasks = m.string_array("tasks", &["segm", "depth"], &TASKS)?;
        let model = ModelSection {
            num_classes: m.usize("num_classes", 40, *limits::NUM_CLASSES.start(), *limits::NUM_CLASSES.end())?,
            tasks,
            crp_stages: m.usize("crp_stages", 4, 1, 16)?,
            decoder_width: m.usize("decoder_width", 256, 8, 4096)?,
            encoder_weights: m.opt_string("encoder_weights")?.map(PathBuf::from),
            init_weights: m.opt_string("init_weights")?.map(PathBuf::from),
            freeze_bn: m.bool("freeze_bn", false)?,
            init: m.choice("init", "reference", &["reference", "kaiming", "scratch"])?,
        };
        m.finish()?;

        let d = root.section("data")?;
        let train = source(&d.section("train")?, true)?;
        let val_section = d.section("val")?;
        let val = if val_section.present() { Some(source(&val_section, false)?) } else { None };
        let data = DataSection {
            train,
            val,
            ignore_index: d.usize("ignore_index", 255, 0, 255)?,
            workers: d.usize("workers", 2, *limits::WORKERS.start(), *limits::WORKERS.end())?,
            palette: d.string("palette", "nyud")?,
        };
        d.finish()?;

        let a = root.section("augment")?;
        let scale = a.f64_array("scale", &[0.5, 2.0], 2, 0.05, 20.0)?;
        if scale[0] > scale[1] {
            return Err(ConfigError(format!("augment.scale = {scale:?}: the minimum must not exceed the maximum")));
        }
        let augment = AugmentSection {
            scale,
            crop: a.usize_array("crop", &[0, 0], 2, 0, 8192)?,
            flip: a.bool("flip", true)?,
            jitter: a.f64("jitter", 0.0, 0.0, 1.0)?,
        };
        a.finish()?;

        let e = root.section("eval")?;
        let eval = EvalSection {
            pad_to: e.usize("pad_to", 32, 1, 256)?,
            max_depth: e.f64("max_depth", 0.0, 0.0, 1e6)?,
            eigen_crop: e.bool("eigen_crop", false)?,
            baselines: e.string_array("baselines", &[], &[])?.into_iter().map(PathBuf::from).collect(),
        };
        e.finish()?;

        let l = root.section("loss")?;
        let loss = LossSection {
            depth: l.choice("depth", "l1", &["l1", "berhu"])?,
            weighting: l.choice("weighting", "fixed", &["fixed", "uncertainty", "dwa"])?,
            segm_weight: l.f64("segm_weight", 0.5, 0.0, 1e6)?,
            depth_weight: l.f64("depth_weight", 0.5, 0.0, 1e6)?,
            normal_weight: l.f64("normal_weight", 0.5, 0.0, 1e6)?,
            dwa_temperature: l.f64("dwa_temperature", 2.0, 1e-3, 1e3)?,
        };
        l.finish()?;

        let o = root.section("optimizer")?;
        let kind = o.choice("kind", "sgd", &["sgd", "adam", "adamw"])?;
        let default_wd = if kind == "adamw" { 1e-2 } else { 1e-5 };
        let optimizer = OptimizerSection {
            encoder_lr: o.f64("encoder_lr", 1e-3, 0.0, 10.0)?,
            decoder_lr: o.f64("decoder_lr", 1e-2, 0.0, 10.0)?,
            encoder_weight_decay: o.f64("encoder_weight_decay", default_wd, 0.0, 1.0)?,
            decoder_weight_decay: o.f64("decoder_weight_decay", default_wd, 0.0, 1.0)?,
            momentum: o.f64("momentum", 0.9, 0.0, 0.999_999)?,
            nesterov: o.bool("nesterov", false)?,
            betas: o.f64_array("betas", &[0.9, 0.999], 2, 0.0, 0.999_999)?,
            eps: o.f64("eps", 1e-8, 1e-12, 1.0)?,
            grad_clip_norm: o.f64("grad_clip_norm", 0.0, 0.0, 1e9)?,
            kind,
        };
        if optimizer.nesterov && (optimizer.kind != "sgd" || optimizer.momentum == 0.0) {
            return Err(ConfigError("optimizer.nesterov = true: needs kind = \"sgd\" and momentum > 0".into()));
        }
        o.finish()?;

        let s = root.section("schedule")?;
        let schedule = ScheduleSection {
            kind: s.choice("kind", "constant", &["constant", "multistep", "cosine", "poly"])?,
            milestones: s.usize_array("milestones", &[], 0, 1, 1_000_000_000)?,
            gamma: s.f64("gamma", 0.1, 0.0, 1.0)?,
            power: s.f64("power", 0.9, 0.0, 10.0)?,
            min_lr_factor: s.f64("min_lr_factor", 0.0, 0.0, 1.0)?,
            warmup_iters: s.usize("warmup_iters", 0, 0, BIG)?,
            warmup_factor: s.f64("warmup_factor", 0.001, 0.0, 1.0)?,
        };
        if schedule.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError(format!("schedule.milestones = {:?}: must be strictly increasing", schedule.milestones)));
        }
        s.finish()?;

        let t = root.section("training")?;
        let training = TrainingSection {
            epochs: t.usize("epochs", 10, 1, BIG)?,
            batch_size: t.usize("batch_size", 4, *limits::BATCH.start(), *limits::BATCH.end())?,
            seed: t.u64("seed", 0)?,
            val_interval: t.usize("val_interval", 1, 0, BIG)?,
            log_interval: t.usize("log_interval", 10, 1, BIG)?,
            backend: t.choice("backend", "flex", &["flex", "wgpu", "cuda"])?,
            iters_per_epoch: t.usize("iters_per_epoch", 0, 0, BIG)?,
        };
        t.finish()?;

        let es = root.section("early_stopping")?;
        let early_stopping = EarlyStoppingSection {
            enabled: es.bool("enabled", false)?,
            monitor: es.choice("monitor", "combined", &["miou", "rmse", "loss", "combined"])?,
            patience: es.usize("patience", 10, 1, BIG)?,
            min_delta: es.f64("min_delta", 0.0, 0.0, 1e9)?,
        };
        es.finish()?;

        let c = root.section("checkpoint")?;
        let checkpoint = CheckpointSection { interval: c.usize("interval", 1, 1, BIG)?, keep_last: c.usize("keep_last", 2, 1, 1000)? };
        c.finish()?;

        let out = root.section("output")?;
        let output = OutputSection { dir: PathBuf::from(out.string("dir", "runs/hydra")?) };
        out.finish()?;

        root.finish()?;
        let config = Config { model, data, augment, eval, loss, optimizer, schedule, training, early_stopping, checkpoint, output };
        config.cross_check()?;
        Ok(config)
    }

    fn cross_check(&self) -> Result<(), ConfigError> {
        let tasks = self.tasks();
        if tasks.is_empty() {
            return Err(ConfigError("model.tasks: at least one task is needed (segm, depth, normal)".into()));
        }
        let mut sorted = self.model.tasks.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.model.tasks.len() {
            return Err(ConfigError(format!("model.tasks = {:?}: each task may appear once", self.model.tasks)));
        }
        if self.early_stopping.enabled && self.data.val.is_none() {
            return Err(ConfigError("early_stopping.enabled = true: needs a [data.val] source to monitor".into()));
        }
        let es = &self.early_stopping.monitor;
        if self.early_stopping.enabled && ((es == "miou" || es == "combined") && !tasks.contains(&Task::Segmentation)) {
            return Err(ConfigError(format!("early_stopping.monitor = \"{es}\": the model has no segmentation task")));
        }
        if self.early_stopping.enabled && ((es == "rmse" || es == "combined") && !tasks.contains(&Task::Depth)) {
            return Err(ConfigError(format!("early_stopping.monitor = \"{es}\": the model has no depth task")));
        }
        if self.data.ignore_index < self.model.num_classes && tasks.contains(&Task::Segmentation) {
            return Err(ConfigError(format!(
                "data.ignore_index = {}: must not be a class index (model.num_classes = {})",
                self.data.ignore_index, self.model.num_classes
            )));
        }
        Ok(())
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
