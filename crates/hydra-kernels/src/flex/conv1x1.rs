//! Dense 1×1 convolutions on burn-flex (`conv1x1`, and with the epilogues `conv1x1_add_relu6`,
//! `conv1x1_affine`), forward and backward. Inference takes the precision set in
//! `crate::precision`; autodiff's forward is always f32.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, input_weight_backward, tensor, values, vec1, InputWeightState};
use super::{Ad, HydraKernels};
use crate::cpu::conv1x1;

/// [`HydraKernels::conv1x1`] on burn-flex.
pub(super) fn conv1x1(x: FlexTensor, w: FlexTensor) -> FlexTensor {
    let (x, [b, cin, h, wd]) = f32_planes(&x);
    let cout = w.layout().shape()[0];
    tensor(conv1x1::conv1x1_inference(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, None, None), [b, cout, h, wd])
}

/// [`HydraKernels::conv1x1_add_relu6`] on burn-flex.
pub(super) fn conv1x1_add_relu6(x: FlexTensor, w: FlexTensor, a: FlexTensor) -> FlexTensor {
    let (x, [b, cin, h, wd]) = f32_planes(&x);
    let (a, _) = f32_planes(&a);
    let cout = w.layout().shape()[0];
    tensor(conv1x1::conv1x1_inference(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, None, Some(a.storage::<f32>())), [b, cout, h, wd])
}

/// [`HydraKernels::conv1x1_affine`] on burn-flex.
pub(super) fn conv1x1_affine(x: FlexTensor, w: FlexTensor, scale: FlexTensor, shift: FlexTensor, relu6: bool) -> FlexTensor {
    let (x, [b, cin, h, wd]) = f32_planes(&x);
    let cout = w.layout().shape()[0];
    let (scale, shift) = (vec1(&scale), vec1(&shift));
    let y = conv1x1::conv1x1_inference(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, Some((&scale, &shift, relu6)), None);
    tensor(y, [b, cout, h, wd])
}

#[derive(Debug)]
struct Conv1x1Backward;

impl Backward<Flex, 2> for Conv1x1Backward {
    /// Input, weight values, input dims, output channels.
    type State = InputWeightState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        input_weight_backward(ops, grads, |x, w, dy, [b, cin, h, wd], cout, want_dx| {
            let (dx, dw) = conv1x1::conv1x1_backward(x, w, dy, [b, cin, h * wd], cout, want_dx);
            (dx, (dw, [cout, cin, 1, 1]))
        });
    }
}

/// [`HydraKernels::conv1x1`] on autodiff over burn-flex.
pub(super) fn conv1x1_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    let nodes = [x.node(), w.node()];
    let wv = vec1(w.primitive());
    let cout = w.primitive().layout().shape()[0];
    let (xc, dims) = f32_planes(&x.into_primitive());
    let [b, cin, h, wd] = dims;
    let y = tensor(conv1x1::conv1x1(xc.storage::<f32>(), &wv, [b, cin, h * wd], cout, None, None), [b, cout, h, wd]);
    match Conv1x1Backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((xc, wv, dims, cout), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// [`HydraKernels::conv1x1_add_relu6`] on autodiff over burn-flex:
/// the three operations one after the other (differentiable as each of them).
pub(super) fn conv1x1_add_relu6_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, a: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    use burn::backend::ops::FloatTensorOps;
    let y = <Ad<C> as HydraKernels>::conv1x1(x, w);
    <Ad<C> as HydraKernels>::relu6(Ad::<C>::float_add(y, a))
}

/// [`HydraKernels::conv1x1_affine`] on autodiff over burn-flex:
/// the two operations one after the other (differentiable as each of them).
pub(super) fn conv1x1_affine_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, scale: FloatTensor<Ad<C>>, shift: FloatTensor<Ad<C>>, relu6: bool) -> FloatTensor<Ad<C>> {
    let y = <Ad<C> as HydraKernels>::conv1x1(x, w);
    <Ad<C> as HydraKernels>::channel_affine(y, scale, shift, relu6)
}
