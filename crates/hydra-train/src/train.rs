//! The training loop: epochs of augmented batches, multi-task loss and weighting, optimiser
//! and schedule, validation, early stopping, best weights, checkpoints and exact resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use hydra_data::loader::Loader;
use hydra_data::DataError;
use hydra_model::state::{RawTensor, StateLoader};
use hydra_model::weights;
use hydra_model::{HydraNet, Task, WeightsError};
use serde_json::json;

use crate::checkpoint::{self, Checkpoint, CheckpointError, CheckpointMeta, EarlyStopState};
use crate::components::{depth_kind, eval_spec, initial_network, monitor_value, optimizer_kind, schedule, weighting};
use crate::config::Config;
use crate::eval::EvalState;
use crate::loss::task_losses;
use crate::reduction_check::{InexactReduction, ReductionCheck};
use crate::run_folder::{self, Contents, RunLock};
use crate::metrics::EvalMetrics;
use crate::optim::{Hyper, Optimizer};
use crate::runlog::{epoch_record, RunLog};
use crate::setup;
use crate::weighting::{LossHistory, UncertaintyWeights, Weighting};

/// Where to resume from.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Start a new run (the run folder must not hold one).
    No,
    /// The newest complete checkpoint of the run folder.
    Latest,
    /// A given checkpoint file.
    From(PathBuf),
}

/// What `train` is asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: Config,
    pub resume: Resume,
    /// Stop (after writing a checkpoint) once this invocation has run this many epochs.
    pub stop_after_epochs: Option<usize>,
    /// Resume even when the configuration differs from the run's in ways that break exact
    /// continuation (the differences are listed either way).
    pub allow_config_change: bool,
}

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Reductions(#[from] InexactReduction),
    #[error("{dir}: the run folder already holds a run (checkpoints or logs); continue it with --resume, or choose another output.dir")]
    RunExists { dir: PathBuf },
    #[error("{dir}: no complete checkpoint to resume from")]
    NoCheckpoint { dir: PathBuf },
    #[error("output.dir = \"{}\": {reason}; a run needs a folder of its own, e.g. runs/NAME", dir.display())]
    BadRunFolder { dir: PathBuf, reason: String },
    #[error("{}: output.dir holds files that are not a hydra run ({}); refusing to train into it: choose a new or empty folder", dir.display(), entry.display())]
    ForeignRunFolder { dir: PathBuf, entry: PathBuf },
    #[error(transparent)]
    Locked(#[from] crate::run_folder::LockError),
    #[error("{checkpoint}: the configuration differs from the run's in ways that break exact continuation: {list}; resume with the run's configuration ({saved}), or pass --allow-config-change to continue with the new one")]
    ConfigChanged { checkpoint: PathBuf, saved: PathBuf, list: String },
    #[error("non-finite {what} at epoch {epoch}, iteration {iteration}; training stopped, nothing was saved after the last good checkpoint{}", last.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    NonFinite { what: String, epoch: usize, iteration: u64, last: Option<PathBuf> },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.into(), source: e }
}

/// Progress events, for bars or plain logs.
pub trait Reporter {
    /// A line of information.
    fn info(&mut self, line: &str);
    /// An epoch starts with `batches` iterations.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// An iteration finished.
    fn iteration(&mut self, _done: usize, _losses: &[(Task, f64)], _total: f64, _images_per_s: f64) {}
    /// The epoch ended; `summary` is a one-line table row.
    fn epoch_end(&mut self, summary: &str) {
        self.info(summary);
    }
}

/// A reporter that prints nothing.
pub struct Silent;

impl Reporter for Silent {
    fn info(&mut self, _: &str) {}
}

/// The network and the learned task weights, optimised together.
#[derive(Module, Debug)]
pub struct TrainModule {
    pub net: HydraNet,
    pub task_weights: Option<UncertaintyWeights>,
}

/// How a finished run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub epochs_done: usize,
    pub iterations: u64,
    pub stopped_early: bool,
    pub last_metrics: Option<EvalMetrics>,
    pub best: Option<(usize, f64)>,
    /// Final network tensors (reference keys), for comparisons.
    pub final_state: hydra_model::StateDict,
}

fn all_finite(sd: &hydra_model::StateDict) -> bool {
    sd.iter().all(|(_, t)| t.to_f32().iter().all(|v| v.is_finite()))
}

