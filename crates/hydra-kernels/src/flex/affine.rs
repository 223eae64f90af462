//! The per-channel affine map on burn-flex (`channel_affine`: inference-mode BatchNorm and
//! ReLU6 in one pass); differentiable through Autodiff's own operations.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_flex::FlexTensor;

use super::tensors::{map_in_place, vec1};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::channel_affine`] on burn-flex.
pub(super) fn channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor, relu6: bool) -> FlexTensor {
    let (scale, shift) = (vec1(&scale), vec1(&shift));
    map_in_place(x, |v, [b, c, h, w]| cpu::affine::channel_affine_in_place(v, &scale, &shift, [b, c, h * w], relu6))
}

/// [`HydraKernels::channel_affine`] on autodiff over burn-flex:
/// differentiable through Autodiff's own multiply and add (and hydra's ReLU6).
pub(super) fn channel_affine_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, scale: FloatTensor<Ad<C>>, shift: FloatTensor<Ad<C>>, relu6: bool) -> FloatTensor<Ad<C>> {
    use burn::backend::ops::FloatTensorOps;
    let c = scale.primitive().layout().shape()[0];
    let shape = Shape::from(vec![1, c, 1, 1]);
    let scaled = Ad::<C>::float_mul(x, Ad::<C>::float_reshape(scale, shape.clone()));
    let y = Ad::<C>::float_add(scaled, Ad::<C>::float_reshape(shift, shape));
    if relu6 { <Ad<C> as HydraKernels>::relu6(y) } else { y }
}
