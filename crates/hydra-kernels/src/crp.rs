//! The depthwise Chained Residual Pooling on tensors: fused per channel plane on burn-flex
//! ([`crate::cpu::crp`]), its stages one by one elsewhere.

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;
use crate::max_pool::max_pool_5x5;

/// Depthwise Chained Residual Pooling (no bias): `x [B, C, H, W]`, `w [stages, C]` →
/// `[B, C, H, W]` with `top = x; per stage: top = maxpool5(top) · w[s]; x = x + top`. Fused
/// per channel plane on burn-flex; the same operations one by one elsewhere.
pub fn crp_depthwise(x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) && w.dtype() == burn::tensor::DType::F32 {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::crp_depthwise(x.into_dispatch(), w.into_dispatch()));
    }
    crp_depthwise_staged(x, w)
}

/// [`crp_depthwise`] as its stages one by one (max-pool, multiply, add) on any backend: what
/// the other backends run, and the reference of the fused kernels.
pub fn crp_depthwise_staged(x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
    let [stages, c] = w.dims();
    let mut acc = x.clone();
    let mut top = x;
    for i in 0..stages {
        top = max_pool_5x5(top) * w.clone().slice([i..i + 1, 0..c]).reshape([1, c, 1, 1]);
        acc = acc + top.clone();
    }
    acc
}
