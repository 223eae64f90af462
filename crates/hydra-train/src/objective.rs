//! Seam 1 of the training loop: how the per-task losses of a batch become the gradient that
//! is applied.
//!
//! Today's implementation, [`LossWeighting`], combines the task losses into one weighted
//! total (fixed weights, uncertainty weighting, DWA) and takes one backward pass. Gradient
//! methods that need per-task gradients of the shared parameters (GradNorm, MGDA, PCGrad,
//! CAGrad, ...) implement [`Objective`] with one backward pass per task and return the
//! combined gradient; their state goes where the loss weighting's goes (the checkpoint).

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::train::TrainModule;
use crate::weighting::{LossHistory, Weighting};

/// The total loss of a batch is not finite (the step is not taken).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFiniteLoss;

/// How the per-task losses of a batch become the applied gradient.
pub trait Objective {
    /// An epoch starts; `history` holds the mean task losses of the epochs before it.
    fn epoch_start(&mut self, tasks: usize, history: &LossHistory);
    /// The total loss (as reported) and the gradient of `module`'s parameters, from the task
    /// losses `[1]` of one batch at (1-based) `iteration`.
    fn gradients(&mut self, module: &TrainModule, losses: &[Tensor<1>], iteration: u64) -> Result<(f64, GradientsParams), NonFiniteLoss>;
    /// The weight each task's loss carries now, for the logs.
    fn task_weights(&self, module: &TrainModule) -> Vec<f64>;
}

/// A loss weighting: `total = combine(losses)`, one backward pass.
#[derive(Debug, Clone)]
pub struct LossWeighting {
    weighting: Weighting,
    /// The fixed/DWA weights of the current epoch.
    epoch_weights: Vec<f64>,
}

impl LossWeighting {
    pub fn new(weighting: Weighting) -> Self {
        Self { weighting, epoch_weights: Vec::new() }
    }
}

impl Objective for LossWeighting {
    fn epoch_start(&mut self, tasks: usize, history: &LossHistory) {
        self.epoch_weights = self.weighting.epoch_weights(tasks, history);
    }

    fn gradients(&mut self, module: &TrainModule, losses: &[Tensor<1>], iteration: u64) -> Result<(f64, GradientsParams), NonFiniteLoss> {
        let mut total = self.weighting.combine(losses, &self.epoch_weights, module.task_weights.as_ref());
        if crate::fault::nan_at(iteration) {
            total = total.mul_scalar(f32::NAN);
        }
        let value = total.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(NonFiniteLoss);
        }
        Ok((value, GradientsParams::from_grads(total.backward(), module)))
    }

    fn task_weights(&self, module: &TrainModule) -> Vec<f64> {
        self.weighting.effective(&self.epoch_weights, module.task_weights.as_ref())
    }
}
