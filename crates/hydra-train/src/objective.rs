//! Seam 1 of the training loop: how the per-task losses of a batch become the gradient that
//! is applied.
//!
//! [`LossWeighting`] combines the task losses into one weighted total (fixed weights,
//! uncertainty weighting, DWA, RLW, GLS) and takes one backward pass. The gradient methods
//! (MGDA, PCGrad, CAGrad, ...: [`crate::mtl::GradientObjective`]) take one backward pass per
//! task and combine the tasks' gradients of the shared parameters; their state goes into the
//! checkpoint ([`ObjectiveState`]).

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use hydra_core::rng::SplitMix64;

use crate::loss::BatchLosses;
use crate::mtl::{diagnostics, Conflict};
use crate::train::TrainModule;
use crate::weighting::{LossHistory, Weighting};

/// The total loss of a batch is not finite (the step is not taken).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFiniteLoss;

/// Which step an objective is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    /// The (1-based) iteration.
    pub iteration: u64,
    /// Whether the iteration is logged: the objective then also measures the gradient
    /// conflict between tasks ([`Conflict`]).
    pub logged: bool,
}

/// What an objective gives for one batch.
pub struct StepGradient {
    /// The total loss, as reported (the weights the step applied times the task losses).
    pub total: f64,
    /// Each task's loss, task order.
    pub losses: Vec<f64>,
    /// The gradient of the module's parameters to apply.
    pub grads: GradientsParams,
    /// The tasks' gradient norms and cosines on the shared parameters, where measured.
    pub conflict: Option<Conflict>,
}

/// The state an objective carries from step to step (random generator, running values), for
/// the checkpoint. Values are kept as f64 bit patterns so that a resumed run continues with
/// exactly the numbers it stopped with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveState {
    /// The state of the objective's random generator, if it has one.
    pub rng: Option<u64>,
    /// Named vectors of f64 bit patterns.
    pub values: BTreeMap<String, Vec<u64>>,
    /// Named matrices too large for the checkpoint's JSON part (DB-MTL's gradient buffer,
    /// `T × P`): the checkpoint stores them as tensors of f64 bit patterns.
    #[serde(skip)]
    pub buffers: BTreeMap<String, Vec<Vec<f64>>>,
}

impl ObjectiveState {
    /// `name`'s values as f64.
    pub fn get(&self, name: &str) -> Option<Vec<f64>> {
        self.values.get(name).map(|v| v.iter().map(|&b| f64::from_bits(b)).collect())
    }

    /// Set `name` to `values`.
    pub fn set(&mut self, name: &str, values: &[f64]) {
        self.values.insert(name.to_string(), values.iter().map(|v| v.to_bits()).collect());
    }
}

/// How the per-task losses of a batch become the applied gradient.
pub trait Objective {
    /// An epoch starts; `history` holds the mean task losses of the epochs before it.
    fn epoch_start(&mut self, tasks: usize, history: &LossHistory);
    /// The task losses and the gradient of `module`'s parameters for one batch (`batch`
    /// computes its losses from `module.net`, once or once per task).
    fn gradients(&mut self, module: &TrainModule, batch: &BatchLosses<'_>, step: StepInfo) -> Result<StepGradient, NonFiniteLoss>;
    /// The weight each task's loss carries now, for the logs.
    fn task_weights(&self, module: &TrainModule) -> Vec<f64>;
    /// The state to checkpoint (none by default).
    fn state(&self) -> ObjectiveState {
        ObjectiveState::default()
    }
    /// Continue from a checkpointed [`Objective::state`]; a state this objective cannot use
    /// is an error naming what is wrong.
    fn restore(&mut self, _state: &ObjectiveState) -> Result<(), String> {
        Ok(())
    }
    /// This objective runs on one rank of `world` (a data-parallel run): what it computes
    /// from the whole batch (a combination of the tasks' gradients) it takes over every
    /// rank's part. Nothing to do for the loss weightings, whose gradient the ranks average.
    fn join(&mut self, _world: &crate::dist::World) {}
}

/// The scalar value of a `[1]` loss.
pub fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
}

