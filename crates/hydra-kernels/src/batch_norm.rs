//! BatchNorm with batch statistics on tensors: hydra's kernel on burn-flex
//! ([`crate::cpu::batch_norm`], PyTorch's CPU arithmetic), and the portable form from Burn's
//! operations with short reductions only (what the GPU backends run).

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;

/// BatchNorm with batch statistics: `(output, batch mean, biased batch variance)`, the
/// statistics detached. `x: [B, C, H, W]`, `gamma`, `beta`: `[C]`.
pub fn batch_norm_train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    batch_norm_train_activated(x, gamma, beta, epsilon, false)
}

/// [`batch_norm_train`], then ReLU6 if `relu6` ([`crate::relu6`], PyTorch's gradient). On
/// burn-flex one operation, forward and backward (bit for bit the two one after the other);
/// elsewhere the two operations.
pub fn batch_norm_train_activated(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64, relu6: bool) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    #[cfg(feature = "flex")]
    if on_flex(&x) && gamma.dtype() == burn::tensor::DType::F32 {
        use crate::flex::HydraKernels;
        let (y, m, v) = <burn::backend::Dispatch as HydraKernels>::batch_norm_train(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), epsilon, relu6);
        return (Tensor::from_dispatch(y), Tensor::from_dispatch(m), Tensor::from_dispatch(v));
    }
    let (y, m, v) = batch_norm_train_portable(x, gamma, beta, epsilon);
    (if relu6 { crate::relu6(y) } else { y }, m, v)
}

/// [`batch_norm_train`] from Burn operations (any backend), with no reduction longer than one
/// image row or column, forward or backward. Burn's own `batch_norm_train` sums all
/// `B · H · W` values of a channel in one reduction, forward and backward; on the CubeCL
/// backends that can be one f32 running sum per channel (measured on wgpu: 2.8e-5 error on a
/// BatchNorm's output at 2 × 120×160, amplified by the training network to 1.8e-3 in the
/// depth loss), and Mesa's lavapipe cuts every shader loop off after 65 535 iterations
/// (channels of 153 600 values summed to 0). Here each channel is summed along the width, then
/// the height, then the batch (1.6e-7 on the same BatchNorm), and per-channel values are spread
/// over `[1, C, H, 1]`, so that the gradients' reductions run along the width and the batch
/// (of that broadcast) and the height (of the repeat).
pub fn batch_norm_train_portable(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    assert!(crate::sync_bn::reducer().is_none(), "SyncBatchNorm runs on burn-flex's kernels only (the training configuration refuses it elsewhere)");
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let channel_sum = |t: Tensor<4>| t.sum_dim(3).sum_dim(2).sum_dim(0); // [1, C, 1, 1]
    let over_rows = |t: Tensor<4>| t.repeat_dim(2, h); // [1, C, 1, 1] → [1, C, H, 1]
    let mean = channel_sum(x.clone()).div_scalar(n);
    let centered = x - over_rows(mean.clone());
    let variance = channel_sum(centered.clone().powi_scalar(2)).div_scalar(n);
    let scale = variance.clone().add_scalar(epsilon).sqrt().recip() * gamma.reshape([1, c, 1, 1]);
    let output = centered * over_rows(scale) + over_rows(beta.reshape([1, c, 1, 1]));
    (output, mean.reshape([c]).detach(), variance.reshape([c]).detach())
}
