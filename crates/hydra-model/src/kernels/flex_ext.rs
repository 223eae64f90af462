//! A Burn backend extension: hydra's CPU kernels (`cpu`, `conv1x1`, `conv3x3`,
//! `upsampled_ce`) as custom operations on burn-flex, with hand-written backward passes for
//! autodiff. It began with the CRP max-pool and the bilinear resize (burn-flex's generic
//! max-pool computes int64 indices per element with bounds checks in the inner loop, and its
//! strided copies along the last axis are slow); the convolutions, BatchNorm, ReLU6 and the
//! losses followed, each where profiling showed Burn's generic operation dominating.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Flex};
use burn::tensor::{Bytes, DType, Shape};
use burn_flex::{FlexTensor, Layout};

use super::{conv1x1, conv3x3, cpu, upsampled_ce};

fn f32_planes(x: &FlexTensor) -> (FlexTensor, [usize; 4]) {
    let x = x.to_contiguous();
    let s = x.layout().shape();
    let dims = [s[0], s[1], s[2], s[3]];
    (x, dims)
}

/// The f32 values of `x` to overwrite in place, when `x` owns its buffer alone and is laid
/// out contiguously from its start (an activation just produced); `None` otherwise.
fn owned_f32(x: &mut FlexTensor) -> Option<&mut [f32]> {
    if x.dtype() != DType::F32 || !x.is_contiguous() {
        return None;
    }
    let n = x.layout().shape().num_elements();
    if x.layout().contiguous_offsets() != Some((0, n)) || x.storage::<f32>().len() != n {
        return None;
    }
    x.try_storage_mut::<f32>()
}