/// A loss weighting: `total = combine(losses)`, one backward pass.
#[derive(Debug, Clone)]
pub struct LossWeighting {
    weighting: Weighting,
    /// The fixed/DWA weights of the current epoch.
    epoch_weights: Vec<f64>,
    /// RLW's draws (seeded, checkpointed).
    rng: SplitMix64,
    /// RLW's and GLS's weights at the last step, for the logs.
    step_weights: Option<Vec<f64>>,
}

impl LossWeighting {
    pub fn new(weighting: Weighting) -> Self {
        Self::seeded(weighting, 0)
    }

    /// With RLW's draws from `seed`.
    pub fn seeded(weighting: Weighting, seed: u64) -> Self {
        Self { weighting, epoch_weights: Vec::new(), rng: SplitMix64::stream(seed, 0x726c_77), step_weights: None }
    }

    /// The total loss and its gradient from task losses `[1]` computed on `module`.
    pub fn combine(&mut self, module: &TrainModule, losses: &[Tensor<1>], iteration: u64) -> Result<(f64, GradientsParams), NonFiniteLoss> {
        let weights = match self.weighting {
            Weighting::Rlw => {
                let z: Vec<f64> = losses.iter().map(|_| self.rng.normal()).collect();
                let w = crate::mtl::linalg::softmax(&z);
                self.step_weights = Some(w.clone());
                w
            }
            _ => self.epoch_weights.clone(),
        };
        let mut total = self.weighting.combine(losses, &weights, module.task_weights.as_ref());
        if crate::fault::nan_at(iteration) {
            total = total.mul_scalar(f32::NAN);
        }
        let value = scalar(&total);
        if !value.is_finite() {
            return Err(NonFiniteLoss);
        }
        if self.weighting == Weighting::Gls {
            // d total / d L_t = total / (T · L_t): the weight each task's loss carries.
            let t = losses.len() as f64;
            self.step_weights = Some(losses.iter().map(|l| value / (t * scalar(l).max(1e-12))).collect());
        }
        Ok((value, GradientsParams::from_grads(total.backward(), module)))
    }
}

impl Objective for LossWeighting {
    fn epoch_start(&mut self, tasks: usize, history: &LossHistory) {
        self.epoch_weights = self.weighting.epoch_weights(tasks, history);
    }

    fn gradients(&mut self, module: &TrainModule, batch: &BatchLosses<'_>, step: StepInfo) -> Result<StepGradient, NonFiniteLoss> {
        let losses = batch.all(&module.net);
        let values: Vec<f64> = losses.iter().map(scalar).collect();
        let (total, grads) = self.combine(module, &losses, step.iteration)?;
        // The conflict needs one more backward pass per task: only at logged iterations.
        let conflict = step.logged.then(|| diagnostics(module, batch)).flatten();
        Ok(StepGradient { total, losses: values, grads, conflict })
    }

    fn task_weights(&self, module: &TrainModule) -> Vec<f64> {
        match &self.step_weights {
            Some(w) => w.clone(),
            None => self.weighting.effective(&self.epoch_weights, module.task_weights.as_ref()),
        }
    }

    fn state(&self) -> ObjectiveState {
        match self.weighting {
            Weighting::Rlw => ObjectiveState { rng: Some(self.rng.state()), ..Default::default() },
            _ => ObjectiveState::default(),
        }
    }

    fn restore(&mut self, state: &ObjectiveState) -> Result<(), String> {
        if self.weighting == Weighting::Rlw {
            let Some(rng) = state.rng else { return Err("the checkpoint holds no state of RLW's random weights (was it trained with another loss.weighting?)".into()) };
            self.rng = SplitMix64::from_state(rng);
        }
        Ok(())
    }
}
