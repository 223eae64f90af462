//! ReLU6 on burn-flex (`relu6`): in place where the input is the operation's alone; the
//! backward pass masks the gradient in place.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, map_in_place};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::relu6`] on burn-flex.
pub(super) fn relu6(x: FlexTensor) -> FlexTensor {
    map_in_place(x, |v, _| cpu::relu6::relu6_in_place(v))
}

#[derive(Debug)]
struct Relu6Backward;

impl Backward<Flex, 1> for Relu6Backward {
    /// The output (whose value decides where the gradient passes).
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let y = ops.state;
        if let Some(node) = parent {
            // The incoming gradient is usually this node's alone: masked in place (a copy first
            // otherwise).
            let (y, _) = f32_planes(&y);
            grads.register::<Flex>(node.id, map_in_place(grad, |g, _| cpu::relu6::relu6_backward_in_place(y.storage::<f32>(), g)));
        }
    }
}

/// [`HydraKernels::relu6`] on autodiff over burn-flex.
pub(super) fn relu6_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    match Relu6Backward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let y = <Flex as HydraKernels>::relu6(x.into_primitive());
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::relu6(x.into_primitive())),
    }
}
