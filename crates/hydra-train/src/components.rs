//! From a [`Config`] to the training components: optimiser, schedule, task weighting, the
//! evaluation settings, the initial network, and the monitored metric.

use burn::module::{Flag, Module, ModuleMapper, Param};
use burn::prelude::*;
use hydra_model::weights::{self, LoadScope};
use hydra_model::{HydraNet, Task};

use crate::config::Config;
use crate::eval::EvalSpec;
use crate::loss::DepthLoss;
use crate::metrics::{DepthEval, EvalMetrics};
use crate::optim::OptimizerKind;
use crate::schedule::{Schedule, ScheduleKind};
use crate::train::TrainError;
use crate::mtl::{GradientMethod, GradientObjective, Groups, Normalisation, Rescale};
use crate::objective::{LossWeighting, Objective};
use crate::weighting::{fixed_weight, Weighting};

struct FreezeBn;

impl ModuleMapper for FreezeBn {
    fn map_flag(&mut self, f: Param<Flag>) -> Param<Flag> {
        f.with_value(false)
    }
}

/// The monitored value in "higher is better" orientation.
pub fn monitor_value(monitor: &str, m: &EvalMetrics) -> Option<f64> {
    match monitor {
        "miou" => m.segmentation.as_ref().map(|s| s.miou),
        "rmse" => m.depth.as_ref().map(|d| -d.rmse),
        "loss" => m.loss.map(|l| -l),
        _ => match (&m.segmentation, &m.depth) {
            (Some(s), Some(d)) => Some((s.miou + d.delta1) / 2.0),
            (Some(s), None) => Some(s.miou),
            (None, Some(d)) => Some(d.delta1),
            _ => m.loss.map(|l| -l),
        },
    }
}

pub fn optimizer_kind(c: &Config) -> OptimizerKind {
    let o = &c.optimizer;
    match o.kind.as_str() {
        "adam" => OptimizerKind::Adam { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps },
        "adamw" => OptimizerKind::AdamW { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps },
        _ => OptimizerKind::Sgd { momentum: o.momentum, nesterov: o.nesterov },
    }
}

pub fn schedule(c: &Config, iters_per_epoch: u64) -> Schedule {
    let s = &c.schedule;
    let kind = match s.kind.as_str() {
        "multistep" => ScheduleKind::MultiStep { milestones: s.milestones.iter().map(|&m| m as u64 * iters_per_epoch).collect(), gamma: s.gamma },
        "cosine" => ScheduleKind::Cosine { min_factor: s.min_lr_factor },
        "poly" => ScheduleKind::Poly { power: s.power, min_factor: s.min_lr_factor },
        _ => ScheduleKind::Constant,
    };
    Schedule { kind, total: c.training.epochs as u64 * iters_per_epoch, warmup: s.warmup_iters as u64, warmup_factor: s.warmup_factor }
}

pub fn weighting(c: &Config, tasks: &[Task]) -> Weighting {
    match c.loss.weighting.as_str() {
        "uncertainty" => Weighting::Uncertainty,
        "dwa" => Weighting::Dwa { temperature: c.loss.dwa_temperature },
        "rlw" => Weighting::Rlw,
        "gls" => Weighting::Gls,
        _ => Weighting::Fixed(tasks.iter().map(|&t| fixed_weight(t, c.loss.segm_weight, c.loss.depth_weight, c.loss.normal_weight)).collect()),
    }
}

/// The gradient method `loss.weighting` names, if it names one (else a loss weighting).
pub fn gradient_method(c: &Config) -> Option<GradientMethod> {
    let l = &c.loss;
    Some(match l.weighting.as_str() {
        "ew" => GradientMethod::Ew,
        "mgda" => GradientMethod::Mgda {
            normalisation: match l.mgda_normalisation.as_str() {
                "l2" => Normalisation::L2,
                "loss" => Normalisation::Loss,
                "loss+" => Normalisation::LossL2,
                _ => Normalisation::None,
            },
        },
        "pcgrad" => GradientMethod::PcGrad,
        "imtl" => GradientMethod::Imtl,
        "aligned_mtl" => GradientMethod::AlignedMtl,
        "cagrad" => GradientMethod::CaGrad {
            c: l.cagrad_c,
            rescale: match l.cagrad_rescale {
                0 => Rescale::None,
                2 => Rescale::Linear,
                _ => Rescale::Quadratic,
            },
        },
        "gradvac" => GradientMethod::GradVac {
            beta: l.gradvac_beta,
            groups: match l.gradvac_groups.as_str() {
                "all_layer" => Groups::AllLayer,
                "all_matrix" => Groups::AllMatrix,
                _ => Groups::WholeModel,
            },
        },
        "nash_mtl" => GradientMethod::NashMtl { update_every: l.nash_update_every as u64, iterations: l.nash_iterations, max_norm: l.nash_max_norm },
        "db_mtl" => GradientMethod::DbMtl { beta: l.db_beta, beta_sigma: l.db_beta_sigma },
        "gradnorm" => GradientMethod::GradNorm { alpha: l.gradnorm_alpha },
        "graddrop" => GradientMethod::GradDrop { leak: l.graddrop_leak },
        _ => return None,
    })
}

/// How the task losses become the applied gradient: a gradient method or a loss weighting.
pub fn objective(c: &Config, tasks: &[Task]) -> Box<dyn Objective> {
    match gradient_method(c) {
        Some(m) => Box::new(GradientObjective::new(m, c.loss.rep_grad, tasks.len(), c.training.seed)),
        None => Box::new(LossWeighting::seeded(weighting(c, tasks), c.training.seed)),
    }
}

pub fn depth_kind(c: &Config) -> DepthLoss {
    if c.loss.depth == "berhu" { DepthLoss::BerHu } else { DepthLoss::L1 }
}

/// The evaluation settings of a config.
pub fn eval_spec(c: &Config) -> EvalSpec {
    EvalSpec {
        num_classes: c.model.num_classes,
        ignore: c.data.ignore_index as i64,
        depth: DepthEval { max_depth: c.eval.max_depth, eigen_crop: c.eval.eigen_crop },
        depth_loss: depth_kind(c),
    }
}

/// Build the network of `config` on `device` with its configured initial weights.
pub fn initial_network(config: &Config, device: &Device) -> Result<HydraNet, TrainError> {
    let mut net = config.network().init(device);
    if let Some(p) = &config.model.init_weights {
        let file = weights::read(p)?;
        net = file.apply(net, LoadScope::Full)?.0;
    }
    if let Some(p) = &config.model.encoder_weights {
        let file = weights::read(p)?;
        net = file.apply(net, LoadScope::EncoderOnly)?.0;
    }
    if config.model.freeze_bn {
        net = net.map(&mut FreezeBn);
    }
    Ok(net)
}


