//! Multi-task gradient methods on the per-task gradients of the shared parameters: given
//! `G` (`T` task gradients, each flattened to `P` values) and the task losses, the gradient
//! to apply and the weight each task received. Pure f64 arithmetic, independent of Burn: the
//! training loop flattens the encoder's gradients, calls [`GradientMethod::combine`] and
//! writes the result back (see `objective.rs`).
//!
//! Each method follows LibMTL's implementation (median-research-group/LibMTL, commit
//! 4336804, `LibMTL/weighting/*.py`); where LibMTL departs from the paper, the method's file
//! says where. `tests/mtl_methods_match_libmtl.rs` compares every method with LibMTL's own
//! classes on fixed gradients (fixtures/mtl/libmtl.json, scripts/make_mtl_fixture.py).

mod aligned;
mod cagrad;
pub mod grads;
mod imtl;
pub mod linalg;
mod mgda;
mod objective;
mod pcgrad;

pub use cagrad::Rescale;
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
}

impl GradientMethod {
    /// Combine the task gradients `grads` (`T` rows of `P`) with task `losses`. `shuffle`
    /// gives PCGrad's task order for task `i` (a permutation of `0..T`), drawn by the caller's
    /// seeded generator so that a resumed run draws the same.
    pub fn combine(&self, grads: &[Vec<f64>], losses: &[f64], shuffle: &mut dyn FnMut(usize) -> Vec<usize>) -> Combined {
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
        }
    }
}
