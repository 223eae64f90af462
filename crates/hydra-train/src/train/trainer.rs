//! The [`Trainer`]: the whole state of a training run (network and task weights, optimiser
//! state, schedule, epoch and iteration, early stopping, loss history), built for a new run
//! or restored from a checkpoint.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::Device;
use hydra_model::state::{StateLoader, ReferenceKeys};
use hydra_data::palette::Palette;
use hydra_model::Task;

use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, CheckpointError, EarlyStopState};
use crate::components::{depth_kind, eval_spec, initial_network, objective, optimizer_kind, schedule, weighting};
use crate::config::Config;
use crate::dist::World;
use crate::eval::EvalSpec;
use crate::grad_sync::{GradientSync, LocalOnly};
use crate::loss::DepthLoss;
use crate::objective::Objective;
use crate::optim::{Optimizer, ParamState};
use crate::reduction_check::ReductionCheck;
use crate::run_folder::RunLock;
use crate::schedule::Schedule;
use crate::train::data::TrainData;
use crate::train::run_setup::{check_config_change, check_training_memory, open_run_folder};
use crate::train::{Reporter, TrainError, TrainModule, TrainOptions};
use crate::weighting::{LossHistory, UncertaintyWeights, Weighting};

/// A training run in progress. The epoch loop ([`crate::train::train`]) calls
/// [`Trainer::step`] per batch, then [`Trainer::finish_epoch`], [`Trainer::validate`] and
/// [`Trainer::save`] per epoch.
pub struct Trainer {
    pub(crate) config: Config,
    pub(crate) tasks: Vec<Task>,
    pub(crate) backend: Backend,
    pub(crate) device: Device,
    /// The network and learned task weights; `None` only while the optimiser updates them.
    pub(crate) module: Option<TrainModule>,
    pub(crate) optim: Optimizer,
    pub(crate) sched: Schedule,
    pub(crate) objective: Box<dyn Objective>,
    pub(crate) sync: Box<dyn GradientSync>,
    /// Checks the driver's long sums at each new batch shape (backends other than flex).
    pub(crate) reduction_check: Option<ReductionCheck>,
    pub epochs_done: usize,
    pub iteration: u64,
    pub(crate) early_stopping: EarlyStopState,
    pub(crate) history: LossHistory,
    pub(crate) run_dir: PathBuf,
    pub(crate) last_checkpoint: Option<PathBuf>,
    /// The iteration the run was resumed at, if it was.
    pub resumed_at: Option<u64>,
    pub(crate) spec: EvalSpec,
    pub(crate) ignore: i64,
    pub(crate) depth: DepthLoss,
    /// Class colours and names (extended to the number of classes), for panels and plots.
    pub(crate) palette: Palette,
    /// This process's place in a data-parallel run ([`World::solo`] for one process).
    pub(crate) world: World,
    /// The run folder's lock: rank 0's (other ranks write nothing).
    pub(super) _lock: Option<RunLock>,
}

impl Trainer {
    /// Build a new run or resume one, as `opts` asks: the run folder is checked and locked,
    /// the checkpoint (if any) read and its configuration compared, the data opened and
    /// validated, the network built (or restored), and the resolved config written.
    pub fn start(opts: &TrainOptions, report: &mut dyn Reporter) -> Result<(Self, TrainData), TrainError> {
        Self::start_in(opts, report, World::solo())
    }

