//! The training loop: epochs of augmented batches, multi-task loss and weighting, optimiser
//! and schedule, validation, early stopping, best weights, checkpoints and exact resume.
//!
//! [`Trainer`] owns the whole state of a run and exposes its parts: [`Trainer::start`]
//! (build a new run or resume one), [`Trainer::step`] (one batch), [`Trainer::validate`],
//! [`Trainer::save`] (best weights, checkpoint). [`train`] is the epoch loop that calls
//! them. A batch's path from list file to applied gradient:
//!
//! ```text
//! list file ─ dataset ─ loader (augment, collate) ─ HostBatch ─ Trainer::step:
//!   forward ─ task losses ─ [1] Objective ─ gradient ─ [2] GradientSync ─ clip ─ optimiser
//! events of the loop ─ [3] Observers (console, run logs, ...)
//! ```
//!
//! The three seams, the places to extend:
//! 1. [`crate::objective::Objective`]: how per-task losses become the applied gradient
//!    (today: the fixed, uncertainty and DWA loss weightings, one backward pass);
//! 2. [`crate::grad_sync::GradientSync`]: how a gradient is synchronised before it is
//!    applied (as computed in one process; averaged across ranks by
//!    [`crate::dist::DataParallel`] in a data-parallel run, [`Trainer::start_in`]);
//! 3. [`crate::observer::Observer`]: who observes training events (today: the console's
//!    progress bars or plain lines, the run folder's metrics.jsonl, metrics.csv, plots,
//!    prediction panels, and TensorBoard event files in `tb/`).

mod data;
mod distributed;
mod epoch;
mod epoch_report;
mod error;
mod options;
mod replicas;
mod run_setup;
mod save;
mod step;
mod trainer;

use burn::module::Module;
use hydra_model::{HydraNet, Task};
use serde_json::json;

pub use data::TrainData;
pub use distributed::check_ranks;
pub use epoch::{EpochTotals, Validation};
pub use error::TrainError;
pub use options::{Resume, TrainOptions, TrainSummary};
pub use replicas::train_replicated;
pub use step::StepOutcome;
pub use trainer::Trainer;

use crate::dist::World;
use crate::mtl::Conflict;
use crate::observer::{Console, EpochEvent, IterationEvent, Observer, Observers};
use crate::panels::PanelWriter;
use crate::plots::RunPlots;
use crate::runlog::RunLog;
use crate::tensorboard::TensorBoard;
use crate::weighting::UncertaintyWeights;

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

/// Train as configured. Writes the run folder; returns how the run ended.
pub fn train(opts: TrainOptions, report: &mut dyn Reporter) -> Result<TrainSummary, TrainError> {
    train_in(opts, report, World::solo())
}

/// [`train`] as one rank of a data-parallel run over `world` (rank 0 writes the run folder).
pub fn train_in(opts: TrainOptions, report: &mut dyn Reporter, world: World) -> Result<TrainSummary, TrainError> {
    let (trainer, data) = Trainer::start_in(&opts, report, world)?;
    run(trainer, data, &opts, report, &mut [])
}

