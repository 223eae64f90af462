//! An epoch's accounting: running sums of its losses, the loss history at its end,
//! validation and early stopping.

use std::time::Instant;

use burn::module::Module;
use hydra_data::loader::Loader;

use crate::components::monitor_value;
use crate::eval::EvalState;
use crate::metrics::EvalMetrics;
use crate::observer::{Observers, ValidationEvent};
use crate::train::step::StepOutcome;
use crate::train::{TrainError, Trainer};

/// Running sums of an epoch's training losses.
#[derive(Debug, Clone)]
pub struct EpochTotals {
    pub sums: Vec<f64>,
    pub total: f64,
    pub count: usize,
    pub start: Instant,
}

impl EpochTotals {
    pub fn new(tasks: usize) -> Self {
        Self { sums: vec![0.0; tasks], total: 0.0, count: 0, start: Instant::now() }
    }

    pub fn add(&mut self, s: &StepOutcome) {
        self.count += 1;
        self.total += s.total;
        for (sum, v) in self.sums.iter_mut().zip(&s.losses) {
            *sum += v;
        }
    }

    /// Mean total loss and mean loss of each task.
    pub fn mean_total(&self) -> f64 {
        self.total / self.count.max(1) as f64
    }

    pub fn means(&self) -> Vec<f64> {
        self.sums.iter().map(|s| s / self.count.max(1) as f64).collect()
    }
}

/// A validation's result.
#[derive(Debug, Clone)]
pub struct Validation {
    pub metrics: EvalMetrics,
    /// The monitored value improved: these are the new best weights.
    pub improved: bool,
    /// The prediction panel of the first `output.samples` validation images (PNG).
    pub panel: Option<Vec<u8>>,
}

impl Trainer {
    /// Start the next epoch (its 1-based number): the objective sees the loss history.
    pub fn begin_epoch(&mut self) -> usize {
        self.objective.epoch_start(self.tasks.len(), &self.history);
        self.epochs_done + 1
    }

    /// The epoch's steps are done: count it and add its mean losses to the history.
    pub fn finish_epoch(&mut self, totals: &EpochTotals) {
        self.epochs_done += 1;
        self.history.epochs.push(totals.means());
    }

    /// Whether the epoch just finished is validated (`training.val_interval`, and the last).
    pub fn validation_due(&self) -> bool {
        let t = &self.config.training;
        t.val_interval > 0 && (self.epochs_done % t.val_interval == 0 || self.epochs_done == t.epochs)
    }

    /// Validate on `val` and update early stopping from the monitored value.
    pub fn validate(&mut self, val: &Loader, obs: &mut Observers<'_>) -> Result<Validation, TrainError> {
        let inference = self.module().net.valid();
        let inner = self.device.clone().inner();
        // With several ranks each validates its block of the split and the accumulators are
        // combined (bit-identical to one process); rank 0 keeps the panel's samples.
        let (rank, ranks, total) = (self.world.rank(), self.world.size(), val.batches_per_epoch());
        let block = total * rank / ranks..total * (rank + 1) / ranks;
        let keep = if self.world.is_root() { self.config.output.samples } else { 0 };
        let mut st = EvalState::with_samples(&self.spec, keep);
        for b in val.epoch_range(0, block.clone()) {
            st.add(&inference, &inner, &b?, &self.spec);
        }
        if ranks > 1 {
            st = st.combine_shards(block.start, total, |v| self.world.sum_f64(v));
        }
        let metrics = st.metrics(&self.tasks);
        let title = format!("epoch {}: the first {} validation images", self.epochs_done, st.samples().len());
        let panel = crate::panels::render(st.samples(), &self.palette, &title).map(|p| crate::panels::encode(&p, &title));
        let es_config = &self.config.early_stopping;
        let mut improved = false;
        if let Some(value) = monitor_value(&es_config.monitor, &metrics) {
            improved = self.early_stopping.observe(value, es_config.min_delta, self.epochs_done);
        } else {
            obs.info(&format!(
                "warning: validation gives no value for early_stopping.monitor = \"{}\" (no valid pixels); best weights and early stopping cannot follow it",
                es_config.monitor
            ));
        }
        obs.validation(&ValidationEvent { epoch: self.epochs_done, iteration: self.iteration, metrics: &metrics, improved, panel: panel.as_deref() })?;
        Ok(Validation { metrics, improved, panel })
    }

    /// Whether early stopping ends the run now.
    pub fn should_stop_early(&self) -> bool {
        let es = &self.config.early_stopping;
        es.enabled && self.early_stopping.exhausted(es.patience)
    }
}
