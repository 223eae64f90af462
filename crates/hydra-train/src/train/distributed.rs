//! A rank of a data-parallel run: how it starts (rank 0's state on every rank, its shard of
//! the data, the averaged gradient, SyncBatchNorm), what it may be asked to train, and what
//! its steps share with the other ranks (the loss normalisation, the losses reported).

use std::path::Path;

use hydra_data::batch::HostBatch;
use hydra_model::kernels::sync_bn;
use hydra_model::state::{ReferenceKeys, StateLoader};
use hydra_model::Task;

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::dist::{DataParallel, World, DEFAULT_BUCKET_BYTES};
use crate::loss::DepthLoss;
use crate::train::data::TrainData;
use crate::train::run_setup::check_training_memory;
use crate::train::{Reporter, TrainError, TrainOptions, Trainer};

/// A rank's configuration trains rank 0's run: it may differ in where files are (each
/// machine's dataset paths, the run folder, loader threads), not in what is computed.
fn same_run(root: &str, mine: &Config, rank: usize) -> Result<(), TrainError> {
    let changes = crate::run_folder::changes(root, &mine.to_toml()).map_err(TrainError::Config)?;
    let local = |k: &str| k.starts_with("data.") && (k.ends_with(".root") || k.ends_with(".list") || k.ends_with(".workers") || k == "data.workers") || k == "output.dir";
    let differ: Vec<&crate::run_folder::Change> = changes.iter().filter(|c| !local(&c.key)).collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(TrainError::Config(format!("rank {rank}'s configuration differs from rank 0's: {}; every rank must train the same run (only dataset paths, output.dir and data.workers may differ)", crate::run_folder::list(&differ))))
}

/// What `config` asks that `ranks` ranks cannot do, in one line.
pub fn check_ranks(config: &Config, ranks: usize) -> Result<(), String> {
    if ranks <= 1 {
        return Ok(());
    }
    let b = config.training.batch_size;
    if b % ranks != 0 {
        return Err(format!("training.batch_size = {b} is not divisible by the {ranks} ranks (it is the global batch: each rank takes batch_size / ranks)"));
    }
    if matches!(config.loss.weighting.as_str(), "nash_mtl" | "graddrop") {
        return Err(format!(
            "loss.weighting = \"{}\" with {ranks} ranks: not data-parallel yet ({}); use another method or one process",
            config.loss.weighting,
            if config.loss.weighting == "nash_mtl" { "its clipping between updates would see each rank's gradient" } else { "its sign purity would be each rank's" }
        ));
    }
    if config.loss.weighting == "gls" {
        return Err(format!("loss.weighting = \"gls\" with {ranks} ranks: its geometric mean of the losses is not the mean of the ranks' (use another weighting or method, or one process)"));
    }
    let backend = Backend::parse(&config.training.backend)?;
    if backend != Backend::Flex && config.training.sync_bn {
        return Err(format!(
            "training.backend = \"{}\" with {ranks} replicas: SyncBatchNorm runs on the CPU backend (flex) for now; set training.sync_bn = false (BatchNorm per replica) or train on flex",
            config.training.backend
        ));
    }
    for d in &config.training.devices {
        let (b, _) = Backend::parse_device(d)?;
        if b != backend {
            return Err(format!("training.devices: \"{d}\" is not a device of training.backend = \"{}\"", config.training.backend));
        }
    }
    Ok(())
}

impl Trainer {
    /// [`Trainer::start`] as rank `world.rank()` of `world.size()`: rank 0 opens (or resumes)
    /// the run as one process would; the other ranks open the data only and take rank 0's
    /// whole training state (network, optimiser, schedule position, loss history), broadcast
    /// as a checkpoint's bytes, so that a run resumes on any number of ranks and no rank
    /// needs the run folder.
    pub fn start_in(opts: &TrainOptions, report: &mut dyn Reporter, world: World) -> Result<(Self, TrainData), TrainError> {
        check_ranks(&opts.config, world.size()).map_err(TrainError::Config)?;
        let device = world.device().cloned();
        let (mut trainer, mut data) = if world.is_root() { Self::start_root(opts, report, device)? } else { Self::start_follower(opts, device)? };
        if world.size() == 1 {
            return Ok((trainer, data));
        }
        let mut bytes = if world.is_root() { trainer.checkpoint(trainer.module().net.state_dict()).to_bytes() } else { Vec::new() };
        world.comm().broadcast(&mut bytes);
        if !world.is_root() {
            let ck = Checkpoint::from_bytes(&bytes, Path::new("(rank 0's training state)"))?;
            same_run(&ck.meta.config, &trainer.config, world.rank())?;
            trainer.restore(&ck, Path::new("(rank 0's training state)"))?;
            trainer.resumed_at = (ck.meta.iteration > 0).then_some(ck.meta.iteration);
            trainer.last_checkpoint = None;
        }
        data.train = data.train.with_shard(world.rank(), world.size());
        trainer.sync = Box::new(DataParallel::new(world.clone(), DEFAULT_BUCKET_BYTES));
        #[cfg(feature = "cuda")]
        if let Some(devices) = world.native_devices() {
            trainer.sync = Box::new(crate::dist::native::NativeDataParallel::new(devices.to_vec(), DEFAULT_BUCKET_BYTES));
        }
        trainer.objective.join(&world);
        if trainer.config.training.sync_bn {
            sync_bn::set_reducer(Some(world.channel_reduce()));
        }
        trainer.world = world;
        Ok((trainer, data))
    }

