//! The depthwise Chained Residual Pooling on burn-flex (`crp_depthwise`): fused per channel
//! plane in inference, differentiable as its stages under autodiff.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_flex::FlexTensor;

use super::tensors::{map_in_place, vec1};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::crp_depthwise`] on burn-flex.
pub(super) fn crp_depthwise(x: FlexTensor, w: FlexTensor) -> FlexTensor {
    let c = x.layout().shape()[1];
    let weights: Vec<Vec<f32>> = vec1(&w).chunks(c).map(<[f32]>::to_vec).collect();
    // In place when the input is this operation's alone (as in the decoder), else on a copy.
    map_in_place(x, |v, [_, c, h, wd]| cpu::crp::crp_depthwise_in_place(v, &weights, c, h, wd))
}

/// [`HydraKernels::crp_depthwise`] on autodiff over burn-flex:
/// differentiable as its stages: hydra's max-pool, Autodiff's multiply and add.
pub(super) fn crp_depthwise_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    use burn::backend::ops::FloatTensorOps;
    let s = w.primitive().layout().shape();
    let (stages, c) = (s[0], s[1]);
    let mut acc = x.clone();
    let mut top = x;
    for i in 0..stages {
        let ws = Ad::<C>::float_reshape(Ad::<C>::float_slice(w.clone(), &[burn::tensor::Slice::from(i..i + 1)]), Shape::from(vec![1, c, 1, 1]));
        top = Ad::<C>::float_mul(<Ad<C> as HydraKernels>::crp_max_pool(top), ws);
        acc = Ad::<C>::float_add(acc, top.clone());
    }
    acc
}
