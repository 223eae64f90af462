//! ReLU6 on tensors with PyTorch's gradient: hydra's kernel on burn-flex
//! ([`crate::cpu::relu6`]), Burn's `relu6` elsewhere.

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;

/// ReLU6, `min(max(x, 0), 6)`, with PyTorch's gradient (passes where 0 < x < 6).
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::relu6(x.into_dispatch()));
    }
    burn::tensor::activation::relu6(x)
}
