//! A Burn backend extension: hydra's host kernels ([`crate::cpu`]) as custom operations on
//! burn-flex, with hand-written backward passes for autodiff. It began with the CRP max-pool
//! and the bilinear resize (burn-flex's generic max-pool computes int64 indices per element
//! with bounds checks in the inner loop, and its strided copies along the last axis are
//! slow); the convolutions, BatchNorm, ReLU6 and the losses followed, each where profiling
//! showed Burn's generic operation dominating.
//!
//! This file declares the operations ([`HydraKernels`], one declaration as the
//! `backend_extension` macro wants it) and routes each, on burn-flex and on autodiff over
//! burn-flex, to its family's file: that file holds the burn-flex forward, the backward pass
//! and the autodiff forward. [`tensors`] moves values between tensors and host buffers.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Flex};

mod affine;
mod batch_norm;
mod bilinear;
mod conv1x1;
mod conv3x3;
mod cross_entropy;
mod crp;
mod depthwise;
mod inverted_residual;
mod max_pool;
mod relu6;
mod tensors;


/// The custom operations.
#[backend_extension(Flex, Autodiff)]
pub trait HydraKernels: Backend {
    /// 5×5 max-pool, stride 1, padding 2: `[B, C, H, W]` → `[B, C, H, W]`.
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Bilinear resize, `align_corners = false`: `[B, C, H, W]` → `[B, C, oh, ow]`.
    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self>;
    /// ReLU6 of a `[B, C, H, W]` tensor.
    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// BatchNorm with batch statistics, then ReLU6 if `relu6`: (output, batch mean, biased
    /// batch variance); the statistics are not differentiated.
    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu6: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
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
    /// MobileNetV2's inverted residual block of inference: 1×1 expansion `ew [mid, Cin, 1, 1]`
    /// with its BatchNorm (`es`, `eh` `[mid]`) and ReLU6, depthwise 3×3 `dw [mid, 1, 3, 3]`
    /// (stride `stride`, padding 1) with `ds`, `dh` and ReLU6, 1×1 projection `pw [Cout, mid,
    /// 1, 1]` with `ps`, `ph`, plus `x` if `residual`: `x [B, Cin, H, W]` → `[B, Cout, H', W']`.
    /// Fused per band of rows on the CPU.
    #[allow(clippy::too_many_arguments)]
    fn inverted_residual(
        x: FloatTensor<Self>,
        ew: FloatTensor<Self>, es: FloatTensor<Self>, eh: FloatTensor<Self>,
        dw: FloatTensor<Self>, ds: FloatTensor<Self>, dh: FloatTensor<Self>,
        pw: FloatTensor<Self>, ps: FloatTensor<Self>, ph: FloatTensor<Self>,
        stride: usize, residual: bool,
    ) -> FloatTensor<Self>;
}
/// Autodiff over burn-flex with the checkpointing strategy `C`.
type Ad<C> = Autodiff<Flex, C>;

impl HydraKernels for Flex {
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        max_pool::crp_max_pool(x)
    }

    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self> {
        bilinear::bilinear_resize(x, oh, ow)
    }

    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        relu6::relu6(x)
    }

    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu6: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm::batch_norm_train(x, gamma, beta, epsilon, relu6)
    }

    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        cross_entropy::cross_entropy(logits, labels, ignore)
    }

    fn upsampled_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        cross_entropy::upsampled_cross_entropy(logits, labels, ignore)
    }

    fn depthwise3x3(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        depthwise::depthwise3x3(x, w, stride)
    }

    fn conv3x3(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        conv3x3::conv3x3(x, w)
    }

    fn conv3x3_few_inputs(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        conv3x3::conv3x3_few_inputs(x, w, stride)
    }

    fn task_head(x: FloatTensor<Self>, pre: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        conv3x3::task_head(x, pre, w, bias)
    }

    fn conv1x1(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        conv1x1::conv1x1(x, w)
    }

    fn conv1x1_add_relu6(x: FloatTensor<Self>, w: FloatTensor<Self>, a: FloatTensor<Self>) -> FloatTensor<Self> {
        conv1x1::conv1x1_add_relu6(x, w, a)
    }

    fn conv1x1_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        conv1x1::conv1x1_affine(x, w, scale, shift, relu6)
    }

    fn depthwise3x3_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        depthwise::depthwise3x3_affine(x, w, stride, scale, shift, relu6)
    }

    fn channel_affine(x: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        affine::channel_affine(x, scale, shift, relu6)
    }

    fn crp_depthwise(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        crp::crp_depthwise(x, w)
    }

    fn inverted_residual(
        x: FloatTensor<Self>,
        ew: FloatTensor<Self>, es: FloatTensor<Self>, eh: FloatTensor<Self>,
        dw: FloatTensor<Self>, ds: FloatTensor<Self>, dh: FloatTensor<Self>,
        pw: FloatTensor<Self>, ps: FloatTensor<Self>, ph: FloatTensor<Self>,
        stride: usize, residual: bool,
    ) -> FloatTensor<Self> {
        inverted_residual::inverted_residual(x, [(ew, es, eh), (dw, ds, dh), (pw, ps, ph)], stride, residual)
    }
}

