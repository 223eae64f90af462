//! Seam 3 of the training loop: who observes training events.
//!
//! The loop emits events (an information line, an epoch's start, an iteration, a validation,
//! a checkpoint, an epoch's end, the end of the run) to a list of [`Observer`]s. Today: the
//! console ([`Console`]: progress bars or plain lines, through a [`Reporter`]) and the run
//! folder's logs ([`crate::runlog::RunLog`]: metrics.jsonl, metrics.csv, plots) and
//! TensorBoard event files ([`crate::tensorboard::TensorBoard`]), the plots
//! ([`crate::plots::RunPlots`]) and the prediction panels ([`crate::panels::PanelWriter`]).

use std::path::Path;

use hydra_model::Task;
use serde_json::Value;

use crate::metrics::EvalMetrics;
use crate::train::{Reporter, TrainError, TrainSummary};

/// One optimiser step has been taken.
#[derive(Debug, Clone)]
pub struct IterationEvent<'a> {
    pub epoch: usize,
    /// Optimiser steps taken in the run (1-based: this step's number).
    pub iteration: u64,
    /// Steps taken in this epoch, and the epoch's length.
    pub done: usize,
    pub batches: usize,
    /// Each task's loss, and their weighted total.
    pub losses: &'a [(Task, f64)],
    pub total: f64,
    pub images_per_s: f64,
    /// Whether this iteration is logged (`training.log_interval`); `weights` and the learning
    /// rates are then filled.
    pub logged: bool,
    pub weights: &'a [(Task, f64)],
    pub lr_encoder: f64,
    pub lr_decoder: f64,
    /// At logged iterations with `training.log_conflict`: each task's gradient norm on the
    /// shared parameters, and the cosine of each pair of tasks' gradients (`"segm/depth"`).
    pub grad_norms: &'a [(Task, f64)],
    pub grad_cosines: &'a [(String, f64)],
}

/// A validation has finished.
#[derive(Debug, Clone)]
pub struct ValidationEvent<'a> {
    /// Epochs done (the epoch validated).
    pub epoch: usize,
    /// Optimiser steps taken.
    pub iteration: u64,
    pub metrics: &'a EvalMetrics,
    /// Whether it gave new best weights.
    pub improved: bool,
    /// The prediction panel of the fixed validation samples (`output.samples`), as PNG.
    pub panel: Option<&'a [u8]>,
}

/// An epoch has ended (after its validation and checkpoint).
#[derive(Debug, Clone)]
pub struct EpochEvent<'a> {
    /// The epoch's record (as in metrics.jsonl).
    pub record: &'a Value,
    /// The epoch's one-line summary (a table row).
    pub summary: &'a str,
}

/// Something that watches a training run. Every method has a default that ignores the event.
pub trait Observer {
    /// A line of information.
    fn info(&mut self, _line: &str) {}
    /// An epoch starts with `batches` iterations.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// An optimiser step was taken.
    fn iteration(&mut self, _e: &IterationEvent<'_>) -> Result<(), TrainError> {
        Ok(())
    }
    /// A validation finished.
    fn validation(&mut self, _e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        Ok(())
    }
    /// A checkpoint was written.
    fn checkpoint(&mut self, _path: &Path) {}
    /// An epoch ended.
    fn epoch_end(&mut self, _e: &EpochEvent<'_>) -> Result<(), TrainError> {
        Ok(())
    }
    /// The run ended.
    fn end(&mut self, _summary: &TrainSummary) {}
}

/// The console: a [`Reporter`] (progress bars, plain lines, or nothing) as an observer.
pub struct Console<'a>(pub &'a mut dyn Reporter);

impl Observer for Console<'_> {
    fn info(&mut self, line: &str) {
        self.0.info(line);
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.0.epoch_start(epoch, epochs, batches);
    }

    fn iteration(&mut self, e: &IterationEvent<'_>) -> Result<(), TrainError> {
        self.0.iteration(e.done, e.losses, e.total, e.images_per_s);
        Ok(())
    }

    fn epoch_end(&mut self, e: &EpochEvent<'_>) -> Result<(), TrainError> {
        self.0.epoch_end(e.summary);
        Ok(())
    }
}

/// The observers of a run, called in order (the epoch's end in reverse order).
pub struct Observers<'a>(pub Vec<&'a mut dyn Observer>);

impl Observers<'_> {
    pub fn info(&mut self, line: &str) {
        self.0.iter_mut().for_each(|o| o.info(line));
    }

    pub fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.0.iter_mut().for_each(|o| o.epoch_start(epoch, epochs, batches));
    }

    pub fn iteration(&mut self, e: &IterationEvent<'_>) -> Result<(), TrainError> {
        self.0.iter_mut().try_for_each(|o| o.iteration(e))
    }

    pub fn validation(&mut self, e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        self.0.iter_mut().try_for_each(|o| o.validation(e))
    }

    pub fn checkpoint(&mut self, path: &Path) {
        self.0.iter_mut().for_each(|o| o.checkpoint(path));
    }

    /// In reverse order: the run's files are written before the console prints the epoch's
    /// summary, so a printed summary means the epoch is on disk (as before the observers).
    pub fn epoch_end(&mut self, e: &EpochEvent<'_>) -> Result<(), TrainError> {
        self.0.iter_mut().rev().try_for_each(|o| o.epoch_end(e))
    }

    pub fn end(&mut self, summary: &TrainSummary) {
        self.0.iter_mut().for_each(|o| o.end(summary));
    }
}

impl Reporter for Observers<'_> {
    fn info(&mut self, line: &str) {
        Observers::info(self, line);
    }
}
