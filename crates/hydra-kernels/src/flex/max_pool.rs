//! The CRP's 5×5 max-pool on burn-flex (`crp_max_pool`): forward, and under autodiff the argmax
//! kept for the backward pass.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, tensor};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::crp_max_pool`] on burn-flex.
pub(super) fn crp_max_pool(x: FlexTensor) -> FlexTensor {
    let (x, [b, c, h, w]) = f32_planes(&x);
    let (out, _) = cpu::max_pool::max_pool5(x.storage::<f32>(), b * c, h, w, false);
    tensor(out, [b, c, h, w])
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = (Arc<Vec<u8>>, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (argmax, [b, c, h, w]) = ops.state;
        if let Some(node) = parent {
            let (g, _) = f32_planes(&grad);
            let gx = cpu::max_pool::max_pool5_backward(g.storage::<f32>(), &argmax, b * c, h, w);
            grads.register::<Flex>(node.id, tensor(gx, [b, c, h, w]));
        }
    }
}

/// [`HydraKernels::crp_max_pool`] on autodiff over burn-flex.
pub(super) fn crp_max_pool_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    match MaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (xc, dims) = f32_planes(x.primitive());
            let [b, c, h, w] = dims;
            let (out, arg) = cpu::max_pool::max_pool5(xc.storage::<f32>(), b * c, h, w, true);
            prep.finish((Arc::new(arg.expect("argmax")), dims), tensor(out, dims))
        }
        OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::crp_max_pool(x.into_primitive())),
    }
}
