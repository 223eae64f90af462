//! Task weighting: fixed weights, uncertainty weighting (Kendall et al. 2018), dynamic
//! weight average (Liu et al. 2019), random loss weighting and the geometric loss strategy.

use burn::module::{Module, Param};
use burn::prelude::*;
use hydra_model::Task;
use serde::{Deserialize, Serialize};

/// Learned log-variances `s_t` of uncertainty weighting, one per task.
#[derive(Module, Debug)]
pub struct UncertaintyWeights {
    /// `s_t = log σ_t²`, `[T]`, initialised to 0.
    pub log_vars: Param<Tensor<1>>,
}

impl UncertaintyWeights {
    /// `tasks` log-variances at 0 on `device`.
    pub fn new(tasks: usize, device: &Device) -> Self {
        Self { log_vars: Param::from_tensor(Tensor::zeros([tasks], device)) }
    }
}

/// How task losses are combined.
#[derive(Debug, Clone, PartialEq)]
pub enum Weighting {
    /// `Σ w_t L_t`.
    Fixed(Vec<f64>),
    /// `Σ_t ½ exp(−s_t) L_t + ½ s_t` with learned `s_t` (the form used by MTAN and LibMTL).
    Uncertainty,
    /// `w_t = T · exp(r_t / τ) / Σ_i exp(r_i / τ)`, `r_t = L̄_t(e−1) / L̄_t(e−2)` from the mean
    /// losses of the two previous epochs; `w_t = 1` for the first two epochs.
    Dwa { temperature: f64 },
    /// Random loss weighting (Lin et al. 2022, LibMTL's RLW): `w = softmax(z)`, `z ~ N(0, I)`
    /// drawn every step.
    Rlw,
    /// Geometric loss strategy (Chennupati et al. 2019, LibMTL's GLS): `(Π_t L_t)^{1/T}`.
    Gls,
}

/// Mean task losses of completed epochs (DWA's input); part of the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossHistory {
    /// Per completed epoch, the mean training loss of each task (in task order).
    pub epochs: Vec<Vec<f64>>,
}

impl Weighting {
    /// The weights applied in the next epoch (fixed and DWA; uncertainty weights are read
    /// from the learned parameters).
    pub fn epoch_weights(&self, tasks: usize, history: &LossHistory) -> Vec<f64> {
        match self {
            Weighting::Fixed(w) => w.clone(),
            Weighting::Uncertainty | Weighting::Rlw | Weighting::Gls => vec![1.0; tasks],
            Weighting::Dwa { temperature } => {
                let n = history.epochs.len();
                if n < 2 {
                    return vec![1.0; tasks];
                }
                let (prev, prev2) = (&history.epochs[n - 1], &history.epochs[n - 2]);
                let r: Vec<f64> = (0..tasks).map(|t| prev[t] / prev2[t].max(1e-12)).collect();
                let e: Vec<f64> = r.iter().map(|x| (x / temperature).exp()).collect();
                let z: f64 = e.iter().sum();
                e.iter().map(|x| tasks as f64 * x / z).collect()
            }
        }
    }

    /// Combine task losses `[1]` each into the total loss (RLW: `weights` are the step's
    /// draw).
    pub fn combine(&self, losses: &[Tensor<1>], weights: &[f64], uncertainty: Option<&UncertaintyWeights>) -> Tensor<1> {
        match (self, uncertainty) {
            (Weighting::Uncertainty, Some(u)) => {
                let s = u.log_vars.val();
                let mut total: Option<Tensor<1>> = None;
                for (t, l) in losses.iter().enumerate() {
                    let st = s.clone().slice([t..t + 1]);
                    let term = st.clone().neg().exp().mul(l.clone()).mul_scalar(0.5) + st.mul_scalar(0.5);
                    total = Some(match total {
                        Some(acc) => acc + term,
                        None => term,
                    });
                }
                total.expect("at least one task")
            }
            (Weighting::Gls, _) => {
                // A loss of exactly 0 (a task without targets in the batch) would make the
                // root's derivative infinite: each factor is at least 1e-12.
                let product = losses.iter().map(|l| l.clone().clamp_min(1e-12)).reduce(|a, b| a * b).expect("at least one task");
                product.powf_scalar(1.0 / losses.len() as f64)
            }
            _ => {
                let mut total: Option<Tensor<1>> = None;
                for (l, &w) in losses.iter().zip(weights) {
                    let term = l.clone().mul_scalar(w);
                    total = Some(match total {
                        Some(acc) => acc + term,
                        None => term,
                    });
                }
                total.expect("at least one task")
            }
        }
    }

