//! Moving values between burn-flex tensors and the host kernels' f32 buffers (contiguous
//! planes, in place where a tensor's buffer is its own, labels as i64), and the backward pass
//! shared by the (input, weight) operations.

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::autodiff::NodeId;
use burn::backend::Flex;
use burn::tensor::{Bytes, DType, Shape};
use burn_flex::{FlexTensor, Layout};

/// `x` `[B, C, H, W]` laid out contiguously, and its dims.
pub(super) fn f32_planes(x: &FlexTensor) -> (FlexTensor, [usize; 4]) {
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
pub(super) fn map_in_place(mut x: FlexTensor, f: impl FnOnce(&mut [f32], [usize; 4])) -> FlexTensor {
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

/// A contiguous f32 tensor of `dims` holding `values`.
pub(super) fn tensor(values: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(dims.to_vec())), DType::F32)
}

/// `[H, W]` of labels `[B, H, W]`.
pub(super) fn label_size(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    [s[1], s[2]]
}

/// The labels `[B, H, W]` as i64 values (from i64 or i32 tensors).
pub(super) fn labels_i64(t: &FlexTensor) -> Vec<i64> {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::I64 => t.storage::<i64>().to_vec(),
        DType::I32 => t.storage::<i32>().iter().map(|&v| v as i64).collect(),
        other => panic!("labels of dtype {other:?}"),
    }
}

/// The values in row-major order: borrowed when the tensor is exactly its buffer (a weight
/// as stored), a copy otherwise.
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    let n = t.layout().shape().num_elements();
    if t.dtype() == DType::F32 && t.is_contiguous() && t.layout().contiguous_offsets() == Some((0, n)) && t.storage::<f32>().len() == n {
        std::borrow::Cow::Borrowed(t.storage::<f32>())
    } else {
        std::borrow::Cow::Owned(vec1(t))
    }
}

/// A copy of the values, contiguous.
pub(super) fn vec1(t: &FlexTensor) -> Vec<f32> {
    t.to_contiguous().storage::<f32>().to_vec()
}

/// A contiguous f32 tensor `[N]` holding `values`.
pub(super) fn tensor1(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(vec![n])), DType::F32)
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

/// What the backward pass of an (input, weight) operation keeps: the input, the weight's
/// values, the input's dims, and the operation's stride or output channels.
pub(super) type InputWeightState = (FlexTensor, Vec<f32>, [usize; 4], usize);

/// The backward pass of an (input, weight) operation: `gradients(x, w, dy, dims, k, want_dx)`
/// (the input, the weight's values, the output gradient, the input's dims, the stride or
/// output channels, and whether the input is tracked) gives `dx` (if computed) and `dw` with
/// the weight's dims, registered for the tracked parents.
pub(super) fn input_weight_backward(
    ops: Ops<InputWeightState, 2>,
    grads: &mut Gradients,
    gradients: impl FnOnce(&[f32], &[f32], &[f32], [usize; 4], usize, bool) -> (Option<Vec<f32>>, (Vec<f32>, [usize; 4])),
) {
    let [node_x, node_w] = ops.parents.map(|n| n.map(|n| n.id));
    let grad = grads.consume::<Flex>(&ops.node);
    let (x, w, dims, k) = ops.state;
    let (g, _) = f32_planes(&grad);
    let (dx, dw) = gradients(x.storage::<f32>(), &w, g.storage::<f32>(), dims, k, node_x.is_some());
    register_input_weight(grads, [node_x, node_w], dx.map(|dx| (dx, dims)), dw);
}
