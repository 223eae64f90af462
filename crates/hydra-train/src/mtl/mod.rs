//! Multi-task gradient methods on the per-task gradients of the shared parameters: given
//! `G` (`T` task gradients, each flattened to `P` values) and the task losses, the gradient
//! to apply and the weight each task received. Pure f64 arithmetic, independent of Burn: the
//! training loop flattens the shared part's gradients, calls
//! [`GradientMethod::combine_step`] (with the methods' [`MethodState`]) and writes the result
//! back (see `objective.rs`).
//!
//! Each method follows LibMTL's implementation (median-research-group/LibMTL, commit
//! 4336804, `LibMTL/weighting/*.py`); where LibMTL departs from the paper, the method's file
//! says where. `tests/mtl_methods_match_libmtl.rs` compares every method with LibMTL's own
//! classes on fixed gradients (fixtures/mtl/libmtl.json, scripts/make_mtl_fixture.py), and
//! `tests/mtl_stateful_match_libmtl.rs` the stateful ones over several steps
//! (fixtures/mtl/libmtl_stateful.json).

mod aligned;
mod cagrad;
pub mod dbmtl;
pub mod graddrop;
pub mod gradnorm;
pub mod grads;
mod gradvac;
mod imtl;
pub mod linalg;
mod mgda;
pub mod nash;
mod objective;
mod pcgrad;

pub use cagrad::Rescale;
pub use gradvac::Groups;
pub use grads::Conflict;
pub use mgda::Normalisation;
pub use objective::{diagnostics, GradientObjective};

use hydra_core::rng::SplitMix64;

/// Random numbers for the methods, from the objective's seeded generator (checkpointed, so
/// that a resumed run draws the same).
pub struct Draw<'a> {
    pub rng: &'a mut SplitMix64,
}

impl Draw<'_> {
    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// What a method returns: the gradient of the shared parameters `[P]` and the task weights
/// `[T]` (LibMTL's `batch_weight`, what the logs show).
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    pub gradient: Vec<f64>,
    pub weights: Vec<f64>,
}

/// A gradient method and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum GradientMethod {
    /// Equal weights: `Σ_t g_t`.
    Ew,
    /// MGDA (Sener & Koltun 2018): the min-norm point of the convex hull of the (normalised)
    /// task gradients, by LibMTL's Frank–Wolfe solver.
    Mgda { normalisation: Normalisation },
    /// PCGrad (Yu et al. 2020): each task gradient projected off the others it conflicts
    /// with, in a random order per task.
    PcGrad,
    /// IMTL-G (Liu et al. 2021): weights that give the combined gradient equal projections
    /// onto every task's unit gradient.
    Imtl,
    /// Aligned-MTL (Senushkin et al. 2023): the task gradients' Gram matrix made a multiple of
    /// the identity (condition number one).
    AlignedMtl,
    /// CAGrad (Liu et al. 2021): the average gradient plus the direction that maximises the
    /// worst task's improvement within a ball of radius `c` · ‖mean gradient‖.
    CaGrad { c: f64, rescale: Rescale },
    /// GradVac (Wang et al. 2021): each task gradient moved towards the running target
    /// similarity `ρ̂` of every other task's, per group of parameters; `beta` is the targets'
    /// EMA rate.
    GradVac { beta: f64, groups: Groups },
    /// Nash-MTL (Navon et al. 2022): the weights of the Nash bargaining solution, updated
    /// every `update_every` steps by at most `iterations` convex problems; the shared
    /// gradient clipped to `max_norm` (0: off).
    NashMtl { update_every: u64, iterations: usize, max_norm: f64 },
    /// DB-MTL (Lin et al. 2023): log losses, an EMA (`beta`, decay exponent `beta_sigma`) of
    /// their gradients, each task's scaled to the largest norm.
    DbMtl { beta: f64, beta_sigma: f64 },
    /// GradNorm (Chen et al. 2018): learned loss scales that pull the tasks' weighted
    /// gradient norms towards a common rate, with restoring force `alpha`.
    GradNorm { alpha: f64 },
    /// GradDrop (Chen et al. 2020): per feature of the representation, one sign of the
    /// tasks' gradients kept at random by its purity; `leak` lets the rest through.
    GradDrop { leak: f64 },
}

