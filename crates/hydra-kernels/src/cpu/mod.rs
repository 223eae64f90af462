//! Host kernels on contiguous f32 buffers, one file per operation family, each with its
//! backward pass where training needs one; parallel with rayon, inner loops compiled for the
//! widest vector unit found at run time (`multiversion!`). Every kernel computes what the
//! portable Burn path computes, most of them in PyTorch's arithmetic to the bit.
//!
//! - [`max_pool`]: the CRP's 5×5 stride-1 max-pool (separable, argmax for the backward);
//!   [`crp`]: the depthwise CRP of inference fused per channel plane; [`crp_train`]: the
//!   same for training, forward and backward;
//! - [`bilinear`]: bilinear resize (`align_corners = false`) and its adjoint;
//! - [`relu6`], [`affine`]: ReLU6 and the per-channel affine map (inference BatchNorm), also
//!   as the epilogues of the convolutions;
//! - [`batch_norm`]: BatchNorm with batch statistics (and the ReLU6 after it), forward and
//!   backward, its f64 sums in `batch_norm_sums`;
//! - [`softmax_ce`]: softmax cross-entropy; [`upsampled_ce`]: the same on logits upsampled on
//!   the fly;
//! - [`depthwise`]: depthwise 3×3 convolutions; `conv1x1`, `conv3x3` (with `winograd`) and
//!   `conv3x3_few_inputs`: the dense convolutions (with the `flex` feature: they use `gemm`);
//! - [`bf16`], [`conv1x1_bf16`] with [`amx`] and [`dpbf16`]: the dense 1×1 convolution of
//!   inference in bf16 (`crate::precision`); [`dot_rate`]: how fast this core does f32 and
//!   bf16 products;
//! - `inverted_residual`: MobileNetV2's block of inference fused per band of rows (expansion,
//!   depthwise, projection) so that the expanded tensor stays in cache;
//! - `buffers`: what several of them share.

pub mod affine;
#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod batch_norm;
mod batch_norm_sums;
pub mod bf16;
pub mod bilinear;
mod buffers;
#[cfg(feature = "flex")]
pub mod conv1x1;
#[cfg(target_arch = "x86_64")]
pub mod conv1x1_bf16;
#[cfg(feature = "flex")]
pub mod conv3x3;
#[cfg(feature = "flex")]
pub mod conv3x3_few_inputs;
pub mod crp;
pub mod crp_train;
pub mod depthwise;
#[cfg(feature = "flex")]
pub mod inverted_residual;
#[cfg(target_arch = "x86_64")]
pub mod dot_rate;
#[cfg(target_arch = "x86_64")]
pub mod dpbf16;
pub mod max_pool;
pub mod relu6;
pub mod softmax_ce;
pub mod upsampled_ce;
#[cfg(feature = "flex")]
pub mod winograd;
