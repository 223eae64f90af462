//! The gradient methods in the training loop: per-task gradients of the shared part of
//! HydraNet, combined by a [`GradientMethod`], written back as the gradient to apply.
//!
//! HydraNet's encoder and decoder are shared by every task; only the heads are task-specific.
//! The shared parameters are therefore the encoder's and the decoder's, and the shared
//! representation is the decoder's output, the input of every head (LibMTL's "shared
//! encoder" and its output `rep`).
//!
//! - Parameter gradients (default): one forward and backward pass per task, each of one task's
//!   loss; the tasks' gradients of the shared parameters are combined. BatchNorm's running
//!   statistics are those of one forward pass: the statistics after the first pass are put
//!   back after the last (every pass normalises with the same batch statistics).
//! - Representation gradients (`loss.rep_grad`, LibMTL's `rep_grad`): the shared part runs
//!   forward once; each head's loss is differentiated with respect to a detached copy of the
//!   representation. As in LibMTL, the method weighs the tasks from these gradients summed
//!   over the batch, and `Σ_t w_t ∂L_t/∂rep` flows back through the shared part in one
//!   backward pass (so MGDA's normalisation sets the weights but is not applied to the
//!   gradient, LibMTL's MGDA-UB). Only the methods that give task weights run this way.
//!
//! Either way each head receives the gradient of its own (unweighted) loss, as in LibMTL,
//! except where a method says otherwise (`GradientMethod::head_weights`: DB-MTL, Nash-MTL).
//! Some steps take one weighted pass instead: GradNorm's first epoch (`Σ L_t`) and Nash-MTL
//! between its updates (`Σ α_t L_t`, the shared gradient clipped).

use burn::optim::GradientsParams;
use burn::prelude::*;
use hydra_core::rng::SplitMix64;

use super::grads::{flatten, layout, scale, transfer, unflatten, values, Conflict};
use super::{graddrop, gradnorm, Combined, Draw, GradientMethod, Groups, MethodState};
use crate::loss::BatchLosses;
use crate::objective::{scalar, NonFiniteLoss, Objective, ObjectiveState, StepGradient, StepInfo};
use crate::train::TrainModule;
use crate::weighting::LossHistory;

/// A [`GradientMethod`] as the training loop's objective.
pub struct GradientObjective {
    method: GradientMethod,
    /// Combine representation gradients instead of parameter gradients.
    representation: bool,
    /// Draws PCGrad's and GradVac's task orders and GradDrop's uniforms.
    rng: SplitMix64,
    /// The weights of the last step, for the logs.
    weights: Vec<f64>,
    /// The stateful methods' state (GradVac's targets, Nash-MTL's weights, DB-MTL's buffer).
    state: MethodState,
    /// GradNorm: the first epoch's mean task losses, once it has ended.
    initial: Option<Vec<f64>>,
    /// The ranks whose gradients are combined (one process: alone).
    world: crate::dist::World,
}

impl GradientObjective {
    /// `method` for `tasks` tasks, its random numbers drawn from `seed`.
    pub fn new(method: GradientMethod, representation: bool, tasks: usize, seed: u64) -> Self {
        Self { method, representation, rng: SplitMix64::stream(seed, 0x6d74_6c), weights: vec![1.0; tasks], state: MethodState::default(), initial: None, world: crate::dist::World::solo() }
    }

    /// GradVac's group sizes over the shared layout (encoder then decoder) of `template`.
    fn groups(&self, module: &TrainModule, template: &GradientsParams) -> Vec<usize> {
        let GradientMethod::GradVac { groups, .. } = self.method else { return Vec::new() };
        let mut layout = layout(&module.net.encoder, template);
        layout.extend(layout_of_decoder(module, template));
        match groups {
            Groups::WholeModel => vec![layout.iter().map(|(_, n)| n).sum()],
            Groups::AllMatrix => layout.iter().map(|(_, n)| *n).collect(),
            Groups::AllLayer => {
                let mut sizes: Vec<(String, usize)> = Vec::new();
                for (path, n) in layout {
                    match sizes.last_mut() {
                        Some((p, m)) if *p == path => *m += n,
                        _ => sizes.push((path, n)),
                    }
                }
                sizes.into_iter().map(|(_, n)| n).collect()
            }
        }
    }
}

fn layout_of_decoder(module: &TrainModule, template: &GradientsParams) -> Vec<(String, usize)> {
    layout(&module.net.decoder, template).into_iter().map(|(p, n)| (format!("decoder.{p}"), n)).collect()
}