/// `x` with `f` applied to its values: in place when [`owned_f32`] allows, else on a copy.
fn map_in_place(mut x: FlexTensor, f: impl FnOnce(&mut [f32], [usize; 4])) -> FlexTensor {
    let s = x.layout().shape();
    let dims = [s[0], s[1], s[2], s[3]];
    if let Some(v) = owned_f32(&mut x) {
        f(v, dims);
        return x;
    }
    let (xc, _) = f32_planes(&x);
    let mut v = xc.storage::<f32>().to_vec();
    f(&mut v, dims);
    tensor(v, dims)
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
    /// BatchNorm with batch statistics: (output, batch mean, biased batch variance); the
    /// statistics are not differentiated.
    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// Mean cross-entropy over pixels not labelled `ignore`: `logits [B, C, H, W]`, `labels
    /// [B, H, W]` → `[1]` (0 when no pixel is valid).
    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self>;
    /// [`cross_entropy`](HydraKernels::cross_entropy) of `logits [B, C, h, w]` upsampled
    /// (bilinear) to the labels' size `[B, H, W]`, without the upsampled tensor → `[1]`.
    fn upsampled_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self>;
    /// Depthwise 3×3 convolution, padding 1, stride 1 or 2: `x [B, C, H, W]`, `w [C, 1, 3, 3]`.
    fn depthwise3x3(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self>;
    /// Dense 3×3 convolution, stride 1, padding 1, no bias: `x [B, Cin, H, W]`,
    /// `w [Cout, Cin, 3, 3]` → `[B, Cout, H, W]`.
    fn conv3x3(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Dense 3×3 convolution, padding 1, stride 1 or 2, no bias, for few input channels:
    /// `x [B, Cin, H, W]`, `w [Cout, Cin, 3, 3]` → `[B, Cout, H', W']`.
    fn conv3x3_few_inputs(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self>;
    /// A task head: `relu6(x · pre[c])`, then a dense 3×3 convolution (stride 1, padding 1)
    /// with `w [Cout, Cin, 3, 3]` and `bias [Cout]`: `x [B, Cin, H, W]` → `[B, Cout, H, W]`.
    fn task_head(x: FloatTensor<Self>, pre: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Dense 1×1 convolution, no bias: `x [B, Cin, H, W]`, `w [Cout, Cin, 1, 1]` → `[B, Cout, H, W]`.
    fn conv1x1(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `relu6(conv1x1(x, w) + a)`, `a [B, Cout, H, W]`, fused on the CPU.
    fn conv1x1_add_relu6(x: FloatTensor<Self>, w: FloatTensor<Self>, a: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`conv1x1`](HydraKernels::conv1x1) followed by [`channel_affine`](HydraKernels::channel_affine)
    /// (inference-mode BatchNorm and ReLU6), fused on the CPU.
    fn conv1x1_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self>;
    /// [`depthwise3x3`](HydraKernels::depthwise3x3) followed by
    /// [`channel_affine`](HydraKernels::channel_affine), fused on the CPU.
    fn depthwise3x3_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self>;
    /// `x · scale[c] + shift[c]`, then ReLU6 if `relu6`: `x [B, C, H, W]`, `scale`, `shift` `[C]`.
    fn channel_affine(x: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self>;
    /// Depthwise Chained Residual Pooling without bias: `x [B, C, H, W]`, `w [stages, C]`;
    /// `top = x; per stage: top = maxpool5(top) · w[s]; x = x + top`.
    fn crp_depthwise(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `[H, W]` of labels `[B, H, W]`.
fn label_size(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    [s[1], s[2]]
}

fn labels_i64(t: &FlexTensor) -> Vec<i64> {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::I64 => t.storage::<i64>().to_vec(),
        DType::I32 => t.storage::<i32>().iter().map(|&v| v as i64).collect(),
        other => panic!("labels of dtype {other:?}"),
    }
}

/// The values in row-major order: borrowed when the tensor is exactly its buffer (a weight
/// as stored), a copy otherwise.
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    let n = t.layout().shape().num_elements();
    if t.dtype() == DType::F32 && t.is_contiguous() && t.layout().contiguous_offsets() == Some((0, n)) && t.storage::<f32>().len() == n {
        std::borrow::Cow::Borrowed(t.storage::<f32>())
    } else {
        std::borrow::Cow::Owned(vec1(t))
    }
}

/// A copy of the values, contiguous.
fn vec1(t: &FlexTensor) -> Vec<f32> {
    t.to_contiguous().storage::<f32>().to_vec()
}

fn tensor1(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(vec![n])), DType::F32)
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
        map_in_place(x, |v, _| cpu::relu6_in_place(v))
    }

    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, dims) = f32_planes(&x);
        let [b, c, h, w] = dims;
        let (y, m, v) = cpu::batch_norm_train(x.storage::<f32>(), &vec1(&gamma), &vec1(&beta), [b, c, h * w], epsilon);
        (tensor(y, dims), tensor1(m), tensor1(v))
    }

    fn depthwise3x3(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        let (x, [b, c, h, wd]) = f32_planes(&x);
        let (oh, ow) = (cpu::dw_out(h, stride), cpu::dw_out(wd, stride));
        tensor(cpu::depthwise3x3(x.storage::<f32>(), &values(&w), [b, c, h, wd], stride, None), [b, c, oh, ow])
    }

    fn conv3x3(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, dims) = f32_planes(&x);
        let cout = w.layout().shape()[0];
        let [b, _, h, wd] = dims;
        tensor(conv3x3::conv3x3(x.storage::<f32>(), &values(&w), dims, cout, None, None), [b, cout, h, wd])
    }

    fn task_head(x: FloatTensor<Self>, pre: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, dims) = f32_planes(&x);
        let cout = w.layout().shape()[0];
        let [b, _, h, wd] = dims;
        let y = conv3x3::conv3x3(x.storage::<f32>(), &values(&w), dims, cout, Some(&vec1(&pre)), Some(&vec1(&bias)));
        tensor(y, [b, cout, h, wd])
    }

    fn conv3x3_few_inputs(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        let (x, dims) = f32_planes(&x);
        let [b, _, h, wd] = dims;
        let cout = w.layout().shape()[0];
        let y = conv3x3::conv3x3_few_inputs(x.storage::<f32>(), &values(&w), dims, cout, stride);
        tensor(y, [b, cout, cpu::dw_out(h, stride), cpu::dw_out(wd, stride)])
    }

    fn conv1x1(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, [b, cin, h, wd]) = f32_planes(&x);
        let cout = w.layout().shape()[0];
        tensor(conv1x1::conv1x1(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, None, None), [b, cout, h, wd])
    }

    fn conv1x1_add_relu6(x: FloatTensor<Self>, w: FloatTensor<Self>, a: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, [b, cin, h, wd]) = f32_planes(&x);
        let (a, _) = f32_planes(&a);
        let cout = w.layout().shape()[0];
        tensor(conv1x1::conv1x1(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, None, Some(a.storage::<f32>())), [b, cout, h, wd])
    }

    fn conv1x1_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        let (x, [b, cin, h, wd]) = f32_planes(&x);
        let cout = w.layout().shape()[0];
        let (scale, shift) = (vec1(&scale), vec1(&shift));
        let y = conv1x1::conv1x1(x.storage::<f32>(), &values(&w), [b, cin, h * wd], cout, Some((&scale, &shift, relu6)), None);
        tensor(y, [b, cout, h, wd])
    }

    fn depthwise3x3_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        let (x, [b, c, h, wd]) = f32_planes(&x);
        let (oh, ow) = (cpu::dw_out(h, stride), cpu::dw_out(wd, stride));
        let (scale, shift) = (vec1(&scale), vec1(&shift));
        let y = cpu::depthwise3x3(x.storage::<f32>(), &values(&w), [b, c, h, wd], stride, Some((&scale, &shift, relu6)));
        tensor(y, [b, c, oh, ow])
    }

    fn channel_affine(x: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        let (scale, shift) = (vec1(&scale), vec1(&shift));
        map_in_place(x, |v, [b, c, h, w]| cpu::channel_affine_in_place(v, &scale, &shift, [b, c, h * w], relu6))
    }

    fn crp_depthwise(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let c = x.layout().shape()[1];
        let weights: Vec<Vec<f32>> = vec1(&w).chunks(c).map(<[f32]>::to_vec).collect();
        // In place when the input is this operation's alone (as in the decoder), else on a copy.
        map_in_place(x, |v, [_, c, h, wd]| cpu::crp_depthwise_in_place(v, &weights, c, h, wd))
    }

    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        let (x, [b, c, h, w]) = f32_planes(&logits);
        let (sum, count) = cpu::cross_entropy(x.storage::<f32>(), &labels_i64(&labels), [b, c, h * w], ignore);
        tensor1(vec![(sum / count.max(1) as f64) as f32])
    }

    fn upsampled_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        let (x, dims) = f32_planes(&logits);
        let size = label_size(&labels);
        let (sum, count) = upsampled_ce::upsampled_cross_entropy(x.storage::<f32>(), &labels_i64(&labels), dims, size, ignore);
        tensor1(vec![(sum / count.max(1) as f64) as f32])
    }
}