impl<C: CheckpointStrategy> HydraKernels for Autodiff<Flex, C> {
    fn crp_max_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        max_pool::crp_max_pool_autodiff::<C>(x)
    }

    fn bilinear_resize(x: FloatTensor<Self>, oh: usize, ow: usize) -> FloatTensor<Self> {
        bilinear::bilinear_resize_autodiff::<C>(x, oh, ow)
    }

    fn relu6(x: FloatTensor<Self>) -> FloatTensor<Self> {
        relu6::relu6_autodiff::<C>(x)
    }

    fn batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu6: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm::batch_norm_train_autodiff::<C>(x, gamma, beta, epsilon, relu6)
    }

    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        cross_entropy::cross_entropy_autodiff::<C>(logits, labels, ignore)
    }

    fn upsampled_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore: i64) -> FloatTensor<Self> {
        cross_entropy::upsampled_cross_entropy_autodiff::<C>(logits, labels, ignore)
    }

    fn depthwise3x3(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        depthwise::depthwise3x3_autodiff::<C>(x, w, stride)
    }

    fn conv3x3(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        conv3x3::conv3x3_autodiff::<C>(x, w)
    }

    fn conv3x3_few_inputs(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        conv3x3::conv3x3_few_inputs_autodiff::<C>(x, w, stride)
    }

    fn task_head(x: FloatTensor<Self>, pre: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        conv3x3::task_head_autodiff::<C>(x, pre, w, bias)
    }

    fn conv1x1(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        conv1x1::conv1x1_autodiff::<C>(x, w)
    }

    fn conv1x1_add_relu6(x: FloatTensor<Self>, w: FloatTensor<Self>, a: FloatTensor<Self>) -> FloatTensor<Self> {
        conv1x1::conv1x1_add_relu6_autodiff::<C>(x, w, a)
    }

    fn conv1x1_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        conv1x1::conv1x1_affine_autodiff::<C>(x, w, scale, shift, relu6)
    }

    fn depthwise3x3_affine(x: FloatTensor<Self>, w: FloatTensor<Self>, stride: usize, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        depthwise::depthwise3x3_affine_autodiff::<C>(x, w, stride, scale, shift, relu6)
    }

    fn channel_affine(x: FloatTensor<Self>, scale: FloatTensor<Self>, shift: FloatTensor<Self>, relu6: bool) -> FloatTensor<Self> {
        affine::channel_affine_autodiff::<C>(x, scale, shift, relu6)
    }

    fn crp_depthwise(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        crp::crp_depthwise_autodiff::<C>(x, w)
    }

    fn inverted_residual(
        x: FloatTensor<Self>,
        ew: FloatTensor<Self>, es: FloatTensor<Self>, eh: FloatTensor<Self>,
        dw: FloatTensor<Self>, ds: FloatTensor<Self>, dh: FloatTensor<Self>,
        pw: FloatTensor<Self>, ps: FloatTensor<Self>, ph: FloatTensor<Self>,
        stride: usize, residual: bool,
    ) -> FloatTensor<Self> {
        inverted_residual::inverted_residual_autodiff::<C>(x, [(ew, es, eh), (dw, ds, dh), (pw, ps, ph)], stride, residual)
    }
}
