//! The per-channel affine map `y · scale[c] + shift[c]` (one fused multiply-add, then ReLU6 if
//! asked): inference-mode BatchNorm as its own pass or as the epilogue of a convolution.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::buffers::CHUNK;
use super::relu6::relu6_value;

/// The sizes a dense 1×1 convolution's buffers must have (`x [B, Cin, HW]`, `w [Cout, Cin]`,
/// the epilogue's `[Cout]`, the addend `[B, Cout, HW]`), asserted for the f32 and bf16 kernels.
pub(crate) fn assert_conv1x1_sizes(what: &str, x: &[f32], w: &[f32], [b, cin, hw]: [usize; 3], cout: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>) {
    assert_eq!(x.len(), b * cin * hw, "{what}: input size");
    assert_eq!(w.len(), cout * cin, "{what}: weight size");
    if let Some((scale, shift, _)) = epilogue {
        assert!(scale.len() == cout && shift.len() == cout, "{what}: epilogue size");
    }
    if let Some(a) = add_relu6 {
        assert_eq!(a.len(), b * cout * hw, "{what}: addend size");
    }
}

/// A per-output-channel epilogue of a convolution: `(scale, shift, relu6)`, applied as
/// [`affine_plane`] to each output row while it is still in cache. `y · scale + shift` is one
/// fused multiply-add, rounded once, as PyTorch's CPU BatchNorm computes it.
pub type Epilogue<'a> = Option<(&'a [f32], &'a [f32], bool)>;

multiversion!(pub(crate) affine_plane(v: &mut [f32], scale: f32, shift: f32, relu6: bool) {
    if relu6 {
        for o in v.iter_mut() {
            let y = o.mul_add(scale, shift);
            *o = relu6_value(y);
        }
    } else {
        for o in v.iter_mut() {
            *o = o.mul_add(scale, shift);
        }
    }
});

multiversion!(pub(super) affine_plane_into(src: &[f32], scale: f32, shift: f32, relu6: bool, dst: &mut [MaybeUninit<f32>]) {
    // The arithmetic of `affine_plane`, from `src` into `dst`.
    assert!(src.len() >= dst.len(), "affine_plane_into: sizes");
    if relu6 {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = MaybeUninit::new(relu6_value(v.mul_add(scale, shift)));
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = MaybeUninit::new(v.mul_add(scale, shift));
        }
    }
});

/// `y = x · scale[c] + shift[c]` per channel of a `[B, C, HW]` buffer, then ReLU6 if asked
/// (NaN passes through), overwriting `x`: inference-mode BatchNorm and its activation in one
/// pass.
pub fn channel_affine_in_place(x: &mut [f32], scale: &[f32], shift: &[f32], [_b, c, hw]: [usize; 3], relu6: bool) {
    if hw == 0 {
        return;
    }
    let planes_per_task = CHUNK.div_ceil(hw).max(1);
    x.par_chunks_mut(hw)
        .enumerate()
        .with_min_len(planes_per_task)
        .for_each(|(p, v)| affine_plane(v, scale[p % c], shift[p % c], relu6));
}