    /// The effective weight of each task for logging (`½ exp(−s_t)` for uncertainty).
    pub fn effective(&self, weights: &[f64], uncertainty: Option<&UncertaintyWeights>) -> Vec<f64> {
        match (self, uncertainty) {
            (Weighting::Uncertainty, Some(u)) => {
                let s: Vec<f32> = u.log_vars.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
                s.iter().map(|&v| 0.5 * (-(v as f64)).exp()).collect()
            }
            _ => weights.to_vec(),
        }
    }
}

/// The fixed weight of `task` from the config.
pub fn fixed_weight(task: Task, segm: f64, depth: f64, normal: f64) -> f64 {
    match task {
        Task::Segmentation => segm,
        Task::Depth => depth,
        Task::Normals => normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_gets_its_own_fixed_weight() {
        assert_eq!([Task::Segmentation, Task::Depth, Task::Normals].map(|t| fixed_weight(t, 0.3, 0.6, 0.1)), [0.3, 0.6, 0.1]);
    }

    #[test]
    fn effective_weights_are_half_exp_minus_s_for_uncertainty_and_as_given_otherwise() {
        let d = Device::flex();
        let u = UncertaintyWeights { log_vars: Param::from_tensor(Tensor::from_floats([0.0f32, std::f32::consts::LN_2, -1.0], &d)) };
        let got = Weighting::Uncertainty.effective(&[9.0, 9.0, 9.0], Some(&u));
        let want = [0.5, 0.25, 0.5 * std::f64::consts::E];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        assert_eq!(got.len(), 3);
        assert_eq!(Weighting::Fixed(vec![0.3, 0.7]).effective(&[0.3, 0.7], None), vec![0.3, 0.7]);
        assert_eq!(Weighting::Dwa { temperature: 2.0 }.effective(&[1.2, 0.8], None), vec![1.2, 0.8]);
    }

    #[test]
    fn dwa_weights_follow_the_published_formula() {
        let w = Weighting::Dwa { temperature: 2.0 };
        let mut h = LossHistory::default();
        assert_eq!(w.epoch_weights(2, &h), vec![1.0, 1.0]);
        h.epochs.push(vec![2.0, 1.0]);
        assert_eq!(w.epoch_weights(2, &h), vec![1.0, 1.0]);
        h.epochs.push(vec![1.0, 1.0]); // r = (0.5, 1.0)
        let got = w.epoch_weights(2, &h);
        let (a, b) = ((0.5f64 / 2.0).exp(), (1.0f64 / 2.0).exp());
        assert!((got[0] - 2.0 * a / (a + b)).abs() < 1e-12);
        assert!((got[1] - 2.0 * b / (a + b)).abs() < 1e-12);
        assert!((got.iter().sum::<f64>() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn uncertainty_total_and_gradient() {
        let d = Device::flex().autodiff();
        let u = UncertaintyWeights::new(2, &d);
        let losses = [Tensor::<1>::from_floats([2.0], &d), Tensor::<1>::from_floats([4.0], &d)];
        let total = Weighting::Uncertainty.combine(&losses, &[1.0, 1.0], Some(&u));
        // s = 0: ½ · 2 + ½ · 4 + 0 = 3
        assert!((total.clone().into_scalar::<f32>() - 3.0).abs() < 1e-6);
        let g = total.backward();
        let gs: Vec<f32> = u.log_vars.val().grad(&g).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        // d/ds (½ e^{−s} L + ½ s) at 0 = −½ L + ½
        assert!((gs[0] - (-1.0 + 0.5)).abs() < 1e-6 && (gs[1] - (-2.0 + 0.5)).abs() < 1e-6, "{gs:?}");
    }
}
