//! MobileNetV2's inverted residual block of inference on burn-flex, fused
//! ([`crate::cpu::inverted_residual`]); under autodiff, and in bf16 inference (whose 1×1
//! products the fused kernel does not compute), the three layers one after the other.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::tensors::{f32_planes, tensor, values, vec1};
use super::{Ad, HydraKernels};
use crate::cpu::inverted_residual::{self as fused, Block, Layer};

/// A layer's weight, BatchNorm scale and shift.
pub(super) type LayerTensors<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The layers one after the other, on any backend with the kernels.
fn unfused<B: HydraKernels>(x: FloatTensor<B>, [e, d, p]: [LayerTensors<B>; 3], stride: usize, residual: bool) -> FloatTensor<B> {
    let y = B::conv1x1_affine(x.clone(), e.0, e.1, e.2, true);
    let y = B::depthwise3x3_affine(y, d.0, stride, d.1, d.2, true);
    let y = B::conv1x1_affine(y, p.0, p.1, p.2, false);
    if residual { B::float_add(x, y) } else { y }
}

/// [`HydraKernels::inverted_residual`] on burn-flex.
pub(super) fn inverted_residual(x: FlexTensor, layers: [LayerTensors<Flex>; 3], stride: usize, residual: bool) -> FlexTensor {
    if crate::precision::precision() != crate::precision::Precision::F32 {
        return unfused::<Flex>(x, layers, stride, residual);
    }
    let (xc, [b, cin, h, wd]) = f32_planes(&x);
    let v = layers.each_ref().map(|(w, s, t)| (values(w), vec1(s), vec1(t)));
    let layer = |i: usize| Layer { w: &v[i].0, scale: &v[i].1, shift: &v[i].2 };
    let (mid, cout) = (v[0].1.len(), v[2].1.len());
    let block = Block { input: [b, cin, h, wd], mid, cout, stride, residual };
    let y = fused::inverted_residual(xc.storage::<f32>(), block, layer(0), layer(1), layer(2));
    let (oh, ow) = (crate::cpu::depthwise::dw_out(h, stride), crate::cpu::depthwise::dw_out(wd, stride));
    tensor(y, [b, cout, oh, ow])
}

/// [`HydraKernels::inverted_residual`] on autodiff over burn-flex: the layers one after the
/// other (differentiable as each of them).
pub(super) fn inverted_residual_autodiff<C: CheckpointStrategy>(x: FloatTensor<Ad<C>>, layers: [LayerTensors<Ad<C>>; 3], stride: usize, residual: bool) -> FloatTensor<Ad<C>> {
    unfused::<Ad<C>>(x, layers, stride, residual)
}

