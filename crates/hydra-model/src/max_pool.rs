//! The CRP's 5×5 stride-1 max-pool, computed separably.
//!
//! max over a 5×5 window = max over 5 rows of (max over 5 columns); with −∞ padding the two
//! passes give exactly PyTorch's `max_pool2d(x, 5, 1, 2)` using 10 comparisons per output
//! instead of 25.

use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

/// `[B, C, H, W]` → `[B, C, H, W]`: 5×5 max-pool, stride 1, padding 2. Uses hydra's kernel
/// on the CPU backend ([`crate::kernels`]) and [`max_pool_5x5_portable`] elsewhere.
pub fn max_pool_5x5(x: Tensor<4>) -> Tensor<4> {
    crate::kernels::max_pool_5x5(x)
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