/// One forward and backward pass of `Σ_t w_t L_t` (every parameter, heads included).
fn weighted_pass(module: &TrainModule, batch: &BatchLosses<'_>, weights: &[f64]) -> Result<(Vec<f64>, GradientsParams), NonFiniteLoss> {
    let losses = batch.all(&module.net);
    let values: Vec<f64> = losses.iter().map(scalar).collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(NonFiniteLoss);
    }
    let total = losses.into_iter().zip(weights).map(|(l, &w)| l.mul_scalar(w as f32)).reduce(|a, b| a + b).expect("at least one task");
    Ok((values, GradientsParams::from_grads(total.backward(), module)))
}

/// Clip the shared parameters' gradient in `grads` to `max_norm` (Nash-MTL).
fn clip_shared(module: &TrainModule, grads: &mut GradientsParams, max_norm: f64) {
    let coef = crate::optim::Optimizer::clip_scale(super::linalg::norm(&shared_flat(module, grads)), max_norm);
    if coef < 1.0 {
        scale(&module.net.encoder, grads, coef);
        scale(&module.net.decoder, grads, coef);
    }
}

/// The tasks' gradients of one batch: of the shared parameters (or representation), and of
/// each head by its own loss.
struct TaskGradients {
    losses: Vec<f64>,
    /// `T` rows: the shared parameters' gradients (encoder then decoder), or the
    /// representation's.
    shared: Vec<Vec<f64>>,
    /// Each head's gradient of its own loss.
    heads: GradientsParams,
    /// A set of shared-parameter gradients (parameter mode): the shapes and devices to write
    /// the combined gradient back with.
    template: Option<GradientsParams>,
    /// The representation `[B, C, h, w]` with its graph (representation mode).
    features: Option<Tensor<4>>,
    /// Representation mode: each task's gradient of the representation, `[B·C·h·w]` (the
    /// rows of `shared` are these summed over the batch).
    raw: Vec<Vec<f64>>,
}

/// The shared parameters' gradients in `grads`, encoder then decoder.
fn shared_flat(module: &TrainModule, grads: &GradientsParams) -> Vec<f64> {
    let mut v = flatten(&module.net.encoder, grads);
    v.extend(flatten(&module.net.decoder, grads));
    v
}

/// One forward and backward pass per task of its own loss (see the module's doc). The
/// running statistics are left as after one forward pass.
fn parameter_gradients(module: &TrainModule, batch: &BatchLosses<'_>) -> Result<TaskGradients, NonFiniteLoss> {
    let (net, tasks) = (&module.net, batch.tasks);
    let mut out = TaskGradients { losses: Vec::new(), shared: Vec::new(), heads: GradientsParams::new(), template: None, features: None, raw: Vec::new() };
    let mut statistics = None;
    for t in 0..tasks.len() {
        let loss = batch.head_loss(net, batch.representation(net), t);
        if t == 0 {
            statistics = Some(net.encoder.running_statistics());
        }
        let value = scalar(&loss);
        if !value.is_finite() {
            net.encoder.restore_running_statistics(statistics.take().expect("taken at the first pass"));
            return Err(NonFiniteLoss);
        }
        out.losses.push(value);
        let mut grads = GradientsParams::from_grads(loss.backward(), module);
        out.shared.push(shared_flat(module, &grads));
        transfer(net.head(tasks[t]).expect("configured head"), &mut grads, &mut out.heads);
        out.template = Some(grads);
    }
    net.encoder.restore_running_statistics(statistics.expect("at least one task"));
    Ok(out)
}

/// The shared part once, then one backward pass per head from a detached copy of the
/// representation.
fn representation_gradients(module: &TrainModule, batch: &BatchLosses<'_>) -> Result<TaskGradients, NonFiniteLoss> {
    let (net, tasks) = (&module.net, batch.tasks);
    let features = batch.representation(net);
    let mut out = TaskGradients { losses: Vec::new(), shared: Vec::new(), heads: GradientsParams::new(), template: None, features: None, raw: Vec::new() };
    for t in 0..tasks.len() {
        let detached = features.clone().detach().require_grad();
        let loss = batch.head_loss(net, detached.clone(), t);
        let value = scalar(&loss);
        if !value.is_finite() {
            return Err(NonFiniteLoss);
        }
        out.losses.push(value);
        let backward = loss.backward();
        let g = detached.grad(&backward).expect("the head reads the representation");
        let raw = values(g);
        // LibMTL weighs with the representation gradient summed over the batch, [C·h·w],
        // and applies the weights to the unsummed one.
        let per_sample = raw.len() / features.dims()[0];
        let mut summed = vec![0.0; per_sample];
        for sample in raw.chunks(per_sample) {
            summed.iter_mut().zip(sample).for_each(|(s, v)| *s += v);
        }
        out.shared.push(summed);
        out.raw.push(raw);
        let mut grads = GradientsParams::from_grads(backward, module);
        transfer(net.head(tasks[t]).expect("configured head"), &mut grads, &mut out.heads);
    }
    out.features = Some(features);
    Ok(out)
}

