//! MobileNetV2's inverted residual block of inference as one operation: on burn-flex, fused
//! per band of rows so that the expanded tensor never leaves the cache
//! ([`crate::cpu::inverted_residual`]).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// When [`inverted_residual`] fuses a block it can fuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    /// Where it gains: the expanded tensor is large (the default).
    Auto,
    /// Every block (tests: the fused kernel on every block of a network).
    Always,
    /// No block (measurements against the unfused layers).
    Never,
}

static FUSION: AtomicU8 = AtomicU8::new(0);
static FUSED_RUNS: AtomicU64 = AtomicU64::new(0);

/// How many blocks the fused kernel has run in this process (for tests and measurements to
/// know which path ran).
pub fn fused_runs() -> u64 {
    FUSED_RUNS.load(Ordering::Relaxed)
}

/// Set when blocks are fused, for the whole process. Only the time differs (and, for
/// [`Fusion::Always`], the last bits of the small late blocks: see [`inverted_residual`]).
pub fn set_fusion(f: Fusion) {
    FUSION.store(f as u8, Ordering::Relaxed);
}

/// The setting of [`set_fusion`].
pub fn fusion() -> Fusion {
    match FUSION.load(Ordering::Relaxed) {
        1 => Fusion::Always,
        2 => Fusion::Never,
        _ => Fusion::Auto,
    }
}

/// The inference-mode BatchNorm after a convolution as the per-channel affine map
/// `y · scale[c] + shift[c]`: `(scale, shift)`, `[C]` each.
pub type Affine = (Tensor<1>, Tensor<1>);

/// `relu6(expand) → relu6(depthwise) → project`, plus `x` if `residual`: `x [B, Cin, H, W]` →
/// `[B, Cout, ⌈H/s⌉, ⌈W/s⌉]`, `convs` the three convolutions and `affine()` their BatchNorms
/// (asked for only when the block is fused). One fused pass on burn-flex in f32 inference,
/// for a 1×1 expansion, a depthwise 3×3 (padding 1, stride 1 or 2) and a 1×1 projection, all
/// without bias, whose expanded tensor is large enough to gain
/// ([`crate::cpu::inverted_residual::worth_fusing`]): the same values as the three layers one
/// after the other, to the bit ([`set_fusion`] overrides the choice; forced onto the small
/// late blocks, their products over more than 512 inputs may differ in the last bits). Gives
/// the input back as `Err` otherwise (autodiff, another backend, bf16 inference, another
/// layout, a small block), for the caller to run the layers.
pub fn inverted_residual(x: Tensor<4>, convs: [&Conv2d; 3], affine: impl FnOnce() -> [Affine; 3], residual: bool) -> Result<Tensor<4>, Tensor<4>> {
    #[cfg(feature = "flex")]
    {
        use crate::conv::padded_by;
        use crate::flex::HydraKernels;
        let [expand, depthwise, project] = convs;
        let [b, cin, h, w] = x.dims();
        let [mid, ecin, ekh, ekw] = expand.weight.dims();
        let [dmid, dcin, dkh, dkw] = depthwise.weight.dims();
        let [cout, pcin, pkh, pkw] = project.weight.dims();
        let s = depthwise.stride[0];
        let plain = |c: &Conv2d| c.bias.is_none() && c.dilation == [1, 1];
        let pointwise = |c: &Conv2d| plain(c) && c.groups == 1 && c.stride == [1, 1] && padded_by(c, 0);
        let fits = ecin == cin && [ekh, ekw] == [1, 1] && pointwise(expand)
            && dmid == mid && dcin == 1 && [dkh, dkw] == [3, 3] && plain(depthwise) && depthwise.groups == mid
            && depthwise.stride == [s, s] && (s == 1 || s == 2) && padded_by(depthwise, 1)
            && pcin == mid && [pkh, pkw] == [1, 1] && pointwise(project)
            && (!residual || (s == 1 && cin == cout));
        let chosen = match fusion() {
            Fusion::Auto => crate::cpu::inverted_residual::worth_fusing(&crate::cpu::inverted_residual::Block { input: [b, cin, h, w], mid, cout, stride: s, residual }),
            Fusion::Always => true,
            Fusion::Never => false,
        };
        if fits && chosen && crate::on_flex(&x) && !x.device().is_autodiff() && crate::precision::precision() == crate::precision::Precision::F32 {
            let [(es, eh), (ds, dh), (ps, ph)] = affine();
            if [&es, &eh, &ds, &dh, &ps, &ph].iter().all(|t| t.dtype() == burn::tensor::DType::F32) {
                let d = |t: Tensor<1>| t.into_dispatch();
                let y = <burn::backend::Dispatch as HydraKernels>::inverted_residual(
                    x.into_dispatch(),
                    expand.weight.val().into_dispatch(), d(es), d(eh),
                    depthwise.weight.val().into_dispatch(), d(ds), d(dh),
                    project.weight.val().into_dispatch(), d(ps), d(ph),
                    s, residual,
                );
                FUSED_RUNS.fetch_add(1, Ordering::Relaxed);
                return Ok(Tensor::from_dispatch(y));
            }
        }
    }
    #[cfg(not(feature = "flex"))]
    let _ = (convs, affine, residual);
    Err(x)
}
