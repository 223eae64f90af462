//! The Trainer's three seams are where the loop's work goes through: an observer sees every
//! event in order, a gradient sync's output is what the optimiser applies, an objective's
//! gradient is the one used, at every step.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{parameters, scratch, tiny_config};
use hydra_train::config::Config;
use hydra_train::grad_sync::GradientSync;
use hydra_train::loss::BatchLosses;
use hydra_train::objective::{scalar, LossWeighting, NonFiniteLoss, Objective, StepGradient, StepInfo};
use hydra_train::observer::{EpochEvent, IterationEvent, Observer, ValidationEvent};
use hydra_train::train::{run, Resume, Silent, TrainError, TrainModule, TrainOptions, Trainer};
use hydra_train::weighting::{LossHistory, Weighting};

fn options(dir: &Path, overrides: &[&str]) -> TrainOptions {
    let cfg = tiny_config(dir, &dir.join("run"), "");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainOptions { config: Config::from_file(&cfg, &overrides).unwrap(), resume: Resume::No, stop_after_epochs: None, allow_config_change: false }
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    iterations: Vec<u64>,
    checkpoints: Vec<PathBuf>,
}

impl Observer for Recorder {
    fn epoch_start(&mut self, epoch: usize, _epochs: usize, _batches: usize) {
        self.events.push(format!("start {epoch}"));
    }
    fn iteration(&mut self, e: &IterationEvent<'_>) -> Result<(), TrainError> {
        self.iterations.push(e.iteration);
        Ok(())
    }
    fn validation(&mut self, e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        self.events.push(format!("val {}", e.epoch));
        Ok(())
    }
    fn checkpoint(&mut self, path: &Path) {
        self.checkpoints.push(path.to_path_buf());
    }
    fn epoch_end(&mut self, e: &EpochEvent<'_>) -> Result<(), TrainError> {
        self.events.push(format!("end {}", e.record["epoch"]));
        Ok(())
    }
    fn end(&mut self, s: &hydra_train::train::TrainSummary) {
        self.events.push(format!("done {}", s.iterations));
    }
}

#[test]
fn an_observer_sees_every_event_in_order() {
    let dir = scratch("seam-observer");
    let opts = options(&dir, &["checkpoint.interval=2", "checkpoint.keep_last=5", "training.val_interval=2"]);
    let (trainer, data) = Trainer::start(&opts, &mut Silent).unwrap();
    let batches = data.batches as u64;
    let mut rec = Recorder::default();
    let s = run(trainer, data, &opts, &mut Silent, &mut [&mut rec]).unwrap();
    assert_eq!(rec.iterations, (1..=3 * batches).collect::<Vec<_>>());
    assert_eq!(rec.events, ["start 1", "end 1", "start 2", "val 2", "end 2", "start 3", "val 3", "end 3", &format!("done {}", s.iterations)]);
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(dir.join("run/checkpoints")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "bpk")).collect();
    on_disk.sort();
    assert_eq!(rec.checkpoints, on_disk, "a checkpoint event for each checkpoint written");
}

/// Drops every gradient (the optimiser then has nothing to apply), counting its calls.
struct DropAll(Arc<AtomicUsize>);

impl GradientSync for DropAll {
    fn sync(&mut self, _module: &TrainModule, _grads: GradientsParams) -> GradientsParams {
        self.0.fetch_add(1, Ordering::Relaxed);
        GradientsParams::new()
    }
}

#[test]
fn the_gradient_sync_decides_what_is_applied() {
    let dir = scratch("seam-sync");
    let opts = options(&dir, &[]);
    let initial = hydra_train::components::initial_network(&opts.config, &Device::flex()).unwrap().state_dict();
    let (mut trainer, data) = Trainer::start(&opts, &mut Silent).unwrap();
    let steps = 3 * data.batches;
    let calls = Arc::new(AtomicUsize::new(0));
    trainer.set_gradient_sync(Box::new(DropAll(calls.clone())));
    let s = run(trainer, data, &opts, &mut Silent, &mut []).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), steps, "the sync is called once per step");
    assert_eq!(parameters(&s.final_state), parameters(&initial), "no gradient applied, yet a parameter moved");
    // The control: with the default sync the parameters move.
    let dir2 = scratch("seam-sync-control");
    let s2 = hydra_train::train::train(options(&dir2, &[]), &mut Silent).unwrap();
    assert_ne!(parameters(&s2.final_state), parameters(&initial));
}

