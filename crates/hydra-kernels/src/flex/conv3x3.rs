//! Dense 3×3 convolutions on burn-flex: stride 1 (`conv3x3`, forward and backward; `task_head`
//! with the head's depthwise 1×1 and ReLU6 on its input) and the stem's few-input convolution
//! (`conv3x3_few_inputs`, differentiable as Autodiff's convolution).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::tensor::Shape;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, input_weight_backward, tensor, values, vec1, InputWeightState};
use super::{Ad, HydraKernels};
use crate::cpu::{self, conv3x3, conv3x3_few_inputs};

/// [`HydraKernels::conv3x3`] on burn-flex.
pub(super) fn conv3x3(x: FlexTensor, w: FlexTensor) -> FlexTensor {
    let (x, dims) = f32_planes(&x);
    let cout = w.layout().shape()[0];
    let [b, _, h, wd] = dims;
    tensor(conv3x3::conv3x3(x.storage::<f32>(), &values(&w), dims, cout, None, None), [b, cout, h, wd])
}

/// [`HydraKernels::task_head`] on burn-flex.
pub(super) fn task_head(x: FlexTensor, pre: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let (x, dims) = f32_planes(&x);
    let cout = w.layout().shape()[0];
    let [b, _, h, wd] = dims;
    let y = conv3x3::conv3x3(x.storage::<f32>(), &values(&w), dims, cout, Some(&vec1(&pre)), Some(&vec1(&bias)));
    tensor(y, [b, cout, h, wd])
}

/// [`HydraKernels::conv3x3_few_inputs`] on burn-flex.
pub(super) fn conv3x3_few_inputs(x: FlexTensor, w: FlexTensor, stride: usize) -> FlexTensor {
    let (x, dims) = f32_planes(&x);
    let [b, _, h, wd] = dims;
    let cout = w.layout().shape()[0];
    let y = conv3x3_few_inputs::conv3x3_few_inputs(x.storage::<f32>(), &values(&w), dims, cout, stride);
    tensor(y, [b, cout, cpu::depthwise::dw_out(h, stride), cpu::depthwise::dw_out(wd, stride)])
}

#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    /// Input, weight values, input dims, output channels.
    type State = InputWeightState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        input_weight_backward(ops, grads, |x, w, dy, dims, cout, want_dx| {
            let (dx, dw) = conv3x3::conv3x3_backward(x, w, dy, dims, cout, want_dx);
            (dx, (dw, [cout, dims[1], 3, 3]))
        });
    }
}

/// [`HydraKernels::conv3x3`] on autodiff over burn-flex.
pub(super) fn conv3x3_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    let nodes = [x.node(), w.node()];
    let wv = vec1(w.primitive());
    let cout = w.primitive().layout().shape()[0];
    let (xc, dims) = f32_planes(&x.into_primitive());
    let [b, _, h, wd] = dims;
    let y = tensor(conv3x3::conv3x3(xc.storage::<f32>(), &wv, dims, cout, None, None), [b, cout, h, wd]);
    match Conv3x3Backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((xc, wv, dims, cout), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// [`HydraKernels::task_head`] on autodiff over burn-flex:
/// the steps one after the other (differentiable as each of them).
pub(super) fn task_head_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, pre: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, bias: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    use burn::backend::ops::FloatTensorOps;
    let c = pre.primitive().layout().shape()[0];
    let cout = bias.primitive().layout().shape()[0];
    let t = <Ad<C> as HydraKernels>::relu6(Ad::<C>::float_mul(x, Ad::<C>::float_reshape(pre, Shape::from(vec![1, c, 1, 1]))));
    let y = <Ad<C> as HydraKernels>::conv3x3(t, w);
    Ad::<C>::float_add(y, Ad::<C>::float_reshape(bias, Shape::from(vec![1, cout, 1, 1])))
}

/// [`HydraKernels::conv3x3_few_inputs`] on autodiff over burn-flex:
/// differentiable as Autodiff's convolution.
pub(super) fn conv3x3_few_inputs_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>, stride: usize) -> FloatTensor<Ad<C>> {
    use burn::backend::ops::ModuleOps;
    let options = burn::backend::ops::ConvOptions::new([stride, stride], [1, 1], [1, 1], 1);
    Ad::<C>::conv2d(x, w, None, options)
}
