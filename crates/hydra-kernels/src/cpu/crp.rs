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
            // Whether `top` holds a NaN: checked once here, then found by each stage's
            // scale-and-add as it writes the next `top`.
            let mut nan = has_nan(top);
            for ws in weights {
                if nan {
                    pool_plane_nan(top, h, w, pooled, None);
                } else {
                    pool_plane_fast(top, h, w, pooled, None);
                }
                nan = scale_add_plane(pooled, ws[ch], top, acc);
            }
        });
    });
}

thread_local! {
    /// Each thread's `top` and pooled planes, kept from plane to plane (every value is written
    /// before it is read: `top` copied from the plane, `pooled` by the pool).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

multiversion!(scale_add_plane(pooled: &[f32], k: f32, top: &mut [f32], acc: &mut [f32]) -> bool {
    // `top = pooled · k; acc += top`, and whether the new `top` holds a NaN (an or over the
    // lanes, branch-free so that the loop stays vectorised).
    let mut nan = false;
    for ((t, a), &v) in top.iter_mut().zip(acc.iter_mut()).zip(pooled) {
        *t = v * k;
        *a = *a + *t;
        #[allow(clippy::eq_op)]
        {
            nan |= *t != *t;
        }
    }
    nan
});

#[cfg(test)]
mod tests {
    use super::*;

    /// 5×5 max-pool (padding −∞) where a NaN in the window wins, element by element.
    fn pool_reference(x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let mut out = vec![0f32; h * w];
        for y in 0..h {
            for xx in 0..w {
                let mut best = f32::NEG_INFINITY;
                for yy in y.saturating_sub(2)..(y + 3).min(h) {
                    for xw in xx.saturating_sub(2)..(xx + 3).min(w) {
                        let v = x[yy * w + xw];
                        if v.is_nan() || (!best.is_nan() && v > best) {
                            best = v;
                        }
                    }
                }
                out[y * w + xx] = best;
            }
        }
        out
    }

    /// A NaN that first appears inside the chain (∞ · 0 at the first stage) is carried into the
    /// later stages' pools: the fused kernel equals the stages one by one, element by element.
    #[test]
    fn a_nan_made_by_a_stage_reaches_the_later_pools() {
        let (c, h, w) = (2, 9, 13);
        let mut x: Vec<f32> = (0..c * h * w).map(|i| ((i * 37 % 101) as f32 - 50.0) / 10.0).collect();
        x[4 * w + 6] = f32::INFINITY; // channel 0: its first stage's weight is 0
        let weights = vec![vec![0.0, 0.5], vec![0.7, -1.5], vec![1.1, 0.25]];
        let mut fused = x.clone();
        crp_depthwise_in_place(&mut fused, &weights, c, h, w);
        for ch in 0..c {
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            let (mut acc, mut top) = (plane.to_vec(), plane.to_vec());
            for ws in &weights {
                top = pool_reference(&top, h, w).iter().map(|v| v * ws[ch]).collect();
                acc.iter_mut().zip(&top).for_each(|(a, t)| *a = *a + *t);
            }
            let got = &fused[ch * h * w..(ch + 1) * h * w];
            for (i, (a, e)) in got.iter().zip(&acc).enumerate() {
                assert!(a.to_bits() == e.to_bits() || (a.is_nan() && e.is_nan()), "channel {ch} at {i}: {a} vs {e}");
            }
            assert_eq!(got.iter().any(|v| v.is_nan()), ch == 0, "only channel 0 makes a NaN");
        }
    }
}
