//! The schema of the configuration: each section's keys, defaults and limits, read from a
//! TOML table, and the checks across sections.

use std::path::PathBuf;

use hydra_model::Task;

use super::*;
use crate::config_reader::{ConfigError, Section};
use crate::limits;

const TASKS: [&str; 3] = ["segm", "depth", "normal"];
const BIG: usize = 1 << 30;
/// `loss.weighting`: the loss weightings, then the gradient methods.
const WEIGHTINGS: &[&str] = &[
    "fixed", "uncertainty", "dwa", "rlw", "gls", "ew", "mgda", "pcgrad", "imtl", "aligned_mtl", "cagrad", "gradvac", "nash_mtl", "db_mtl", "gradnorm", "graddrop",
];
/// The gradient methods LibMTL runs on representation gradients too (`loss.rep_grad`).
const REP_GRAD_METHODS: &[&str] = &["ew", "mgda", "imtl", "aligned_mtl", "gradnorm", "graddrop"];

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
            precision: e.choice("precision", "f32", &["f32", "bf16"])?,
        };
        e.finish()?;

        let l = root.section("loss")?;
        let loss = LossSection {
            depth: l.choice("depth", "l1", &["l1", "berhu"])?,
            weighting: l.choice("weighting", "fixed", WEIGHTINGS)?,
            segm_weight: l.f64("segm_weight", 0.5, 0.0, 1e6)?,
            depth_weight: l.f64("depth_weight", 0.5, 0.0, 1e6)?,
            normal_weight: l.f64("normal_weight", 0.5, 0.0, 1e6)?,
            dwa_temperature: l.f64("dwa_temperature", 2.0, 1e-3, 1e3)?,
            rep_grad: l.bool("rep_grad", false)?,
            mgda_normalisation: l.choice("mgda_normalisation", "none", &["none", "l2", "loss", "loss+"])?,
            cagrad_c: l.f64("cagrad_c", 0.5, 0.0, 1e3)?,
            cagrad_rescale: l.usize("cagrad_rescale", 1, 0, 2)?,
            gradnorm_alpha: l.f64("gradnorm_alpha", 1.5, 0.0, 100.0)?,
            gradvac_beta: l.f64("gradvac_beta", 0.5, 0.0, 1.0)?,
            gradvac_groups: l.choice("gradvac_groups", "whole_model", &["whole_model", "all_layer", "all_matrix"])?,
            nash_update_every: l.usize("nash_update_every", 1, 1, BIG)?,
            nash_iterations: l.usize("nash_iterations", 20, 1, 1000)?,
            nash_max_norm: l.f64("nash_max_norm", 1.0, 0.0, 1e9)?,
            db_beta: l.f64("db_beta", 0.9, 0.0, 1.0)?,
            db_beta_sigma: l.f64("db_beta_sigma", 0.0, 0.0, 10.0)?,
            graddrop_leak: l.f64("graddrop_leak", 0.0, 0.0, 1.0)?,
        };
        if loss.weighting == "graddrop" && !loss.rep_grad {
            return Err(ConfigError("loss.weighting = \"graddrop\": works on representation gradients only; set loss.rep_grad = true (as LibMTL requires)".into()));
        }
        if loss.rep_grad && !REP_GRAD_METHODS.contains(&loss.weighting.as_str()) {
            return Err(ConfigError(format!(
                "loss.rep_grad = true: needs a gradient method that combines representation gradients ({}), not loss.weighting = \"{}\"",
                REP_GRAD_METHODS.join(", "),
                loss.weighting
            )));
        }
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
            log_conflict: t.choice("log_conflict", "auto", &["auto", "always", "never"])?,
            sync_bn: t.bool("sync_bn", true)?,
            devices: t.string_array("devices", &[], &[])?,
        };
        for d in &training.devices {
            crate::backend::Backend::parse_device(d).map_err(|e| ConfigError(format!("training.devices: {e}")))?;
        }
        if training.devices.len() == 1 {
            return Err(ConfigError("training.devices: one device is the default; list two or more for data parallelism in one process (or leave it out)".into()));
        }
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
        let output = OutputSection { dir: PathBuf::from(out.string("dir", "runs/hydra")?), samples: out.usize("samples", 4, 0, 64)? };
        out.finish()?;

        root.finish()?;
        let config = Config { model, data, augment, eval, loss, optimizer, schedule, training, early_stopping, checkpoint, output };
        config.cross_check()?;
        Ok(config)
    }

    pub(super) fn cross_check(&self) -> Result<(), ConfigError> {
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
}
