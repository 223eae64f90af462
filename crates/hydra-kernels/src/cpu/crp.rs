//! The depthwise Chained Residual Pooling of inference fused per channel plane: every stage's
//! max-pool ([`super::max_pool`]), scale and sum while the plane stays in cache.

use rayon::prelude::*;

use super::buffers::with_scratch;
use super::max_pool::{has_nan, pool_plane_fast, pool_plane_nan};

/// The depthwise Chained Residual Pooling of inference, fused per channel plane (which stays
/// in cache through all stages instead of streaming the whole tensor seven times per stage):
/// `top = x; for each stage s: top = maxpool5(top) · w[s][c]; x = x + top`. The same f32
/// operations in the same order as the unfused network, so the same result to the bit.
/// `x: [planes = B·C, h, w]`, overwritten by the result; `weights: [stages][C]`.
pub fn crp_depthwise_in_place(x: &mut [f32], weights: &[Vec<f32>], c: usize, h: usize, w: usize) {
    let n = h * w;
    if n == 0 {
        return;
    }
    x.par_chunks_mut(n).enumerate().for_each(|(p, acc)| {
        let ch = p % c;
        with_scratch(&SCRATCH, 2 * n, |scratch| {
            let (top, pooled) = scratch.split_at_mut(n);
            top.copy_from_slice(acc);
            for ws in weights {
                if has_nan(top) {
                    pool_plane_nan(top, h, w, pooled, None);
                } else {
                    pool_plane_fast(top, h, w, pooled, None);
                }
                scale_add_plane(pooled, ws[ch], top, acc);
            }
        });
    });
}

thread_local! {
    /// Each thread's `top` and pooled planes, kept from plane to plane (every value is written
    /// before it is read: `top` copied from the plane, `pooled` by the pool).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

multiversion!(scale_add_plane(pooled: &[f32], k: f32, top: &mut [f32], acc: &mut [f32]) {
    for ((t, a), &v) in top.iter_mut().zip(acc.iter_mut()).zip(pooled) {
        *t = v * k;
        *a = *a + *t;
    }
});
