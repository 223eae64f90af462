//! SyncBatchNorm's reduction across the replicas of a data-parallel run.
//!
//! With a [`ChannelReduce`] installed on the training thread ([`set_reducer`]), BatchNorm's
//! batch statistics are computed over every replica's part of the batch: the per-channel
//! sums of the forward pass (Σx, then Σ(x − μ)²) and of the backward pass (Σg, Σg·(x − μ))
//! are summed across replicas before they are used, so that N replicas of B/N images compute
//! what one process computes on B (PyTorch's `SyncBatchNorm`). γ's and β's gradients stay
//! each replica's own: the data-parallel gradient average combines them. Runs on burn-flex's
//! kernels only (the portable path refuses while a reducer is installed).

use std::cell::RefCell;
use std::rc::Rc;

/// Sums per-channel values across the replicas of a run.
pub trait ChannelReduce {
    /// Replace `values` by their element-wise sum over every replica (each replica calls
    /// this in the same order with the same length). A replica that cannot takes the whole
    /// run down (the engine's abort); it does not return.
    fn all_reduce_sum(&self, values: &mut [f64]);
    /// How many replicas take part.
    fn replicas(&self) -> usize;
}

thread_local! {
    static REDUCER: RefCell<Option<Rc<dyn ChannelReduce>>> = const { RefCell::new(None) };
}

/// Install (`Some`) or remove (`None`) the reducer of BatchNorm's statistics on this thread:
/// every training-mode BatchNorm on this thread is then synchronised across replicas.
pub fn set_reducer(reducer: Option<Rc<dyn ChannelReduce>>) {
    REDUCER.with(|r| *r.borrow_mut() = reducer);
}

/// The reducer installed on this thread, if any.
pub fn reducer() -> Option<Rc<dyn ChannelReduce>> {
    REDUCER.with(|r| r.borrow().clone())
}

/// Replicas a training-mode BatchNorm on this thread takes its statistics over (1 without a
/// reducer).
pub fn replicas() -> usize {
    reducer().map_or(1, |r| r.replicas())
}
