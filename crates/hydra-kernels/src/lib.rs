//! hydra's operations with a fast path on the CPU backend: on burn-flex (with or without
//! autodiff) they run hydra's own kernels ([`cpu`], through a Burn backend extension); on any
//! other backend they fall back to portable Burn operations. Both paths compute the same
//! function.
//!
//! Three layers, one file per operation family in each:
//! - this crate's root modules take tensors and choose the path: [`conv`], [`max_pool`],
//!   [`crp`], [`resize`], [`relu6`], [`affine`], [`batch_norm`], [`cross_entropy`],
//!   [`inverted_residual`] (the
//!   functions are re-exported here; the portable forms live beside them);
//! - [`cpu`] holds the host kernels on f32 buffers, forward and backward;
//! - `flex` (with the `flex` feature) declares them as a Burn backend extension on burn-flex
//!   and its autodiff, with the backward passes.
//!
//! This file also holds the switch that sends every operation down its portable path
//! ([`set_portable_only`]) and the test of whether a tensor takes the kernels.
//!
//! Depends on no other hydra crate (on `hydra-core` for its tests only); `hydra-model` builds
//! on it and re-exports it as `hydra_model::kernels`.

#[macro_use]
mod multiversion;
pub use multiversion::{active_level, allowed_level};
pub mod affine;
pub mod batch_norm;
pub mod conv;
pub mod cpu;
pub mod cross_entropy;
pub mod crp;
#[cfg(feature = "flex")]
mod flex;
pub mod inverted_residual;
pub mod max_pool;
pub mod precision;
pub mod relu6;
pub mod resize;
pub mod sync_bn;

#[cfg(feature = "flex")]
use burn::prelude::*;

pub use affine::{channel_affine, mul_add};
pub use batch_norm::{batch_norm_train, batch_norm_train_activated, batch_norm_train_portable};
pub use conv::{conv2d, conv_add_relu6, conv_affine, task_head};
pub use cross_entropy::{cross_entropy, cross_entropy_portable, upsampled_cross_entropy};
pub use crp::{crp_depthwise, crp_depthwise_staged};
pub use inverted_residual::{fused_runs, inverted_residual, set_fusion, Fusion};
pub use max_pool::max_pool_5x5;
pub use precision::{precision, set_precision, Bf16Path, Precision};
pub use relu6::relu6;
pub use resize::resize_bilinear;

static PORTABLE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `true`, every operation takes its portable path (Burn's operations, what the GPU
/// backends run) on burn-flex too, for the whole process: to check on the CPU the arithmetic
/// the GPUs compute (`tests/portable_path.rs`), or to tell a GPU discrepancy from a defect of
/// the portable path. Slower; the default is `false`.
pub fn set_portable_only(on: bool) {
    PORTABLE_ONLY.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`set_portable_only`] is on.
pub fn portable_only() -> bool {
    PORTABLE_ONLY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether `t` lives on burn-flex (directly or under autodiff) as f32, where the custom kernels
/// apply (unless [`set_portable_only`]).
#[cfg(feature = "flex")]
pub(crate) fn on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    use burn::backend::DispatchDevice;
    let d = t.device();
    let flex = match d.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(a) => matches!(**a, DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    };
    flex && t.dtype() == burn::tensor::DType::F32 && !portable_only()
}