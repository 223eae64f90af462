//! Per-channel affine maps on tensors: `x · scale[c] + shift[c]` (inference-mode BatchNorm,
//! with ReLU6 if asked) in one pass on burn-flex, and the fused multiply-add of BatchNorm's
//! shift; Burn's operations elsewhere.

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;

/// `a · b + c` elementwise, `[N]`: rounded once (a fused multiply-add, as PyTorch's CPU
/// kernels compute BatchNorm's shift `β − μ·α`) on burn-flex outside autodiff; `a * b + c`
/// elsewhere.
pub fn mul_add(a: Tensor<1>, b: Tensor<1>, c: Tensor<1>) -> Tensor<1> {
    #[cfg(feature = "flex")]
    if on_flex(&a) && !a.device().is_autodiff() {
        let device = a.device();
        let v = |t: &Tensor<1>| t.clone().into_data().try_to_vec::<f32>();
        if let (Ok(av), Ok(bv), Ok(cv)) = (v(&a), v(&b), v(&c)) {
            let y: Vec<f32> = av.iter().zip(&bv).zip(&cv).map(|((a, b), c)| a.mul_add(*b, *c)).collect();
            return Tensor::from_data(burn::tensor::TensorData::new(y, [av.len()]), &device);
        }
    }
    a * b + c
}

/// `x · scale[c] + shift[c]`, then ReLU6 if `relu6`, as one pass on burn-flex:
/// `x [B, C, H, W]`, `scale`, `shift` `[C]` → `[B, C, H, W]`. Differentiable on any backend.
pub fn channel_affine(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>, relu6: bool) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) && scale.dtype() == burn::tensor::DType::F32 {
        use crate::flex::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::channel_affine(x.into_dispatch(), scale.into_dispatch(), shift.into_dispatch(), relu6);
        return Tensor::from_dispatch(y);
    }
    let c = scale.dims()[0];
    let y = x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1]);
    if relu6 { crate::relu6::relu6(y) } else { y }
}
