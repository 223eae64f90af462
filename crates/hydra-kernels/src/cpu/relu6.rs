//! ReLU6 on f32 buffers, forward (a copy or in place) and backward (in place), parallel in
//! chunks; and the clamp that every ReLU6 epilogue of the other kernels uses.

use rayon::prelude::*;

use super::buffers::CHUNK;

/// `min(max(t, 0), 6)` with NaN passing through, as PyTorch's hardtanh does: the one
/// definition of the clamp every ReLU6 kernel and epilogue uses.
#[inline(always)]
pub(crate) fn relu6_value(t: f32) -> f32 {
    if t < 0.0 { 0.0 } else if t > 6.0 { 6.0 } else { t }
}

multiversion!(pub(crate) add_relu6_row(row: &mut [f32], a: &[f32]) {
    // relu6(y + a) as the separate add and ReLU6 compute it (NaN passes through).
    for (y, &v) in row.iter_mut().zip(a) {
        *y = relu6_value(*y + v);
    }
});

multiversion!(relu6_slice(v: &mut [f32]) {
    for o in v.iter_mut() {
        *o = relu6_value(*o);
    }
});

/// ReLU6's backward for one element: `g` where `0 < y < 6`, else +0. Written with a bit
/// mask instead of a select, which the compiler may turn into unpredictable branches.
#[inline(always)]
pub(crate) fn relu6_pass(g: f32, y: f32) -> f32 {
    let keep = ((y > 0.0) & (y < 6.0)) as u32;
    f32::from_bits(g.to_bits() & keep.wrapping_neg())
}

multiversion!(relu6_backward_slice(y: &[f32], g: &mut [f32]) {
    for (gv, &v) in g.iter_mut().zip(y) {
        // PyTorch: the gradient passes where 0 < x < 6, i.e. where 0 < y < 6.
        *gv = relu6_pass(*gv, v);
    }
});

/// `min(max(x, 0), 6)` elementwise.
pub fn relu6(x: &[f32]) -> Vec<f32> {
    let mut out = x.to_vec();
    relu6_in_place(&mut out);
    out
}

/// [`relu6`] overwriting its input.
pub fn relu6_in_place(x: &mut [f32]) {
    x.par_chunks_mut(CHUNK).for_each(relu6_slice);
}

/// Gradient of [`relu6`] from its output `y` and the output gradient `g`, overwriting `g`.
pub fn relu6_backward_in_place(y: &[f32], g: &mut [f32]) {
    assert_eq!(y.len(), g.len(), "relu6_backward: sizes");
    g.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(g, y)| relu6_backward_slice(y, g));
}

/// `relu6(v · k)`: one rounded product, then the clamp, NaN passing through (a task head's
/// depthwise 1×1 and ReLU6 as PyTorch computes them one after the other).
#[cfg(feature = "flex")]
#[inline(always)]
pub(crate) fn scaled_relu6(v: f32, k: f32) -> f32 {
    relu6_value(v * k)
}
