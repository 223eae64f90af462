//! Bilinear resizing on burn-flex (`bilinear_resize`), forward and backward (the adjoint).

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

/// [`HydraKernels::bilinear_resize`] on burn-flex.
pub(super) fn bilinear_resize(x: FlexTensor, oh: usize, ow: usize) -> FlexTensor {
    let (x, [b, c, h, w]) = f32_planes(&x);
    tensor(cpu::bilinear::bilinear(x.storage::<f32>(), b * c, [h, w], [oh, ow]), [b, c, oh, ow])
}

#[derive(Debug)]
struct BilinearBackward;

impl Backward<Flex, 1> for BilinearBackward {
    type State = ([usize; 4], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let ([b, c, h, w], out) = ops.state;
        if let Some(node) = parent {
            let (g, _) = f32_planes(&grad);
            let gx = cpu::bilinear::bilinear_backward(g.storage::<f32>(), b * c, [h, w], out);
            grads.register::<Flex>(node.id, tensor(gx, [b, c, h, w]));
        }
    }
}

/// [`HydraKernels::bilinear_resize`] on autodiff over burn-flex.
pub(super) fn bilinear_resize_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, oh: usize, ow: usize) -> FloatTensor<Ad<C>> {
    match BilinearBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (xc, dims) = f32_planes(x.primitive());
            let [b, c, h, w] = dims;
            let out = cpu::bilinear::bilinear(xc.storage::<f32>(), b * c, [h, w], [oh, ow]);
            prep.finish((dims, [oh, ow]), tensor(out, [b, c, oh, ow]))
        }
        OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::bilinear_resize(x.into_primitive(), oh, ow)),
    }
}