/// Today's loss weighting on losses scaled by 0 (every gradient zero), counting its calls.
struct Zeroed {
    inner: LossWeighting,
    epochs: Arc<AtomicUsize>,
    steps: Arc<AtomicUsize>,
}

impl Objective for Zeroed {
    fn epoch_start(&mut self, tasks: usize, history: &LossHistory) {
        self.epochs.fetch_add(1, Ordering::Relaxed);
        self.inner.epoch_start(tasks, history);
    }
    fn gradients(&mut self, module: &TrainModule, batch: &BatchLosses<'_>, step: StepInfo) -> Result<StepGradient, NonFiniteLoss> {
        self.steps.fetch_add(1, Ordering::Relaxed);
        let losses = batch.all(&module.net);
        let values = losses.iter().map(scalar).collect();
        let zeroed: Vec<Tensor<1>> = losses.iter().map(|l| l.clone().mul_scalar(0.0)).collect();
        let (total, grads) = self.inner.combine(module, &zeroed, step.iteration)?;
        Ok(StepGradient { total, losses: values, grads, conflict: None })
    }
    fn task_weights(&self, module: &TrainModule) -> Vec<f64> {
        self.inner.task_weights(module)
    }
}

#[test]
fn the_objective_gives_the_gradient_that_is_applied() {
    let dir = scratch("seam-objective");
    // Without weight decay, zero gradients leave every parameter where it started.
    let opts = options(&dir, &["optimizer.encoder_weight_decay=0.0", "optimizer.decoder_weight_decay=0.0"]);
    let initial = hydra_train::components::initial_network(&opts.config, &Device::flex()).unwrap().state_dict();
    let (mut trainer, data) = Trainer::start(&opts, &mut Silent).unwrap();
    let steps = 3 * data.batches;
    let (epochs, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    trainer.set_objective(Box::new(Zeroed { inner: LossWeighting::new(Weighting::Fixed(vec![0.5, 0.5])), epochs: epochs.clone(), steps: calls.clone() }));
    let s = run(trainer, data, &opts, &mut Silent, &mut []).unwrap();
    assert_eq!((epochs.load(Ordering::Relaxed), calls.load(Ordering::Relaxed)), (3, steps));
    assert_eq!(parameters(&s.final_state), parameters(&initial), "zero gradients moved a parameter");
}

/// Finite losses whose gradient is infinite: the loss is multiplied by +inf before the
/// backward pass, the reported total is the plain sum.
struct InfiniteGradient;

impl Objective for InfiniteGradient {
    fn epoch_start(&mut self, _tasks: usize, _history: &LossHistory) {}
    fn gradients(&mut self, module: &TrainModule, batch: &BatchLosses<'_>, _step: StepInfo) -> Result<StepGradient, NonFiniteLoss> {
        let losses = batch.all(&module.net);
        let values = losses.iter().map(scalar).collect();
        let total = losses.iter().cloned().reduce(|a, b| a + b).unwrap();
        let value = scalar(&total);
        Ok(StepGradient { total: value, losses: values, grads: GradientsParams::from_grads(total.mul_scalar(f32::INFINITY).backward(), module), conflict: None })
    }
    fn task_weights(&self, _module: &TrainModule) -> Vec<f64> {
        vec![1.0, 1.0]
    }
}

#[test]
fn a_non_finite_gradient_stops_training_with_clipping_off_too() {
    for clip in ["0.0", "5.0"] {
        let dir = scratch("seam-inf-gradient");
        let opts = options(&dir, &[&format!("optimizer.grad_clip_norm={clip}")]);
        let (mut trainer, data) = Trainer::start(&opts, &mut Silent).unwrap();
        trainer.set_objective(Box::new(InfiniteGradient));
        match run(trainer, data, &opts, &mut Silent, &mut []) {
            Err(TrainError::NonFinite { what, epoch, iteration, .. }) => assert_eq!((what.as_str(), epoch, iteration), ("gradient", 1, 1), "clip {clip}"),
            other => panic!("clip {clip}: an infinite gradient was applied: {:?}", other.map(|s| s.iterations)),
        }
    }
}