/// Check `run_dir` (not empty, not somebody else's files), create and lock it, and decide
/// where the run starts: a checkpoint to resume from, or `None` for the beginning. A folder
/// whose run stopped before its first checkpoint holds nothing to continue: the run starts
/// over (the same seed gives the same run), whether or not `--resume` was given.
fn open_run_folder(run_dir: &Path, resume: &Resume, report: &mut dyn Reporter) -> Result<(RunLock, Option<PathBuf>), TrainError> {
    if run_dir.as_os_str().is_empty() {
        return Err(TrainError::BadRunFolder { dir: run_dir.into(), reason: "empty (the run would be written into the working directory)".into() });
    }
    let state = run_folder::contents(run_dir).map_err(io(run_dir))?;
    match &state {
        Contents::Foreign { entry } if entry == run_dir => {
            return Err(TrainError::BadRunFolder { dir: run_dir.into(), reason: "exists and is not a folder".into() });
        }
        Contents::Foreign { entry } => return Err(TrainError::ForeignRunFolder { dir: run_dir.into(), entry: entry.clone() }),
        Contents::Absent if *resume == Resume::Latest => return Err(TrainError::NoCheckpoint { dir: run_dir.into() }),
        _ => {}
    }
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    let lock = RunLock::acquire(run_dir)?;
    // Under the lock: what the folder holds now (another run may have ended meanwhile).
    let state = run_folder::contents(run_dir).map_err(io(run_dir))?;
    if state == Contents::Empty && *resume == Resume::Latest {
        return Err(TrainError::NoCheckpoint { dir: run_dir.into() });
    }
    let ckpt_dir = run_dir.join("checkpoints");
    let complete = checkpoint::complete_checkpoints(&ckpt_dir);
    let from = match resume {
        Resume::From(p) => Some(p.clone()),
        Resume::No if !complete.is_empty() => return Err(TrainError::RunExists { dir: run_dir.into() }),
        Resume::Latest if !complete.is_empty() => Some(checkpoint::newest_valid(&ckpt_dir).ok_or_else(|| TrainError::NoCheckpoint { dir: run_dir.into() })?.1),
        _ => {
            if state == Contents::Run {
                report.info(&format!("{}: its run stopped before its first checkpoint; starting the run over from the beginning", run_dir.display()));
            }
            None
        }
    };
    Ok((lock, from))
}