/// Registers the gradients of an (input, weight) operation for those parents that are
/// tracked: `dx` (if computed) with its dims, and `dw` with the weight's dims.
fn register_input_weight(
    grads: &mut Gradients,
    [node_x, node_w]: [Option<NodeId>; 2],
    dx: Option<(Vec<f32>, [usize; 4])>,
    (dw, w_dims): (Vec<f32>, [usize; 4]),
) {
    if let (Some(node), Some((dx, dims))) = (node_x, dx) {
        grads.register::<Flex>(node, tensor(dx, dims));
    }
    if let Some(node) = node_w {
        grads.register::<Flex>(node, tensor(dw, w_dims));
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// Input, weight values, input dims, stride.
    type State = (FlexTensor, Vec<f32>, [usize; 4], usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w, dims, stride) = ops.state;
        let (g, _) = f32_planes(&grad);
        let (dx, dw) = cpu::depthwise3x3_backward(x.storage::<f32>(), &w, g.storage::<f32>(), dims, stride);
        register_input_weight(grads, [node_x, node_w], Some((dx, dims)), (dw, [dims[1], 1, 3, 3]));
    }
}

#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    /// Input, weight values, input dims, output channels.
    type State = (FlexTensor, Vec<f32>, [usize; 4], usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w, dims, cout) = ops.state;
        let (g, _) = f32_planes(&grad);
        let (dx, dw) = conv3x3::conv3x3_backward(x.storage::<f32>(), &w, g.storage::<f32>(), dims, cout, node_x.is_some());
        register_input_weight(grads, [node_x, node_w], dx.map(|dx| (dx, dims)), (dw, [cout, dims[1], 3, 3]));
    }
}

#[derive(Debug)]
struct Conv1x1Backward;

