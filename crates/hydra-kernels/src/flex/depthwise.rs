//! Depthwise 3×3 convolutions on burn-flex (`depthwise3x3`, and `depthwise3x3_affine` with its
//! BatchNorm epilogue), forward and backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, input_weight_backward, tensor, values, vec1, InputWeightState};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::depthwise3x3`] on burn-flex.
pub(super) fn depthwise3x3(x: FlexTensor, w: FlexTensor, stride: usize) -> FlexTensor {
    let (x, [b, c, h, wd]) = f32_planes(&x);
    let (oh, ow) = (cpu::depthwise::dw_out(h, stride), cpu::depthwise::dw_out(wd, stride));
    tensor(cpu::depthwise::depthwise3x3(x.storage::<f32>(), &values(&w), [b, c, h, wd], stride, None), [b, c, oh, ow])
}

/// [`HydraKernels::depthwise3x3_affine`] on burn-flex.
pub(super) fn depthwise3x3_affine(x: FlexTensor, w: FlexTensor, stride: usize, scale: FlexTensor, shift: FlexTensor, relu6: bool) -> FlexTensor {
    let (x, [b, c, h, wd]) = f32_planes(&x);
    let (oh, ow) = (cpu::depthwise::dw_out(h, stride), cpu::depthwise::dw_out(wd, stride));
    let (scale, shift) = (vec1(&scale), vec1(&shift));
    let y = cpu::depthwise::depthwise3x3(x.storage::<f32>(), &values(&w), [b, c, h, wd], stride, Some((&scale, &shift, relu6)));
    tensor(y, [b, c, oh, ow])
}

#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// Input, weight values, input dims, stride.
    type State = InputWeightState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        input_weight_backward(ops, grads, |x, w, dy, dims, stride, _| {
            let (dx, dw) = cpu::depthwise::depthwise3x3_backward(x, w, dy, dims, stride);
            (Some(dx), (dw, [dims[1], 1, 3, 3]))
        });
    }
}

/// [`HydraKernels::depthwise3x3`] on autodiff over burn-flex.
pub(super) fn depthwise3x3_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, stride: usize) -> FloatTensor<Ad<C>> {
    let nodes = [x.node(), w.node()];
    let wv = vec1(w.primitive());
    let (xc, dims) = f32_planes(&x.into_primitive());
    let [b, c, h, wd] = dims;
    let (oh, ow) = (cpu::depthwise::dw_out(h, stride), cpu::depthwise::dw_out(wd, stride));
    let y = tensor(cpu::depthwise::depthwise3x3(xc.storage::<f32>(), &wv, dims, stride, None), [b, c, oh, ow]);
    match DepthwiseBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((xc, wv, dims, stride), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// [`HydraKernels::depthwise3x3_affine`] on autodiff over burn-flex:
/// the two operations one after the other (differentiable as each of them).
pub(super) fn depthwise3x3_affine_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, stride: usize, scale: FloatTensor<Ad<C>>, shift: FloatTensor<Ad<C>>, relu6: bool) -> FloatTensor<Ad<C>> {
    let y = <Ad<C> as HydraKernels>::depthwise3x3(x, w, stride);
    <Ad<C> as HydraKernels>::channel_affine(y, scale, shift, relu6)
}