    /// A rank other than 0: the data and a network to receive rank 0's state into.
    fn start_follower(opts: &TrainOptions, device: Option<burn::tensor::Device>) -> Result<(Self, TrainData), TrainError> {
        let config = opts.config.clone();
        let backend = Backend::parse(&config.training.backend).map_err(TrainError::Config)?;
        let device = match device {
            Some(d) => d,
            None => backend.training_device().map_err(TrainError::Config)?,
        };
        let data = TrainData::open(&config, &mut crate::train::Silent)?;
        check_training_memory(&config, data.train.dataset().as_ref(), backend, &mut crate::train::Silent)?;
        let trainer = Self::new(config, backend, device, None, data.batches)?;
        Ok((trainer, data))
    }

    /// This rank's factor on each task's loss, so that the average of the ranks' gradients is
    /// the gradient of the whole batch's loss: a loss averaged over this rank's `c_r` valid
    /// pixels becomes `N · c_r / Σ c` times itself (1 in one process; 1 for every rank when the
    /// ranks' counts are equal).
    pub(super) fn replica_scale(&self, host: &HostBatch) -> Option<Vec<f64>> {
        let n = self.world.size();
        if n == 1 {
            return None;
        }
        let local = valid_counts(host, &self.tasks, self.ignore, self.depth);
        let mut total = local.clone();
        self.world.sum_f64(&mut total);
        Some(local.iter().zip(&total).map(|(&l, &t)| if t > 0.0 { n as f64 * l / t } else { 1.0 }).collect())
    }

    /// The whole batch's losses from this rank's scaled ones: their mean over the ranks
    /// (`losses`, then the total).
    pub(super) fn reduce_losses(&self, losses: &mut Vec<f64>, total: &mut f64) {
        if self.world.size() == 1 {
            return;
        }
        losses.push(*total);
        self.world.mean_f64(losses);
        *total = losses.pop().expect("total");
    }

    /// Without SyncBatchNorm: every BatchNorm's running mean and variance replaced by their
    /// mean over the ranks, so that validation and checkpoints see one network.
    pub fn average_running_statistics(&mut self) {
        if self.world.size() == 1 || self.config.training.sync_bn {
            return;
        }
        let module = self.module.take().expect("module present");
        let mut state = hydra_model::StateDict::new();
        for (key, t) in module.net.state_dict().iter() {
            if key.ends_with(".running_mean") || key.ends_with(".running_var") {
                let mut v: Vec<f64> = t.to_f32().into_iter().map(f64::from).collect();
                self.world.mean_f64(&mut v);
                state.insert(key, hydra_model::state::RawTensor::f32(t.shape.clone(), v.into_iter().map(|x| x as f32).collect()));
            } else {
                state.insert(key, t.clone());
            }
        }
        let mut loader = StateLoader::new(&state);
        let net = ReferenceKeys::import_state(module.net, "", &mut loader);
        self.module = Some(crate::train::TrainModule { net, task_weights: module.task_weights });
    }
}

impl Trainer {
    /// Every rank holds rank 0's network, bit for bit (each applies the same step to the same
    /// state): rank 0's digest of `state` (its tensors' bytes) is broadcast and compared, at
    /// every epoch's end, before anything is written.
    pub(super) fn check_ranks_agree(&self, state: &hydra_model::StateDict, epoch: usize) -> Result<(), TrainError> {
        if self.world.size() == 1 {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(state.float_numel() * 4);
        for (key, t) in state.iter() {
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend(t.to_f32().iter().flat_map(|v| v.to_le_bytes()));
        }
        if crate::fault::diverge_rank() == Some(self.world.rank()) {
            bytes.push(1);
        }
        let mine = crate::checkpoint::fnv1a64(&bytes).to_le_bytes().to_vec();
        let mut root = mine.clone();
        self.world.comm().broadcast(&mut root);
        // Every rank learns how many differ, so that none writes or goes on.
        let mut differ = [if root == mine { 0.0 } else { 1.0 }];
        self.world.sum_f64(&mut differ);
        if differ[0] > 0.0 {
            return Err(TrainError::RanksDiverged { ranks: differ[0] as usize, size: self.world.size(), epoch });
        }
        Ok(())
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        if self.world.size() > 1 {
            sync_bn::set_reducer(None);
        }
    }
}

/// Each task's count of the elements its loss averages over, in this rank's batch.
fn valid_counts(host: &HostBatch, tasks: &[Task], ignore: i64, depth: DepthLoss) -> Vec<f64> {
    let pixels = host.len * host.size[0] * host.size[1];
    tasks
        .iter()
        .map(|t| match t {
            Task::Segmentation => host.labels.as_ref().map_or(0, |l| l.iter().filter(|&&v| v != ignore).count()) as f64,
            Task::Depth => match depth {
                DepthLoss::L1 => host.depth.as_ref().map_or(0, |d| d.iter().filter(|&&v| v > 0.0).count()) as f64,
                // BerHu averages over every pixel.
                DepthLoss::BerHu => host.depth.as_ref().map_or(0, |_| pixels) as f64,
            },
            Task::Normals => host.normals.as_ref().map_or(0, |n| {
                let plane = host.size[0] * host.size[1];
                (0..host.len * plane)
                    .filter(|&k| {
                        let (b, p) = (k / plane, k % plane);
                        let at = |c: usize| n[(b * 3 + c) * plane + p];
                        at(0) * at(0) + at(1) * at(1) + at(2) * at(2) > 1e-12
                    })
                    .count()
            }) as f64,
        })
        .collect()
}