/// The epoch loop of a started run: `report` and the run folder's logs observe it, then
/// `extra` observers.
pub fn run(mut trainer: Trainer, data: TrainData, opts: &TrainOptions, report: &mut dyn Reporter, extra: &mut [&mut dyn Observer]) -> Result<TrainSummary, TrainError> {
    // Rank 0 writes the run folder; the other ranks of a data-parallel run only report.
    let root = trainer.world.is_root();
    let mut log = root.then(|| RunLog::open(trainer.run_dir(), trainer.resumed_at)).transpose().map_err(error::io(trainer.run_dir()))?;
    let mut plots = root.then(|| RunPlots::open(trainer.run_dir(), trainer.palette.names.clone()));
    let mut panels = root.then(|| PanelWriter::new(trainer.run_dir(), trainer.epochs_done)).transpose().map_err(error::io(trainer.run_dir()))?;
    let mut tb = root.then(|| TensorBoard::open(trainer.run_dir(), trainer.resumed_at, &opts.config.to_toml())).transpose()?;
    let mut console = Console(report);
    let mut obs = Observers(vec![&mut console]);
    if let (Some(log), Some(plots), Some(panels), Some(tb)) = (log.as_mut(), plots.as_mut(), panels.as_mut(), tb.as_mut()) {
        obs.0.extend([log as &mut dyn Observer, plots, panels, tb]);
    }
    obs.0.extend(extra.iter_mut().map(|o| &mut **o as &mut dyn Observer));
    obs.info(&trainer.describe(data.batches));
    let (epochs, mut epochs_this_run, mut last_metrics, mut stopped_early) = (opts.config.training.epochs, 0, None, false);
    while trainer.epochs_done < epochs {
        let epoch = trainer.begin_epoch();
        obs.epoch_start(epoch, epochs, data.batches);
        let mut totals = EpochTotals::new(opts.config.tasks().len());
        for (k, host) in data.train.epoch(epoch as u64, 0).enumerate() {
            let step = trainer.step(host?, epoch)?;
            totals.add(&step);
            iteration_event(&trainer, &step, epoch, k + 1, data.batches, &mut obs)?;
        }
        let train_time = totals.start.elapsed().as_secs_f64();
        trainer.finish_epoch(&totals);
        trainer.average_running_statistics();
        epochs_this_run += 1;
        let val = match &data.val {
            Some(v) if trainer.validation_due() => Some(trainer.validate(v, &mut obs)?),
            _ => None,
        };
        stopped_early = trainer.should_stop_early();
        let last_epoch = trainer.epochs_done == epochs || stopped_early || opts.stop_after_epochs == Some(epochs_this_run);
        let improved = val.as_ref().is_some_and(|v| v.improved);
        if let Some(path) = trainer.save(epoch, improved, val.as_ref().map(|v| &v.metrics), last_epoch)? {
            obs.checkpoint(&path);
        }
        let (record, summary) = trainer.epoch_report(&totals, train_time, val.as_ref().map(|v| (&v.metrics, v.improved)));
        obs.epoch_end(&EpochEvent { record: &record, summary: &summary })?;
        last_metrics = val.map(|v| v.metrics).or(last_metrics);
        if stopped_early {
            let es = &trainer.early_stopping;
            obs.info(&format!("early stopping: no improvement of val {} for {} validations (best at epoch {})", opts.config.early_stopping.monitor, es.bad_validations, es.best_epoch.unwrap_or(0)));
            break;
        }
        if opts.stop_after_epochs == Some(epochs_this_run) && trainer.epochs_done < epochs {
            obs.info(&format!("stopping after {epochs_this_run} epochs as asked; continue with --resume"));
            break;
        }
    }
    trainer.finish()?;
    if root {
        let page = crate::report::write(trainer.run_dir(), None).map_err(|e| TrainError::Io { path: e.path.clone(), source: std::io::Error::other(e.message) })?;
        obs.info(&format!("report: {}", page.display()));
    }
    let es = &trainer.early_stopping;
    let summary = TrainSummary {
        run_dir: trainer.run_dir().to_path_buf(),
        epochs_done: trainer.epochs_done,
        iterations: trainer.iteration,
        stopped_early,
        last_metrics,
        best: es.best_epoch.zip(es.best),
        final_state: trainer.module().net.state_dict(),
    };
    obs.end(&summary);
    Ok(summary)
}

/// Tell the observers about a step (`done` of `batches` in `epoch`); the effective task
/// weights and learning rates are read only for logged iterations.
fn iteration_event(trainer: &Trainer, step: &StepOutcome, epoch: usize, done: usize, batches: usize, obs: &mut Observers<'_>) -> Result<(), TrainError> {
    let tasks = &trainer.tasks;
    let o = &trainer.config.optimizer;
    let logged = trainer.iteration % trainer.config.training.log_interval as u64 == 0;
    let weights: Vec<(Task, f64)> = if logged { tasks.iter().copied().zip(trainer.objective.task_weights(trainer.module())).collect() } else { Vec::new() };
    let losses: Vec<(Task, f64)> = tasks.iter().copied().zip(step.losses.iter().copied()).collect();
    let (grad_norms, grad_cosines) = match (&step.conflict, logged) {
        (Some(c), true) => (
            tasks.iter().copied().zip(c.norms.iter().copied()).collect(),
            Conflict::pairs(tasks.len()).into_iter().zip(&c.cosines).map(|((i, j), &v)| (format!("{}/{}", tasks[i].key(), tasks[j].key()), v)).collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    obs.iteration(&IterationEvent {
        epoch,
        iteration: trainer.iteration,
        done,
        batches,
        losses: &losses,
        total: step.total,
        images_per_s: step.images_per_s,
        logged,
        weights: &weights,
        lr_encoder: o.encoder_lr * step.lr_factor,
        lr_decoder: o.decoder_lr * step.lr_factor,
        grad_norms: &grad_norms,
        grad_cosines: &grad_cosines,
    })
}

/// The iteration record of metrics.jsonl.
pub(crate) fn iteration_record(e: &IterationEvent<'_>) -> serde_json::Value {
    let map = |v: &[(Task, f64)]| v.iter().map(|(t, x)| (t.key().to_string(), json!(x))).collect::<serde_json::Map<_, _>>();
    let mut record = json!({
        "kind": "iter", "epoch": e.epoch, "iteration": e.iteration, "loss": e.total,
        "losses": map(e.losses), "weights": map(e.weights),
        "lr_encoder": e.lr_encoder, "lr_decoder": e.lr_decoder, "images_per_s": e.images_per_s,
    });
    if !e.grad_norms.is_empty() {
        record["grad_norms"] = json!(map(e.grad_norms));
        record["grad_cosines"] = json!(e.grad_cosines.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>());
    }
    record
}