/// The tasks' gradient norms and cosines on the shared parameters for `batch`, by one pass
/// per task (running statistics left as they were); `None` for one task.
pub fn diagnostics(module: &TrainModule, batch: &BatchLosses<'_>) -> Option<Conflict> {
    if batch.tasks.len() < 2 {
        return None;
    }
    let statistics = module.net.encoder.running_statistics();
    let g = parameter_gradients(module, batch);
    module.net.encoder.restore_running_statistics(statistics);
    g.ok().map(|g| Conflict::of(&g.shared))
}

impl Objective for GradientObjective {
    fn epoch_start(&mut self, _tasks: usize, history: &LossHistory) {
        self.initial = history.epochs.first().cloned();
    }

    fn gradients(&mut self, module: &TrainModule, batch: &BatchLosses<'_>, step: StepInfo) -> Result<StepGradient, NonFiniteLoss> {
        let t = batch.tasks.len();
        // The steps that take one weighted pass: GradNorm's first epoch, Nash-MTL between
        // updates.
        let one_pass = match &self.method {
            GradientMethod::GradNorm { .. } if self.initial.is_none() => Some(vec![1.0; t]),
            GradientMethod::NashMtl { update_every, .. } if self.state.step % update_every != 0 => {
                self.state.step += 1;
                Some(self.state.alpha.iter().map(|&a| a as f32 as f64).collect())
            }
            _ => None,
        };
        if let Some(weights) = one_pass {
            let (losses, mut grads) = weighted_pass(module, batch, &weights)?;
            if crate::fault::nan_at(step.iteration) {
                return Err(NonFiniteLoss);
            }
            if let GradientMethod::NashMtl { max_norm, .. } = self.method {
                clip_shared(module, &mut grads, max_norm);
            }
            let conflict = if step.logged { diagnostics(module, batch) } else { None };
            let total = weights.iter().zip(&losses).map(|(w, l)| w * l).sum();
            self.weights = weights;
            return Ok(StepGradient { total, losses, grads, conflict });
        }
        let mut g = if self.representation { representation_gradients(module, batch)? } else { parameter_gradients(module, batch)? };
        if crate::fault::nan_at(step.iteration) {
            return Err(NonFiniteLoss);
        }
        // Data parallelism: the tasks' shared gradients (or representation gradients summed
        // over the batch) and losses of the whole batch, the mean over the ranks of their
        // scaled parts, so that every rank combines what one process would.
        if self.world.size() > 1 {
            for row in g.shared.iter_mut() {
                self.world.mean_f64(row);
            }
            self.world.mean_f64(&mut g.losses);
        }
        if self.state.groups.is_empty() {
            if let Some(template) = &g.template {
                self.state.groups = self.groups(module, template);
            }
        }
        let mut draw = Draw { rng: &mut self.rng };
        let mut scale_grad = None;
        let mut upstream = None;
        let combined = match &self.method {
            GradientMethod::GradNorm { alpha } => {
                let scales = values(module.task_weights.as_ref().expect("GradNorm's loss scales").log_vars.val());
                let initial = self.initial.as_ref().expect("after the first epoch");
                let (combined, grad) = gradnorm::combine(&g.shared, &g.losses, initial, &scales, *alpha);
                scale_grad = Some(grad);
                combined
            }
            GradientMethod::GradDrop { leak } => {
                let features = g.features.as_ref().expect("GradDrop runs on the representation");
                let rep = values(features.clone());
                let u: Vec<f64> = (0..g.shared[0].len()).map(|_| draw.rng.uniform()).collect();
                upstream = Some(graddrop::upstream(&rep, &g.raw, &u, *leak));
                Combined { gradient: Vec::new(), weights: vec![1.0; t] }
            }
            method => {
                // PCGrad orders all tasks for each task, GradVac the others.
                let n = if matches!(method, GradientMethod::GradVac { .. }) { t - 1 } else { t };
                method.combine_step(&g.shared, &g.losses, &mut self.state, &mut |_| draw.permutation(n))
            }
        };
        let conflict = match (step.logged, self.representation) {
            (false, _) => None,
            (true, false) => Some(Conflict::of(&g.shared)),
            (true, true) => diagnostics(module, batch),
        };
        let mut grads = std::mem::replace(&mut g.heads, GradientsParams::new());
        if let Some(factors) = self.method.head_weights(&g.losses, &combined.weights) {
            for (task, f) in batch.tasks.iter().zip(factors) {
                scale(module.net.head(*task).expect("configured head"), &mut grads, f);
            }
        }
        match (g.template.take(), g.features.take()) {
            (Some(template), _) => {
                let n = unflatten(&module.net.encoder, &template, &combined.gradient, &mut grads);
                let m = unflatten(&module.net.decoder, &template, &combined.gradient[n..], &mut grads);
                assert_eq!(n + m, combined.gradient.len(), "the combined gradient covers the shared parameters");
            }
            (None, Some(features)) => {
                let shape = features.shape();
                let values = upstream.unwrap_or_else(|| super::linalg::combination(&combined.weights, &g.raw));
                let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                let upstream = Tensor::<4>::from_data(TensorData::new(values, shape), &features.device());
                let mut shared = GradientsParams::from_grads((features * upstream).sum().backward(), module);
                transfer(&module.net.encoder, &mut shared, &mut grads);
                transfer(&module.net.decoder, &mut shared, &mut grads);
            }
            (None, None) => unreachable!("one of the two modes"),
        }
        if let Some(sg) = scale_grad {
            let param = &module.task_weights.as_ref().expect("GradNorm's loss scales").log_vars;
            let values: Vec<f32> = sg.iter().map(|&v| v as f32).collect();
            grads.register::<1>(param.id, Tensor::from_data(TensorData::new(values, [t]), &param.val().device()));
        }
        let total: f64 = combined.weights.iter().zip(&g.losses).map(|(w, l)| w * l).sum();
        self.weights = combined.weights;
        if !total.is_finite() {
            return Err(NonFiniteLoss);
        }
        Ok(StepGradient { total, losses: g.losses, grads, conflict })
    }

