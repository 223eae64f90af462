//! A Burn backend extension: the CRP max-pool and the bilinear resize as custom operations on
//! burn-flex, with hand-written backward passes for autodiff. burn-flex's generic max-pool
//! computes int64 indices per element with bounds checks in the inner loop and its strided
//! copies along the last axis are slow; these two operations dominated HydraNet's CPU time.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex};
use burn::tensor::{Bytes, DType, Shape};
use burn_flex::{FlexTensor, Layout};

use super::cpu;

fn f32_planes(x: &FlexTensor) -> (FlexTensor, [usize; 4]) {
    let x = x.to_contiguous();
    let s = x.layout().shape();
    let dims = [s[0], s[1], s[2], s[3]];
    (x, dims)
}

fn tensor(values: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(dims.to_vec())), DType::F32)
}

/// The custom operations.
#[backend_extension(Flex, Autodiff)]
pub trait HydraKernels: Backend {
    /// 5×5 max-pool, stride 1, padding 2: `[B, C, H, W]` → `[B, C, H, W]`.
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Bilinear resize, `align_corners = false`: `[B, C, H, W]` → `[B, C, oh, ow]`.
    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self>;
    /// ReLU6 of a `[B, C, H, W]` tensor.
    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl HydraKernels for Flex {
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, [b, c, h, w]) = f32_planes(&x);
        let (out, _) = cpu::max_pool5(x.storage::<f32>(), b * c, h, w, false);
        tensor(out, [b, c, h, w])
    }

    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self> {
        let (x, [b, c, h, w]) = f32_planes(&x);
        tensor(cpu::bilinear(x.storage::<f32>(), b * c, [h, w], [oh, ow]), [b, c, oh, ow])
    }

    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, dims) = f32_planes(&x);
        tensor(cpu::relu6(x.storage::<f32>()), dims)
    }
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
            let (g, dims) = f32_planes(&grad);
            grads.register::<Flex>(node.id, tensor(cpu::relu6_backward(y.storage::<f32>(), g.storage::<f32>()), dims));
        }
    }
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
            let gx = cpu::max_pool5_backward(g.storage::<f32>(), &argmax, b * c, h, w);
            grads.register::<Flex>(node.id, tensor(gx, [b, c, h, w]));
        }
    }
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
            let gx = cpu::bilinear_backward(g.storage::<f32>(), b * c, [h, w], out);
            grads.register::<Flex>(node.id, tensor(gx, [b, c, h, w]));
        }
    }
}

impl<C: CheckpointStrategy> HydraKernels for Autodiff<Flex, C> {
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xc, dims) = f32_planes(x.primitive());
                let [b, c, h, w] = dims;
                let (out, arg) = cpu::max_pool5(xc.storage::<f32>(), b * c, h, w, true);
                prep.finish((Arc::new(arg.expect("argmax")), dims), tensor(out, dims))
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::crp_max_pool(x.into_primitive())),
        }
    }

    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self> {
        match BilinearBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xc, dims) = f32_planes(x.primitive());
                let [b, c, h, w] = dims;
                let out = cpu::bilinear(xc.storage::<f32>(), b * c, [h, w], [oh, ow]);
                prep.finish((dims, [oh, ow]), tensor(out, [b, c, oh, ow]))
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::bilinear_resize(x.into_primitive(), oh, ow)),
        }
    }

    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match Relu6Backward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = <Flex as HydraKernels>::relu6(x.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as HydraKernels>::relu6(x.into_primitive())),
        }
    }
}