    /// [`Trainer::start`] as the rank of a one-process run, or rank 0 of a data-parallel one.
    /// `device`: this replica's (`training.devices`), else the backend's default.
    pub(super) fn start_root(opts: &TrainOptions, report: &mut dyn Reporter, device: Option<Device>) -> Result<(Self, TrainData), TrainError> {
        let config = opts.config.clone();
        let backend = Backend::parse(&config.training.backend).map_err(TrainError::Config)?;
        let device = match device {
            Some(d) => d,
            None => backend.training_device().map_err(TrainError::Config)?,
        };
        let run_dir = config.output.dir.clone();
        let (lock, resume_from) = open_run_folder(&run_dir, &opts.resume, report)?;
        let resumed = resume_from.as_deref().map(Checkpoint::load).transpose()?;
        if let (Some(ck), Some(from)) = (&resumed, &resume_from) {
            check_config_change(ck, &config, from, &run_dir, opts.allow_config_change, report)?;
        }
        let data = TrainData::open(&config, report)?;
        check_training_memory(&config, data.train.dataset().as_ref(), backend, report)?;
        let mut trainer = Self::new(config, backend, device, Some(lock), data.batches)?;
        if let (Some(ck), Some(from)) = (&resumed, &resume_from) {
            trainer.restore(ck, from)?;
            report.info(&format!("resumed from {} (epoch {}, iteration {})", from.display(), trainer.epochs_done, trainer.iteration));
        }
        hydra_model::fsio::write_atomic(&run_dir.join("config.toml"), trainer.config.to_toml().as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
        let device = format!("{:?}", trainer.device.clone().inner());
        let device = device.trim_start_matches("Device<").trim_end_matches('>');
        let session = crate::run_info::this_session(trainer.backend.name(), device, trainer.resumed_at);
        crate::run_info::record(&run_dir, session).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
        Ok((trainer, data))
    }

    /// A new run: the initial network, task weighting, optimiser and schedule.
    pub(super) fn new(config: Config, backend: Backend, device: Device, lock: Option<RunLock>, batches: usize) -> Result<Self, TrainError> {
        let tasks = config.tasks();
        let net = initial_network(&config, &device)?;
        let weighting = weighting(&config, &tasks);
        // Learned per-task parameters: uncertainty weighting's log-variances, GradNorm's loss
        // scales.
        let learned = matches!(weighting, Weighting::Uncertainty) || config.loss.weighting == "gradnorm";
        let task_weights = learned.then(|| UncertaintyWeights::new(tasks.len(), &device));
        // Training's long sums (BatchNorm statistics, weight gradients) run through hydra's own
        // kernels on burn-flex; on other backends the driver's are checked at each new batch
        // shape before it is trained on (`reduction_check`).
        let reduction_check = (backend != Backend::Flex).then(ReductionCheck::default);
        Ok(Self {
            tasks: tasks.clone(),
            backend,
            module: Some(TrainModule { net, task_weights }),
            optim: Optimizer::new(optimizer_kind(&config)),
            sched: schedule(&config, batches as u64),
            objective: objective(&config, &tasks),
            sync: Box::new(LocalOnly),
            reduction_check,
            epochs_done: 0,
            iteration: 0,
            early_stopping: EarlyStopState::default(),
            history: LossHistory::default(),
            run_dir: config.output.dir.clone(),
            last_checkpoint: None,
            resumed_at: None,
            spec: eval_spec(&config),
            ignore: config.data.ignore_index as i64,
            depth: depth_kind(&config),
            palette: crate::setup::palette(&config)?,
            config,
            device,
            world: World::solo(),
            _lock: lock,
        })
    }

    /// Continue from checkpoint `ck` (read from `from`): network, task weights, optimiser
    /// slots and step counts, epoch, iteration, early stopping and loss history.
    pub(super) fn restore(&mut self, ck: &Checkpoint, from: &Path) -> Result<(), TrainError> {
        let invalid = |detail: String| TrainError::Checkpoint(CheckpointError::Invalid { path: from.into(), detail });
        let mut module = self.module.take().expect("module present");
        let mut loader = StateLoader::new(&ck.model);
        module.net = ReferenceKeys::import_state(module.net, "", &mut loader);
        let rep = loader.finish();
        if !rep.issues.is_empty() {
            return Err(invalid(format!("does not fit the configured network: {}", rep.issues[0])));
        }
        if let (Some(tw), Some(lv)) = (module.task_weights.as_mut(), &ck.log_vars) {
            tw.log_vars = Param::from_tensor(lv.to_tensor::<1>(&self.device)).set_require_grad(true);
        }
        self.module = Some(module);
        let inner = self.device.clone().inner();
        for ((path, slot), t) in &ck.optimizer {
            let st = self.optim.state.entry(path.clone()).or_insert(ParamState { step: 0, slots: Vec::new() });
            if st.slots.len() != *slot {
                return Err(invalid(format!("optimiser slots of `{path}` out of order")));
            }
            st.slots.push(t.to_tensor::<1>(&inner));
        }
        for (path, &steps) in &ck.meta.optimizer_steps {
            self.optim.state.entry(path.clone()).or_insert(ParamState { step: 0, slots: Vec::new() }).step = steps;
        }
        self.epochs_done = ck.meta.epochs_done;
        self.iteration = ck.meta.iteration;
        self.early_stopping = ck.meta.early_stopping.clone();
        self.history = ck.meta.loss_history.clone();
        self.objective.restore(&ck.meta.objective).map_err(invalid)?;
        self.last_checkpoint = Some(from.to_path_buf());
        self.resumed_at = Some(ck.meta.iteration);
        Ok(())
    }

    /// Replace how per-task losses become the applied gradient (seam 1).
    pub fn set_objective(&mut self, objective: Box<dyn Objective>) {
        self.objective = objective;
    }

    /// Replace how a gradient is synchronised before it is applied (seam 2).
    pub fn set_gradient_sync(&mut self, sync: Box<dyn GradientSync>) {
        self.sync = sync;
    }

    /// The network and task weights.
    pub fn module(&self) -> &TrainModule {
        self.module.as_ref().expect("module present between steps")
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The one-line description of the run printed before it starts.
    pub fn describe(&self, batches: usize) -> String {
        let n = self.world.size();
        let ranks = if n > 1 {
            let bn = if self.config.training.sync_bn { "SyncBatchNorm" } else { "BatchNorm per rank" };
            format!(" = {n} ranks × {} ({bn})", self.config.training.batch_size / n)
        } else {
            String::new()
        };
        format!(
            "training {} epochs × {batches} iterations, batch {}{ranks}, tasks {}, {} parameters, backend {}",
            self.config.training.epochs,
            self.config.training.batch_size,
            self.tasks.iter().map(|t| t.key()).collect::<Vec<_>>().join("+"),
            self.module().net.parameter_count(),
            self.backend
        )
    }
}