    fn join(&mut self, world: &crate::dist::World) {
        self.world = world.clone();
    }

    fn task_weights(&self, _module: &TrainModule) -> Vec<f64> {
        self.weights.clone()
    }

    fn state(&self) -> ObjectiveState {
        let mut s = ObjectiveState { rng: Some(self.rng.state()), ..Default::default() };
        s.set("weights", &self.weights);
        let m = &self.state;
        if m.step > 0 {
            s.set("step", &[m.step as f64]);
        }
        if !m.rho.is_empty() {
            s.set("gradvac_rho", &m.rho);
        }
        if !m.alpha.is_empty() {
            s.set("nash_alpha", &m.alpha);
        }
        if !m.buffer.is_empty() {
            s.buffers.insert("db_mtl_buffer".into(), m.buffer.clone());
        }
        s
    }

    fn restore(&mut self, s: &ObjectiveState) -> Result<(), String> {
        let Some(rng) = s.rng else { return Err("the checkpoint holds no state of the gradient method (was it trained with another loss.weighting?)".into()) };
        self.rng = SplitMix64::from_state(rng);
        let t = self.weights.len();
        if let Some(w) = s.get("weights") {
            if w.len() != t {
                return Err(format!("the gradient method's state has {} task weights, the run has {t} tasks", w.len()));
            }
            self.weights = w;
        }
        let mut m = MethodState { step: s.get("step").map_or(0, |v| v[0] as u64), ..Default::default() };
        m.rho = s.get("gradvac_rho").unwrap_or_default();
        m.alpha = s.get("nash_alpha").unwrap_or_default();
        m.buffer = s.buffers.get("db_mtl_buffer").cloned().unwrap_or_default();
        if m.buffer.iter().any(|b| b.len() != m.buffer[0].len()) || (!m.buffer.is_empty() && m.buffer.len() != t) || (!m.alpha.is_empty() && m.alpha.len() != t) || m.rho.len() % (t * t).max(1) != 0 {
            return Err(format!("the gradient method's state does not fit a run of {t} tasks"));
        }
        self.state = m;
        Ok(())
    }
}
