//! BatchNorm with batch statistics on burn-flex (`batch_norm_train`), with or without the
//! ReLU6 after it fused in, forward and backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, tensor, tensor1, vec1};
use super::{Ad, HydraKernels};
use crate::cpu;

/// [`HydraKernels::batch_norm_train`] on burn-flex.
pub(super) fn batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64, relu6: bool) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, dims) = f32_planes(&x);
    let [b, c, h, w] = dims;
    let reduce = crate::sync_bn::reducer();
    let (y, m, v) = cpu::batch_norm::batch_norm_train(x.storage::<f32>(), &vec1(&gamma), &vec1(&beta), [b, c, h * w], epsilon, relu6, reduce.as_deref());
    (tensor(y, dims), tensor1(m), tensor1(v))
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// Input, gamma, beta where ReLU6 was fused in, batch mean, batch variance, epsilon.
    type State = (FlexTensor, Vec<f32>, Option<Vec<f32>>, Vec<f32>, Vec<f32>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, relu6, mean, var, eps) = ops.state;
        let (g, dims) = f32_planes(&grad);
        let [b, c, h, w] = dims;
        // SyncBatchNorm: the reducer of the forward pass's thread, which runs the backward.
        let reduce = crate::sync_bn::reducer();
        let (dx, dgamma, dbeta) = cpu::batch_norm::batch_norm_train_backward(x.storage::<f32>(), &gamma, relu6.as_deref(), &mean, &var, g.storage::<f32>(), [b, c, h * w], eps, reduce.as_deref());
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, dims));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor1(dgamma));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor1(dbeta));
        }
    }
}

/// [`HydraKernels::batch_norm_train`] on autodiff over burn-flex.
pub(super) fn batch_norm_train_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, gamma: FloatTensor<Ad<C>>, beta: FloatTensor<Ad<C>>, epsilon: f64, relu6: bool) -> (FloatTensor<Ad<C>>, FloatTensor<Ad<C>>, FloatTensor<Ad<C>>) {
    let nodes = [x.node(), gamma.node(), beta.node()];
    let gamma_host = vec1(gamma.primitive());
    let beta_host = relu6.then(|| vec1(beta.primitive()));
    let xc = x.primitive().to_contiguous();
    let (y, m, v) = <Flex as HydraKernels>::batch_norm_train(xc.clone(), gamma.into_primitive(), beta.into_primitive(), epsilon, relu6);
    let (mean, var) = (vec1(&m), vec1(&v));
    let out = match BatchNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((xc, gamma_host, beta_host, mean, var, epsilon), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (out, <Ad<C> as burn::backend::AutodiffBackend>::from_inner(m), <Ad<C> as burn::backend::AutodiffBackend>::from_inner(v))
}