impl Backward<Flex, 2> for Conv1x1Backward {
    /// Input, weight values, input dims, output channels.
    type State = (FlexTensor, Vec<f32>, [usize; 4], usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w, dims, cout) = ops.state;
        let [b, cin, h, wd] = dims;
        let (g, _) = f32_planes(&grad);
        let (dx, dw) = conv1x1::conv1x1_backward(x.storage::<f32>(), &w, g.storage::<f32>(), [b, cin, h * wd], cout, node_x.is_some());
        register_input_weight(grads, [node_x, node_w], dx.map(|dx| (dx, dims)), (dw, [cout, cin, 1, 1]));
    }
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
            let g = cpu::cross_entropy_backward(x.storage::<f32>(), &labels, [dims[0], dims[1], dims[2] * dims[3]], ignore, count, scale);
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

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// Input, gamma, batch mean, batch variance, epsilon.
    type State = (FlexTensor, Vec<f32>, Vec<f32>, Vec<f32>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, mean, var, eps) = ops.state;
        let (g, dims) = f32_planes(&grad);
        let [b, c, h, w] = dims;
        let (dx, dgamma, dbeta) = cpu::batch_norm_train_backward(x.storage::<f32>(), &gamma, &mean, &var, g.storage::<f32>(), [b, c, h * w], eps);
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
            grads.register::<Flex>(node.id, map_in_place(grad, |g, _| cpu::relu6_backward_in_place(y.storage::<f32>(), g)));
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

    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let gamma_host = vec1(gamma.primitive());
        let xc = x.primitive().to_contiguous();
        let (y, m, v) = <Flex as HydraKernels>::batch_norm_train(xc.clone(), gamma.into_primitive(), beta.into_primitive(), epsilon);
        let (mean, var) = (vec1(&m), vec1(&v));
        let out = match BatchNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xc, gamma_host, mean, var, epsilon), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (out, <Self as burn::backend::AutodiffBackend>::from_inner(m), <Self as burn::backend::AutodiffBackend>::from_inner(v))
    }

    fn depthwise3x3(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        let nodes = [x.node(), w.node()];
        let wv = vec1(w.primitive());
        let (xc, dims) = f32_planes(&x.into_primitive());
        let [b, c, h, wd] = dims;
        let (oh, ow) = (cpu::dw_out(h, stride), cpu::dw_out(wd, stride));
        let y = tensor(cpu::depthwise3x3(xc.storage::<f32>(), &wv, dims, stride, None), [b, c, oh, ow]);
        match DepthwiseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xc, wv, dims, stride), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn conv3x3(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
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

    /// Differentiable as Autodiff's convolution.
    fn conv3x3_few_inputs(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        use burn::backend::ops::ModuleOps;
        let options = burn::backend::ops::ConvOptions::new([stride, stride], [1, 1], [1, 1], 1);
        Self::conv2d(x, w, None, options)
    }

    fn conv1x1(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
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

    /// The steps one after the other (differentiable as each of them).
    fn task_head(x: FloatTensor<Self>, pre: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        let c = pre.primitive().layout().shape()[0];
        let cout = bias.primitive().layout().shape()[0];
        let t = <Self as HydraKernels>::relu6(Self::float_mul(x, Self::float_reshape(pre, Shape::from(vec![1, c, 1, 1]))));
        let y = <Self as HydraKernels>::conv3x3(t, w);
        Self::float_add(y, Self::float_reshape(bias, Shape::from(vec![1, cout, 1, 1])))
    }

    /// The three operations one after the other (differentiable as each of them).
    fn conv1x1_add_relu6(x: FloatTensor<Self>, w: FloatTensor<Self>, a: FloatTensor<Self>) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        let y = <Self as HydraKernels>::conv1x1(x, w);
        <Self as HydraKernels>::relu6(Self::float_add(y, a))
    }

    /// The two operations one after the other (differentiable as each of them).
    fn conv1x1_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        let y = <Self as HydraKernels>::conv1x1(x, w);
        <Self as HydraKernels>::channel_affine(y, scale, shift, relu6)
    }

    /// The two operations one after the other (differentiable as each of them).
    fn depthwise3x3_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        let y = <Self as HydraKernels>::depthwise3x3(x, w, stride);
        <Self as HydraKernels>::channel_affine(y, scale, shift, relu6)
    }

    /// Differentiable through Autodiff's own multiply and add (and hydra's ReLU6).
    fn channel_affine(x: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        let c = scale.primitive().layout().shape()[0];
        let shape = Shape::from(vec![1, c, 1, 1]);
        let scaled = Self::float_mul(x, Self::float_reshape(scale, shape.clone()));
        let y = Self::float_add(scaled, Self::float_reshape(shift, shape));
        if relu6 { <Self as HydraKernels>::relu6(y) } else { y }
    }

    /// Differentiable as its stages: hydra's max-pool, Autodiff's multiply and add.
    fn crp_depthwise(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        let s = w.primitive().layout().shape();
        let (stages, c) = (s[0], s[1]);
        let mut acc = x.clone();
        let mut top = x;
        for i in 0..stages {
            let ws = Self::float_reshape(Self::float_slice(w.clone(), &[burn::tensor::Slice::from(i..i + 1)]), Shape::from(vec![1, c, 1, 1]));
            top = Self::float_mul(<Self as HydraKernels>::crp_max_pool(top), ws);
            acc = Self::float_add(acc, top.clone());
        }
        acc
    }

    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        let node = logits.node();
        let (x, [b, c, h, w]) = f32_planes(&logits.into_primitive());
        let labels = Arc::new(labels_i64(&labels));
        let (sum, count) = cpu::cross_entropy(x.storage::<f32>(), &labels, [b, c, h * w], ignore);
        let loss = tensor1(vec![(sum / count.max(1) as f64) as f32]);
        match CrossEntropyBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, labels, ignore, count), loss),
            OpsKind::UnTracked(prep) => prep.finish(loss),
        }
    }

    fn upsampled_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
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
}
