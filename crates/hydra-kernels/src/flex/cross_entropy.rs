//! The segmentation losses on burn-flex: cross-entropy (`cross_entropy`) and cross-entropy of
//! logits upsampled on the fly (`upsampled_cross_entropy`), forward and backward.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, label_size, labels_i64, tensor, tensor1, vec1};
use super::Ad;
use crate::cpu::{self, upsampled_ce};

/// [`HydraKernels::cross_entropy`] on burn-flex.
pub(super) fn cross_entropy(logits: FlexTensor, labels: FlexTensor, ignore: i64) -> FlexTensor {
    let (x, [b, c, h, w]) = f32_planes(&logits);
    let (sum, count) = cpu::softmax_ce::cross_entropy(x.storage::<f32>(), &labels_i64(&labels), [b, c, h * w], ignore);
    tensor1(vec![(sum / count.max(1) as f64) as f32])
}

/// [`HydraKernels::upsampled_cross_entropy`] on burn-flex.
pub(super) fn upsampled_cross_entropy(logits: FlexTensor, labels: FlexTensor, ignore: i64) -> FlexTensor {
    let (x, dims) = f32_planes(&logits);
    let size = label_size(&labels);
    let (sum, count) = upsampled_ce::upsampled_cross_entropy(x.storage::<f32>(), &labels_i64(&labels), dims, size, ignore);
    tensor1(vec![(sum / count.max(1) as f64) as f32])
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    /// Logits, labels, ignore value, valid pixel count.
    type State = (FlexTensor, Arc<Vec<i64>>, i64, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, labels, ignore, count) = ops.state;
        if let Some(node) = parent {
            let scale = vec1(&grad)[0];
            let s = x.layout().shape();
            let dims = [s[0], s[1], s[2], s[3]];
            let g = cpu::softmax_ce::cross_entropy_backward(x.storage::<f32>(), &labels, [dims[0], dims[1], dims[2] * dims[3]], ignore, count, scale);
            grads.register::<Flex>(node.id, tensor(g, dims));
        }
    }
}

#[derive(Debug)]
struct UpsampledCrossEntropyBackward;

impl Backward<Flex, 1> for UpsampledCrossEntropyBackward {
    /// Logits, labels, label size, ignore value, valid pixel count.
    type State = (FlexTensor, Arc<Vec<i64>>, [usize; 2], i64, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, labels, size, ignore, count) = ops.state;
        if let Some(node) = parent {
            let scale = vec1(&grad)[0];
            let s = x.layout().shape();
            let dims = [s[0], s[1], s[2], s[3]];
            let g = upsampled_ce::upsampled_cross_entropy_backward(x.storage::<f32>(), &labels, dims, size, ignore, count, scale);
            grads.register::<Flex>(node.id, tensor(g, dims));
        }
    }
}

/// [`HydraKernels::cross_entropy`] on autodiff over burn-flex.
pub(super) fn cross_entropy_autodiff<C: CheckpointStrategy>(logits: FloatTensor<Ad<C>>, labels: IntTensor<Ad<C>>, ignore: i64) -> FloatTensor<Ad<C>> {
    let node = logits.node();
    let (x, [b, c, h, w]) = f32_planes(&logits.into_primitive());
    let labels = Arc::new(labels_i64(&labels));
    let (sum, count) = cpu::softmax_ce::cross_entropy(x.storage::<f32>(), &labels, [b, c, h * w], ignore);
    let loss = tensor1(vec![(sum / count.max(1) as f64) as f32]);
    match CrossEntropyBackward.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((x, labels, ignore, count), loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    }
}

/// [`HydraKernels::upsampled_cross_entropy`] on autodiff over burn-flex.
pub(super) fn upsampled_cross_entropy_autodiff<C: CheckpointStrategy>(logits: FloatTensor<Ad<C>>, labels: IntTensor<Ad<C>>, ignore: i64) -> FloatTensor<Ad<C>> {
    let node = logits.node();
    let (x, dims) = f32_planes(&logits.into_primitive());
    let size = label_size(&labels);
    let labels = Arc::new(labels_i64(&labels));
    let (sum, count) = upsampled_ce::upsampled_cross_entropy(x.storage::<f32>(), &labels, dims, size, ignore);
    let loss = tensor1(vec![(sum / count.max(1) as f64) as f32]);
    match UpsampledCrossEntropyBackward.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((x, labels, size, ignore, count), loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    }
}
