//! Seam 2 of the training loop: how a gradient is synchronised before it is applied.
//!
//! [`LocalOnly`] applies one process's gradient as it is. Data parallelism
//! ([`crate::dist::DataParallel`]: averaging with all-reduce across the ranks of a run)
//! implements [`GradientSync`] too: every replica then clips and applies the same gradient,
//! so that every replica takes the identical optimiser step.

use burn::optim::GradientsParams;

use crate::train::TrainModule;

/// Makes the gradient of one replica the gradient every replica applies.
pub trait GradientSync {
    /// The gradient to apply, from this replica's `grads` of `module`'s parameters.
    fn sync(&mut self, module: &TrainModule, grads: GradientsParams) -> GradientsParams;
}

/// One process, one device: the gradient is applied as computed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl GradientSync for LocalOnly {
    fn sync(&mut self, _module: &TrainModule, grads: GradientsParams) -> GradientsParams {
        grads
    }
}
