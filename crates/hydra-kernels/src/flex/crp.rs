//! The depthwise Chained Residual Pooling on burn-flex (`crp_depthwise`): fused per channel
//! plane in inference, and under autodiff as one operation with its own backward pass.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::tensor::{Bytes, DType, Shape};
use burn_flex::{FlexTensor, Layout};

use super::tensors::{f32_planes, map_in_place, tensor, vec1};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::crp_depthwise`] on burn-flex.
pub(super) fn crp_depthwise(x: FlexTensor, w: FlexTensor) -> FlexTensor {
    let c = x.layout().shape()[1];
    let weights: Vec<Vec<f32>> = vec1(&w).chunks(c).map(<[f32]>::to_vec).collect();
    // In place when the input is this operation's alone (as in the decoder), else on a copy.
    map_in_place(x, |v, [_, c, h, wd]| cpu::crp::crp_depthwise_in_place(v, &weights, c, h, wd))
}

#[derive(Debug)]
struct CrpBackward;

impl Backward<Flex, 2> for CrpBackward {
    /// The weights' values `[stages, C]`, each stage's pool output and argmax, the input's dims.
    type State = (Vec<f32>, Arc<cpu::crp_train::CrpSaved>, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (w, saved, dims) = ops.state;
        let (g, _) = f32_planes(&grad);
        let (dx, dw) = cpu::crp_train::crp_train_backward(g.storage::<f32>(), &w, &saved, dims);
        if let Some(node) = node_x {
            grads.register::<Flex>(node, tensor(dx, dims));
        }
        if let Some(node) = node_w {
            let stages = dw.len().checked_div(dims[1]).unwrap_or(0);
            grads.register::<Flex>(node, FlexTensor::new(Bytes::from_elems(dw), Layout::contiguous(Shape::from(vec![stages, dims[1]])), DType::F32));
        }
    }
}

/// [`HydraKernels::crp_depthwise`] on autodiff over burn-flex: one operation per channel
/// plane, forward and backward ([`cpu::crp_train`]), bit for bit its stages one by one
/// (max-pool, multiply, add) in the output and the input's gradient.
pub(super) fn crp_depthwise_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, w: FloatTensor<Ad<C>>) -> FloatTensor<Ad<C>> {
    match CrpBackward.prepare::<C>([x.node(), w.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let wv = vec1(w.primitive());
            let (xc, dims) = f32_planes(x.primitive());
            let (y, saved) = cpu::crp_train::crp_train(xc.storage::<f32>(), &wv, dims);
            prep.finish((wv, Arc::new(saved), dims), tensor(y, dims))
        }
        OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::crp_depthwise(x.into_primitive(), w.into_primitive())),
    }
}
