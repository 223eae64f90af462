//! One training step on a batch: task losses, the applied gradient (through the objective
//! and gradient-sync seams), clipping, the optimiser update.

use std::time::Instant;

use burn::optim::GradientsParams;
use hydra_data::batch::HostBatch;

use crate::loss::BatchLosses;
use crate::mtl::Conflict;
use crate::objective::{StepGradient, StepInfo};
use crate::optim::{grad_norm, Hyper, Optimizer};
use crate::train::{TrainError, Trainer};

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// Each task's loss (task order), and their weighted total.
    pub losses: Vec<f64>,
    pub total: f64,
    /// Images in the batch, and the step's speed.
    pub images: usize,
    pub images_per_s: f64,
    /// The schedule's factor on the learning rates of this step.
    pub lr_factor: f64,
    /// The tasks' gradient norms and cosines on the shared parameters (logged iterations).
    pub conflict: Option<Conflict>,
}

impl Trainer {
    /// Train on one batch of `epoch`: forward, losses, gradient, optimiser step. A non-finite
    /// loss or gradient stops the run before anything is applied.
    pub fn step(&mut self, host: HostBatch, epoch: usize) -> Result<StepOutcome, TrainError> {
        let start = Instant::now();
        let factor = self.sched.factor(self.iteration);
        if let Some(check) = self.reduction_check.as_mut() {
            check.check(&self.module.as_ref().expect("module").net.encoder, &self.device, [host.len, host.size[0], host.size[1]])?;
        }
        let replica_scale = self.replica_scale(&host);
        let batch = BatchLosses { batch: host.to_device(&self.device), tasks: &self.tasks, ignore: self.ignore, depth: self.depth, replica_scale };
        let module = self.module.take().expect("module present");
        let non_finite = |what: &str, t: &Self| TrainError::NonFinite { what: what.into(), epoch, iteration: t.iteration + 1, last: t.last_checkpoint.clone() };
        let logged = (self.iteration + 1) % self.config.training.log_interval as u64 == 0 && self.measure_conflict();
        let gradients = self.objective.gradients(&module, &batch, StepInfo { iteration: self.iteration + 1, logged });
        drop(batch);
        // With several ranks, the whole batch's losses (every rank then agrees on finiteness).
        let gradients = gradients.map(|mut g| {
            self.reduce_losses(&mut g.losses, &mut g.total);
            g
        });
        let StepGradient { total, losses: values, grads, conflict } = match gradients {
            Ok(g) if g.losses.iter().all(|v| v.is_finite()) && g.total.is_finite() => g,
            _ => {
                self.module = Some(module);
                return Err(non_finite("loss", self));
            }
        };
        let grads = self.sync.sync(&module, grads);
        let Some(scale) = self.clip_scale(&module, &grads) else {
            return Err(non_finite("gradient", self));
        };
        let o = &self.config.optimizer;
        let hyper = |path: &str| {
            if path.starts_with("net.encoder") {
                Hyper { lr: o.encoder_lr * factor, weight_decay: o.encoder_weight_decay }
            } else if path.starts_with("task_weights") {
                Hyper { lr: o.decoder_lr * factor, weight_decay: 0.0 }
            } else {
                Hyper { lr: o.decoder_lr * factor, weight_decay: o.decoder_weight_decay }
            }
        };
        self.module = Some(self.optim.step(module, grads, hyper, scale));
        self.iteration += 1;
        let images_per_s = host.len as f64 / start.elapsed().as_secs_f64().max(1e-9);
        Ok(StepOutcome { losses: values, total, images: host.len, images_per_s, lr_factor: factor, conflict })
    }

    /// Whether logged iterations measure the gradient conflict (`training.log_conflict`):
    /// `auto` where the objective has the tasks' parameter gradients anyway.
    fn measure_conflict(&self) -> bool {
        match self.config.training.log_conflict.as_str() {
            "always" => true,
            "never" => false,
            _ => crate::components::gradient_method(&self.config).is_some() && !self.config.loss.rep_grad,
        }
    }

    /// The factor `optimizer.grad_clip_norm` scales the gradient by (1 when off); `None` when
    /// the gradient's norm is not finite, whether clipping is on or not.
    fn clip_scale(&self, module: &crate::train::TrainModule, grads: &GradientsParams) -> Option<f64> {
        let norm = grad_norm(module, grads);
        norm.is_finite().then(|| Optimizer::clip_scale(norm, self.config.optimizer.grad_clip_norm))
    }
}