/// Compare the configuration a run is resumed with to the checkpoint's: changes that keep
/// exact continuation are listed; others stop the run unless `allow` (then the previous
/// configuration is kept beside the new one as `config-before-epoch-N.toml`).
fn check_config_change(ck: &Checkpoint, config: &Config, from: &Path, run_dir: &Path, allow: bool, report: &mut dyn Reporter) -> Result<(), TrainError> {
    let saved = &ck.meta.config;
    let changes = run_folder::changes(saved, &config.to_toml()).map_err(|e| TrainError::Checkpoint(CheckpointError::Invalid { path: from.into(), detail: e }))?;
    if changes.is_empty() {
        return Ok(());
    }
    let (harmless, breaking): (Vec<&run_folder::Change>, Vec<&run_folder::Change>) = changes.iter().partition(|c| c.keeps_exactness);
    if !breaking.is_empty() && !allow {
        return Err(TrainError::ConfigChanged { checkpoint: from.into(), saved: run_dir.join("config.toml"), list: run_folder::list(&breaking) });
    }
    if !harmless.is_empty() {
        report.info(&format!("note: configuration changed since the checkpoint, exact continuation kept: {}", run_folder::list(&harmless)));
    }
    if !breaking.is_empty() {
        report.info(&format!("warning: continuing with a changed configuration (--allow-config-change); the run no longer continues exactly: {}", run_folder::list(&breaking)));
        let keep = run_dir.join(format!("config-before-epoch-{:05}.toml", ck.meta.epochs_done));
        hydra_model::fsio::write_atomic(&keep, saved.as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
    }
    Ok(())
}

/// Estimate the memory of a training step on the CPU (the first training image, scaled up to
/// `augment.scale`'s maximum, cropped) and refuse a configuration this machine cannot hold
/// before it is run out of memory; warn above half of what is available.
fn check_training_memory(config: &Config, ds: &dyn hydra_data::dataset::Dataset, backend: crate::backend::Backend, report: &mut dyn Reporter) -> Result<(), TrainError> {
    if backend != crate::backend::Backend::Flex {
        return Ok(());
    }
    let first = ds.get(0)?;
    let (h, w) = (first.rgb.height as f64, first.rgb.width as f64);
    let a = &config.augment;
    let s = a.scale[1];
    let scaled = ((h * s).ceil() * (w * s).ceil()) as u64;
    let crop = a.crop[0] > 0 && a.crop[1] > 0;
    let pixels = if crop { (a.crop[0] * a.crop[1]) as u64 } else { scaled };
    let need = crate::limits::training_bytes(config.training.batch_size, pixels, scaled, config.data.workers);
    let what = format!(
        "training.batch_size = {} of {}×{} images{} (augment.scale up to {s})",
        config.training.batch_size,
        (h * s).ceil(),
        (w * s).ceil(),
        if crop { format!(" cropped to {}×{}", a.crop[0], a.crop[1]) } else { String::new() }
    );
    let lower = "lower training.batch_size or augment.scale, or set augment.crop";
    crate::limits::check_memory(need, &what, lower).map_err(TrainError::Config)?;
    if let Some(avail) = crate::limits::available_bytes().filter(|&a| need > a / 2) {
        report.info(&format!("warning: {what} needs about {} of the {} of memory available", crate::limits::gb(need), crate::limits::gb(avail)));
    }
    Ok(())
}

/// Train as configured. Writes the run folder; returns how the run ended.
pub fn train(opts: TrainOptions, report: &mut dyn Reporter) -> Result<TrainSummary, TrainError> {
    let config = opts.config;
    let tasks = config.tasks();
    let backend = crate::backend::Backend::parse(&config.training.backend).map_err(TrainError::Config)?;
    let device = backend.training_device().map_err(TrainError::Config)?;
    // Training's long sums (BatchNorm statistics, weight gradients) run through hydra's own
    // kernels on burn-flex; on other backends the driver's are checked at each new batch shape
    // before it is trained on (`reduction_check`).
    let mut reduction_check = (backend != crate::backend::Backend::Flex).then(ReductionCheck::default);
    let run_dir = config.output.dir.clone();
    let ckpt_dir = run_dir.join("checkpoints");

    // The run folder, locked for the life of the run; the resume point, decided under the lock.
    let (_lock, resume_from) = open_run_folder(&run_dir, &opts.resume, report)?;
    let resumed = resume_from.as_deref().map(Checkpoint::load).transpose()?;
    if let (Some(ck), Some(from)) = (&resumed, &resume_from) {
        check_config_change(ck, &config, from, &run_dir, opts.allow_config_change, report)?;
    }

    // Data.
    let (train_ds, train_report) = setup::open_source(&config.data.train, &config)?;
    report.info(&format!("train: {}", train_ds.describe()));
    for s in &train_report.skipped {
        report.info(&format!("skipped {}: {}", s.what, s.reason));
    }
    let val = match &config.data.val {
        Some(v) => {
            let (ds, r) = setup::open_source(v, &config)?;
            report.info(&format!("val: {}", ds.describe()));
            for s in &r.skipped {
                report.info(&format!("skipped {}: {}", s.what, s.reason));
            }
            Some(setup::eval_loader(ds, &config, 1))
        }
        None => None,
    };
    let loader: Loader = setup::train_loader(train_ds, &config);
    let batches = loader.batches_per_epoch();
    if batches == 0 {
        return Err(TrainError::Config(format!(
            "training.batch_size = {}: larger than the training set ({} samples)",
            config.training.batch_size,
            loader.dataset().len()
        )));
    }

    check_training_memory(&config, loader.dataset().as_ref(), backend, report)?;

    // Model, weighting, optimiser.
    let mut net = initial_network(&config, &device)?;
    let weighting = weighting(&config, &tasks);
    let mut task_weights = matches!(weighting, Weighting::Uncertainty).then(|| UncertaintyWeights::new(tasks.len(), &device));
    let mut optim = Optimizer::new(optimizer_kind(&config));
    let sched = schedule(&config, batches as u64);
    let mut epochs_done = 0usize;
    let mut iteration = 0u64;
    let mut es = EarlyStopState::default();
    let mut history = LossHistory::default();
    if let Some(ck) = &resumed {
        let mut loader_state = StateLoader::new(&ck.model);
        net = hydra_model::state::ReferenceKeys::import_state(net, "", &mut loader_state);
        let rep = loader_state.finish();
        if !rep.issues.is_empty() {
            return Err(TrainError::Checkpoint(CheckpointError::Invalid {
                path: resume_from.clone().unwrap(),
                detail: format!("does not fit the configured network: {}", rep.issues[0]),
            }));
        }
        if let (Some(tw), Some(lv)) = (task_weights.as_mut(), &ck.log_vars) {
            tw.log_vars = Param::from_tensor(lv.to_tensor::<1>(&device)).set_require_grad(true);
        }
        let inner = device.clone().inner();
        for ((path, slot), t) in &ck.optimizer {
            let st = optim.state.entry(path.clone()).or_insert(crate::optim::ParamState { step: 0, slots: Vec::new() });
            if st.slots.len() != *slot {
                return Err(TrainError::Checkpoint(CheckpointError::Invalid { path: resume_from.clone().unwrap(), detail: format!("optimiser slots of `{path}` out of order") }));
            }
            st.slots.push(t.to_tensor::<1>(&inner));
        }
        for (path, &steps) in &ck.meta.optimizer_steps {
            optim.state.entry(path.clone()).or_insert(crate::optim::ParamState { step: 0, slots: Vec::new() }).step = steps;
        }
        epochs_done = ck.meta.epochs_done;
        iteration = ck.meta.iteration;
        es = ck.meta.early_stopping.clone();
        history = ck.meta.loss_history.clone();
        report.info(&format!("resumed from {} (epoch {epochs_done}, iteration {iteration})", resume_from.as_ref().unwrap().display()));
    }
    let mut module = TrainModule { net, task_weights: task_weights.take() };

    hydra_model::fsio::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
    let mut log = RunLog::open(&run_dir, resumed.as_ref().map(|c| c.meta.iteration)).map_err(io(&run_dir))?;

    let spec = eval_spec(&config);
    let ignore = config.data.ignore_index as i64;
    let depth = depth_kind(&config);
    let o = config.optimizer.clone();
    let mut last_ckpt: Option<PathBuf> = resume_from.clone();
    let mut last_metrics = None;
    let mut stopped_early = false;
    let mut epochs_this_run = 0usize;

    report.info(&format!(
        "training {} epochs × {batches} iterations, batch {}, tasks {}, {} parameters, backend {backend}",
        config.training.epochs,
        config.training.batch_size,
        tasks.iter().map(|t| t.key()).collect::<Vec<_>>().join("+"),
        module.net.parameter_count()
    ));

    while epochs_done < config.training.epochs {
        let epoch = epochs_done + 1;
        let weights_now = weighting.epoch_weights(tasks.len(), &history);
        let mut sums = vec![0f64; tasks.len()];
        let mut total_sum = 0f64;
        let mut count = 0usize;
        let t0 = Instant::now();
        report.epoch_start(epoch, config.training.epochs, batches);
        for (k, host) in loader.epoch(epoch as u64, 0).enumerate() {
            let host = host?;
            let it_start = Instant::now();
            let factor = sched.factor(iteration);
            if let Some(check) = reduction_check.as_mut() {
                check.check(&module.net.encoder, &device, [host.len, host.size[0], host.size[1]])?;
            }
            let batch = host.to_device(&device);
            let losses = task_losses(&module.net, batch, &tasks, ignore, depth);
            let values: Vec<f64> = losses.iter().map(|l| l.clone().into_scalar::<f32>() as f64).collect();
            let mut total = weighting.combine(&losses, &weights_now, module.task_weights.as_ref());
            if crate::fault::nan_at(iteration + 1) {
                total = total.mul_scalar(f32::NAN);
            }
            let total_v = total.clone().into_scalar::<f32>() as f64;
            if !total_v.is_finite() || values.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::NonFinite { what: "loss".into(), epoch, iteration: iteration + 1, last: last_ckpt });
            }
            let grads = GradientsParams::from_grads(total.backward(), &module);
            let scale = if o.grad_clip_norm > 0.0 {
                let norm = crate::optim::grad_norm(&module, &grads);
                if !norm.is_finite() {
                    return Err(TrainError::NonFinite { what: "gradient".into(), epoch, iteration: iteration + 1, last: last_ckpt });
                }
                Optimizer::clip_scale(norm, o.grad_clip_norm)
            } else {
                1.0
            };
            let hyper = |path: &str| {
                if path.starts_with("net.encoder") {
                    Hyper { lr: o.encoder_lr * factor, weight_decay: o.encoder_weight_decay }
                } else if path.starts_with("task_weights") {
                    Hyper { lr: o.decoder_lr * factor, weight_decay: 0.0 }
                } else {
                    Hyper { lr: o.decoder_lr * factor, weight_decay: o.decoder_weight_decay }
                }
            };
            module = optim.step(module, grads, hyper, scale);
            iteration += 1;
            count += 1;
            total_sum += total_v;
            for (s, v) in sums.iter_mut().zip(&values) {
                *s += v;
            }
            let ips = host.len as f64 / it_start.elapsed().as_secs_f64().max(1e-9);
            let named: Vec<(Task, f64)> = tasks.iter().copied().zip(values.iter().copied()).collect();
            report.iteration(k + 1, &named, total_v, ips);
            if iteration % config.training.log_interval as u64 == 0 {
                let eff = weighting.effective(&weights_now, module.task_weights.as_ref());
                log.iteration(json!({
                    "kind": "iter", "epoch": epoch, "iteration": iteration, "loss": total_v,
                    "losses": tasks.iter().zip(&values).map(|(t, v)| (t.key().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "weights": tasks.iter().zip(&eff).map(|(t, v)| (t.key().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "lr_encoder": o.encoder_lr * factor, "lr_decoder": o.decoder_lr * factor, "images_per_s": ips,
                }))
                .map_err(io(&run_dir))?;
            }
        }
        epochs_done += 1;
        epochs_this_run += 1;
        let means: Vec<f64> = sums.iter().map(|s| s / count.max(1) as f64).collect();
        history.epochs.push(means.clone());
        let train_time = t0.elapsed().as_secs_f64();

        // Validation.
        let mut improved = false;
        let validate = val.is_some() && config.training.val_interval > 0 && (epochs_done % config.training.val_interval == 0 || epochs_done == config.training.epochs);
        let metrics = if validate {
            let v = val.as_ref().unwrap();
            let inference = module.net.valid();
            let inner = device.clone().inner();
            let mut st = EvalState::new(&spec);
            for b in v.epoch(0, 0) {
                st.add(&inference, &inner, &b?, &spec);
            }
            let m = st.metrics(&tasks);
            if let Some(value) = monitor_value(&config.early_stopping.monitor, &m) {
                let better = es.best.is_none_or(|b| value > b + config.early_stopping.min_delta);
                if better {
                    es.best = Some(value);
                    es.best_epoch = Some(epochs_done);
                    es.bad_validations = 0;
                    improved = true;
                } else {
                    es.bad_validations += 1;
                }
            } else {
                report.info(&format!(
                    "warning: validation gives no value for early_stopping.monitor = \"{}\" (no valid pixels); best weights and early stopping cannot follow it",
                    config.early_stopping.monitor
                ));
            }
            last_metrics = Some(m.clone());
            Some(m)
        } else {
            None
        };
        if config.early_stopping.enabled && es.bad_validations >= config.early_stopping.patience {
            stopped_early = true;
        }

        // Checkpoint, best weights.
        let last_epoch = epochs_done == config.training.epochs || stopped_early || opts.stop_after_epochs == Some(epochs_this_run);
        let model_state = module.net.state_dict();
        if !all_finite(&model_state) {
            return Err(TrainError::NonFinite { what: "weights".into(), epoch, iteration, last: last_ckpt });
        }
        if improved {
            weights::save(&module.net, &run_dir.join("best.bpk"))?;
            let best = json!({"epoch": epochs_done, "iteration": iteration, "monitor": config.early_stopping.monitor, "value": es.best, "metrics": metrics});
            hydra_model::fsio::write_atomic(&run_dir.join("best.json"), serde_json::to_string_pretty(&best).unwrap().as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
        }
        if epochs_done % config.checkpoint.interval == 0 || last_epoch || improved {
            let mut optimizer = BTreeMap::new();
            let mut steps = BTreeMap::new();
            for (path, st) in &optim.state {
                steps.insert(path.clone(), st.step);
                for (i, s) in st.slots.iter().enumerate() {
                    optimizer.insert((path.clone(), i), RawTensor::from_tensor(s.clone()));
                }
            }
            let ck = Checkpoint {
                meta: CheckpointMeta {
                    version: checkpoint::CHECKPOINT_VERSION,
                    epochs_done,
                    iteration,
                    seed: config.training.seed,
                    optimizer_steps: steps,
                    early_stopping: es.clone(),
                    loss_history: history.clone(),
                    config: config.to_toml(),
                },
                model: model_state.clone(),
                log_vars: module.task_weights.as_ref().map(|w| RawTensor::from_tensor(w.log_vars.val())),
                optimizer,
            };
            last_ckpt = Some(ck.save(&ckpt_dir)?);
            checkpoint::prune(&ckpt_dir, config.checkpoint.keep_last, es.best_epoch);
        }

        // Logs.
        let eff = weighting.effective(&weights_now, module.task_weights.as_ref());
        let mut rec = json!({
            "train": {"loss": total_sum / count.max(1) as f64},
            "weights": tasks.iter().zip(&eff).map(|(t, v)| (t.key().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "lr_factor": sched.factor(iteration.saturating_sub(1)),
            "time_s": train_time,
        });
        for (t, m) in tasks.iter().zip(&means) {
            rec["train"][t.key()] = json!(m);
        }
        let mut summary = format!("epoch {epochs_done:>4}/{} | loss {:.4}", config.training.epochs, total_sum / count.max(1) as f64);
        for (t, m) in tasks.iter().zip(&means) {
            summary.push_str(&format!(" {} {:.4}", t.key(), m));
        }
        if let Some(m) = &metrics {
            let mut val_rec = serde_json::Map::new();
            if let Some(s) = &m.segmentation {
                val_rec.insert("miou".into(), json!(s.miou));
                val_rec.insert("pixel_acc".into(), json!(s.pixel_acc));
                val_rec.insert("mean_acc".into(), json!(s.mean_acc));
                summary.push_str(&format!(" | val mIoU {:.4} acc {:.4}", s.miou, s.pixel_acc));
            }
            if let Some(d) = &m.depth {
                val_rec.insert("rmse".into(), json!(d.rmse));
                val_rec.insert("abs_rel".into(), json!(d.abs_rel));
                val_rec.insert("delta1".into(), json!(d.delta1));
                summary.push_str(&format!(" rmse {:.4} absrel {:.4} δ1 {:.4}", d.rmse, d.abs_rel, d.delta1));
            }
            if let Some(l) = m.loss {
                val_rec.insert("loss".into(), json!(l));
            }
            for t in tasks.iter().filter(|t| m.has_no_valid_pixels(**t)) {
                summary.push_str(&format!(" | val {}", crate::metrics::no_valid_pixels_note(*t)));
            }
            if !m.no_valid_pixels.is_empty() {
                val_rec.insert("no_valid_pixels".into(), json!(m.no_valid_pixels));
            }
            rec["val"] = serde_json::Value::Object(val_rec);
            if improved {
                summary.push_str(" *best*");
            }
        }
        summary.push_str(&format!(" | {:.1} s", train_time));
        log.epoch(epoch_record(epochs_done, iteration, rec)).map_err(io(&run_dir))?;
        report.epoch_end(&summary);

        if stopped_early {
            report.info(&format!(
                "early stopping: no improvement of val {} for {} validations (best at epoch {})",
                config.early_stopping.monitor,
                es.bad_validations,
                es.best_epoch.unwrap_or(0)
            ));
            break;
        }
        if opts.stop_after_epochs == Some(epochs_this_run) && epochs_done < config.training.epochs {
            report.info(&format!("stopping after {epochs_this_run} epochs as asked; continue with --resume"));
            break;
        }
    }
    if epochs_done == config.training.epochs {
        weights::save(&module.net, &run_dir.join("final.bpk"))?;
    }
    Ok(TrainSummary {
        run_dir,
        epochs_done,
        iterations: iteration,
        stopped_early,
        last_metrics,
        best: es.best_epoch.zip(es.best),
        final_state: module.net.state_dict(),
    })
}
