//! The CRP's 5×5 stride-1 max-pool on tensors: hydra's kernel on burn-flex
//! ([`crate::cpu::max_pool`]), computed separably from Burn's `max_pool2d` elsewhere.
//!
//! max over a 5×5 window = max over 5 rows of (max over 5 columns); with −∞ padding the two
//! passes give exactly PyTorch's `max_pool2d(x, 5, 1, 2)` using 10 comparisons per output
//! instead of 25.

use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

#[cfg(feature = "flex")]
use crate::on_flex;

/// 5×5 max-pool, stride 1, padding 2 (−∞): `[B, C, H, W]` → `[B, C, H, W]`. Uses hydra's
/// kernel on the CPU backend and [`max_pool_5x5_portable`] elsewhere.
pub fn max_pool_5x5(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::crp_max_pool(x.into_dispatch()));
    }
    max_pool_5x5_portable(x)
}

/// The separable pool from Burn's own `max_pool2d` (any backend).
pub fn max_pool_5x5_portable(x: Tensor<4>) -> Tensor<4> {
    let rows = MaxPoolOptions::new([1, 5]).with_stride([1, 1]).with_padding([0, 2]);
    let cols = MaxPoolOptions::new([5, 1]).with_stride([1, 1]).with_padding([2, 0]);
    max_pool2d(max_pool2d(x, rows), cols)
}

/// The direct 5×5 pool, kept as the reference for tests and benchmarks.
pub fn max_pool_5x5_direct(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([5, 5]).with_stride([1, 1]).with_padding([2, 2]))
}
