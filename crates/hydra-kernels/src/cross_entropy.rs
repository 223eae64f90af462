//! The segmentation loss on tensors: mean cross-entropy over the pixels not ignored, of the
//! logits as they are or upsampled to the labels' size (on burn-flex without materialising
//! the upsampled logits, [`crate::cpu::upsampled_ce`]); the portable form from Burn's
//! operations.

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;
use crate::resize::resize_bilinear;

/// Mean cross-entropy of `logits: [B, C, H, W]` against `labels: [B, H, W]` over pixels not
/// labelled `ignore` (0, not NaN, when none is valid): `[1]`. A label outside `[0, C)` counts
/// as unlabelled on every path (datasets refuse such labels when opened; PyTorch would raise).
pub fn cross_entropy(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    #[cfg(feature = "flex")]
    if on_flex(&logits) {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::cross_entropy(logits.into_dispatch(), labels.into_dispatch(), ignore));
    }
    cross_entropy_portable(logits, labels, ignore)
}

/// [`cross_entropy`] of `logits [B, C, h, w]` upsampled (bilinear, align_corners = false)
/// to the size of `labels [B, H, W]`, as the reference training computes its loss: `[1]`.
/// On burn-flex, without ever holding the upsampled logits (bit-identical to the two steps).
pub fn upsampled_cross_entropy(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    let [_, _, h, w] = logits.dims();
    let [_, oh, ow] = labels.dims();
    if [h, w] == [oh, ow] {
        return cross_entropy(logits, labels, ignore);
    }
    #[cfg(feature = "flex")]
    if on_flex(&logits) {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::upsampled_cross_entropy(logits.into_dispatch(), labels.into_dispatch(), ignore));
    }
    cross_entropy(resize_bilinear(logits, [oh, ow]), labels, ignore)
}

/// [`cross_entropy`] from Burn operations (any backend).
pub fn cross_entropy_portable(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    let classes = logits.dims()[1] as i64;
    let valid = labels.clone().not_equal_elem(ignore).bool_and(labels.clone().greater_equal_elem(0)).bool_and(labels.clone().lower_elem(classes));
    let safe = labels.mask_fill(valid.clone().bool_not(), 0).unsqueeze_dim::<4>(1);
    let logp = burn::tensor::activation::log_softmax(logits, 1).gather(1, safe).squeeze_dim::<3>(1);
    let w = valid.float();
    -(logp * w.clone()).sum() / w.sum().clamp_min(1.0)
}