/// What the stateful methods carry from step to step (checkpointed by the objective).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodState {
    /// Steps combined so far.
    pub step: u64,
    /// GradVac: the group sizes of the shared layout (set by the caller) and the targets
    /// `ρ̂[i][j][k]`, `T·T·K`.
    pub groups: Vec<usize>,
    pub rho: Vec<f64>,
    /// Nash-MTL: the last weights.
    pub alpha: Vec<f64>,
    /// DB-MTL: the gradient buffer, `T` rows of `P`.
    pub buffer: Vec<Vec<f64>>,
}

impl GradientMethod {
    /// Combine the task gradients `grads` (`T` rows of `P`) with task `losses`. `shuffle`
    /// gives PCGrad's task order for task `i` (a permutation of `0..T`), drawn by the caller's
    /// seeded generator so that a resumed run draws the same.
    ///
    /// For the stateless methods; the stateful ones start from a fresh state here (see
    /// [`GradientMethod::combine_step`]).
    pub fn combine(&self, grads: &[Vec<f64>], losses: &[f64], shuffle: &mut dyn FnMut(usize) -> Vec<usize>) -> Combined {
        self.combine_step(grads, losses, &mut MethodState::default(), shuffle)
    }

    /// [`GradientMethod::combine`] continuing from `state` (updated). GradVac's random order
    /// for task `i` is a permutation of the `T − 1` other tasks' ranks. GradNorm and GradDrop
    /// need more than the task gradients (the loss scales, the representation): they are
    /// computed by [`gradnorm::combine`] and [`graddrop::upstream`]; asking this for them is a
    /// programming error (it panics). The training loop goes through `GradientObjective`.
    pub fn combine_step(&self, grads: &[Vec<f64>], losses: &[f64], state: &mut MethodState, shuffle: &mut dyn FnMut(usize) -> Vec<usize>) -> Combined {
        assert!(!grads.is_empty() && grads.iter().all(|g| g.len() == grads[0].len()), "T rows of the same length");
        assert_eq!(grads.len(), losses.len());
        match self {
            GradientMethod::Ew => {
                let w = vec![1.0; grads.len()];
                Combined { gradient: linalg::combination(&w, grads), weights: w }
            }
            GradientMethod::Mgda { normalisation } => mgda::combine(grads, losses, *normalisation),
            GradientMethod::PcGrad => pcgrad::combine(grads, shuffle),
            GradientMethod::Imtl => imtl::combine(grads),
            GradientMethod::AlignedMtl => aligned::combine(grads),
            GradientMethod::CaGrad { c, rescale } => cagrad::combine(grads, *c, *rescale),
            GradientMethod::GradVac { beta, .. } => {
                let t = grads.len();
                if state.groups.is_empty() {
                    state.groups = vec![grads[0].len()];
                }
                if state.rho.len() != t * t * state.groups.len() {
                    state.rho = vec![0.0; t * t * state.groups.len()];
                }
                gradvac::combine(grads, &state.groups, *beta, &mut state.rho, shuffle)
            }
            GradientMethod::NashMtl { iterations, max_norm, .. } => {
                state.step += 1;
                nash::combine(grads, &mut state.alpha, *iterations, *max_norm)
            }
            GradientMethod::DbMtl { beta, beta_sigma } => {
                state.step += 1;
                dbmtl::combine(grads, losses, *beta, *beta_sigma, state.step, &mut state.buffer)
            }
            GradientMethod::GradNorm { .. } | GradientMethod::GradDrop { .. } => unreachable!("computed by gradnorm::combine and graddrop::upstream"),
        }
    }

    /// The factor on each head's gradient of its own loss (`None`: 1), for `weights` the
    /// combination gave: DB-MTL differentiates log losses, Nash-MTL backpropagates
    /// `Σ α_t L_t`.
    pub fn head_weights(&self, losses: &[f64], weights: &[f64]) -> Option<Vec<f64>> {
        match self {
            GradientMethod::DbMtl { .. } => Some(dbmtl::head_weights(losses)),
            GradientMethod::NashMtl { .. } => Some(weights.to_vec()),
            _ => None,
        }
    }
}
