//! Bilinear resizing with PyTorch's `align_corners = False` semantics, on every backend.
//!
//! Burn's `interpolate` defaults to `align_corners = true`, and its backward is missing on the
//! CubeCL backends (wgpu, cuda). This resize is built from `select` (gather) along one axis at
//! a time, whose forward and backward exist everywhere, and reproduces PyTorch's index and
//! weight arithmetic in f32 (`src = max(scale · (dst + 0.5) − 0.5, 0)`, `scale = in / out`),
//! interpolating along the width first, then the height, as PyTorch's CPU kernel does.
//! On burn-flex, [`resize_bilinear`] runs hydra's kernel ([`crate::cpu::bilinear`]) instead.

use burn::prelude::*;
use burn::tensor::Int;

#[cfg(feature = "flex")]
use crate::on_flex;

/// Source indices and weights of linear interpolation along one axis: for each output
/// position, `(i0, i1, λ0, λ1)` with `out = λ0 · in[i0] + λ1 · in[i1]`.
pub fn linear_taps(n_in: usize, n_out: usize) -> (Vec<i64>, Vec<i64>, Vec<f32>, Vec<f32>) {
    let scale = n_in as f32 / n_out as f32;
    let mut i0 = Vec::with_capacity(n_out);
    let mut i1 = Vec::with_capacity(n_out);
    let mut l0 = Vec::with_capacity(n_out);
    let mut l1 = Vec::with_capacity(n_out);
    for dst in 0..n_out {
        let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
        let lo = (src as usize).min(n_in - 1);
        let hi = if lo < n_in - 1 { lo + 1 } else { lo };
        let lambda1 = (src - lo as f32).clamp(0.0, 1.0);
        i0.push(lo as i64);
        i1.push(hi as i64);
        l0.push(1.0 - lambda1);
        l1.push(lambda1);
    }
    (i0, i1, l0, l1)
}

fn along(x: Tensor<4>, dim: usize, n_out: usize) -> Tensor<4> {
    let n_in = x.dims()[dim];
    let device = x.device();
    let (i0, i1, l0, l1) = linear_taps(n_in, n_out);
    let idx = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n_out]), &device);
    let mut wshape = [1usize; 4];
    wshape[dim] = n_out;
    let w = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, wshape), &device);
    let a = x.clone().select(dim, idx(i0)) * w(l0);
    let b = x.select(dim, idx(i1)) * w(l1);
    a + b
}

/// Resize `x: [B, C, H, W]` to `[B, C, oh, ow]` bilinearly, `align_corners = false`. Uses
/// hydra's kernel on the CPU backend ([`crate::cpu::bilinear`]) and
/// [`resize_bilinear_portable`] elsewhere.
pub fn resize_bilinear(x: Tensor<4>, [oh, ow]: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == [oh, ow] {
        return x;
    }
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use crate::flex::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::bilinear_resize(x.into_dispatch(), oh, ow));
    }
    resize_bilinear_portable(x, [oh, ow])
}

/// The same resize from `select`, `mul` and `add` (any backend, differentiable everywhere).
pub fn resize_bilinear_portable(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let x = if w != size[1] { along(x, 3, size[1]) } else { x };
    if h != size[0] { along(x, 2, size[0]) } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_match_pytorch_formula_for_2x_upsampling() {
        // PyTorch, in=2, out=4: src = 0.5*(d+0.5)-0.5 = -0.25, 0.25, 0.75, 1.25 → clamped at 0.
        let (i0, i1, l0, l1) = linear_taps(2, 4);
        assert_eq!(i0, vec![0, 0, 0, 1]);
        assert_eq!(i1, vec![1, 1, 1, 1]);
        assert_eq!(l1, vec![0.0, 0.25, 0.75, 0.25]);
        assert_eq!(l0, vec![1.0, 0.75, 0.25, 0.75]);
    }

    #[test]
    fn taps_for_downsampling_pick_between_pixels() {
        // in=4, out=2: scale 2, src = 2*(d+0.5)-0.5 = 0.5, 2.5.
        let (i0, i1, _, l1) = linear_taps(4, 2);
        assert_eq!(i0, vec![0, 2]);
        assert_eq!(i1, vec![1, 3]);
        assert_eq!(l1, vec![0.5, 0.5]);
    }
}
