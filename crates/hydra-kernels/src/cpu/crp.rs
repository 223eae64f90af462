//! The depthwise Chained Residual Pooling of inference fused per channel plane: every stage's
//! max-pool ([`super::max_pool`]), scale and sum while the plane stays in cache.

use rayon::prelude::*;

use super::buffers::with_scratch;
use super::max_pool::{column_maxima, has_nan, pool_plane_fast, pool_plane_nan, row_maxima};

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
        let ks: Vec<f32> = weights.iter().map(|ws| ws[p % c]).collect();
        crp_plane(acc, &ks, h, w);
    });
}

/// One plane of [`crp_depthwise_in_place`] with its stages' scales `ks`: in one pass down the
/// rows ([`crp_plane_in_rows`]) where no stage can meet a NaN (none in the plane, finite and
/// non-zero scales: ∞ · k stays ∞, only ∞ · 0 or a NaN scale would make one), stage by stage
/// over the whole plane otherwise ([`crp_plane_by_stages`]).
fn crp_plane(acc: &mut [f32], ks: &[f32], h: usize, w: usize) {
    if ks.iter().all(|k| k.is_finite() && *k != 0.0) && !has_nan(acc) {
        with_scratch(&SCRATCH, (5 * ks.len() + 1) * w, |scratch| crp_plane_in_rows(acc, ks, h, w, scratch))
    } else {
        with_scratch(&SCRATCH, 2 * h * w, |scratch| crp_plane_by_stages(acc, ks, h, w, scratch))
    }
}

/// [`crp_plane`] a stage at a time over the whole plane, NaN-aware. `scratch`: 2 · h · w.
fn crp_plane_by_stages(acc: &mut [f32], ks: &[f32], h: usize, w: usize, scratch: &mut [f32]) {
    let (top, pooled) = scratch.split_at_mut(h * w);
    top.copy_from_slice(acc);
    // Whether `top` holds a NaN: checked once here, then found by each stage's scale-and-add
    // as it writes the next `top`.
    let mut nan = has_nan(top);
    for &k in ks {
        if nan {
            pool_plane_nan(top, h, w, pooled, None);
        } else {
            pool_plane_fast(top, h, w, pooled, None);
        }
        nan = scale_add_plane(pooled, k, top, acc);
    }
}

thread_local! {
    /// Each thread's `top` and pooled planes, kept from plane to plane (every value is written
    /// before it is read: `top` copied from the plane, `pooled` by the pool).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

multiversion!(crp_plane_in_rows(acc: &mut [f32], ks: &[f32], h: usize, w: usize, scratch: &mut [f32]) {
    // Every stage of one NaN-free plane in a single pass down its rows: stage s + 1's output
    // row y needs the row maxima of stage s's `top` rows y − 2 ..= y + 2, so the stages run as
    // a wavefront, each a few rows behind the one before, and only five rows of row maxima per
    // stage are kept (a ring, row r in slot r mod 5): the plane is read once and written once
    // instead of passing through the cache 4 times per stage. Per element the same operations
    // in the same order as the plane at a time (the same row and column maxima of the same
    // rows, `top = pooled · k`, then `acc + top`, stage after stage): the same bits.
    // `scratch`: (5 · stages + 1) · w values.
    let stages = ks.len();
    let (rings, pooled) = scratch.split_at_mut(5 * stages * w);
    let pooled = &mut pooled[..w];
    // next[s]: the next output row of stage s + 1; have[s]: rows of stage s's input whose
    // row maxima are in ring s (stage 0's input is the plane itself).
    let mut next = vec![0usize; stages];
    let mut have = vec![0usize; stages];
    for r in 0..h {
        let row = &acc[r * w..(r + 1) * w];
        row_maxima(row, &mut rings[(r % 5) * w..(r % 5 + 1) * w]);
        have[0] = r + 1;
        // Sweeps from the last stage back, one row per stage and sweep, until none can go on:
        // a stage takes what its ring allows before the stage before it pushes the next row
        // (which overwrites the oldest of the five).
        loop {
            let mut progressed = false;
            for s in (0..stages).rev() {
                if next[s] == h || (next[s] + 3 > have[s] && have[s] < h) {
                    continue;
                }
                progressed = true;
                let y = next[s];
                let ring = &rings[s * 5 * w..(s + 1) * 5 * w];
                column_maxima(pooled, y, h, |q| &ring[(q % 5) * w..(q % 5 + 1) * w]);
                // top = pooled · k (kept in `pooled`); acc += top.
                let k = ks[s];
                for (v, a) in pooled.iter_mut().zip(&mut acc[y * w..(y + 1) * w]) {
                    *v = *v * k;
                    *a = *a + *v;
                }
                if s + 1 < stages {
                    let slot = (s + 1) * 5 + y % 5;
                    row_maxima(pooled, &mut rings[slot * w..(slot + 1) * w]);
                    have[s + 1] = y + 1;
                }
                next[s] += 1;
            }
            if !progressed {
                break;
            }
        }
    }
});

multiversion!(pub(super) scale_add_plane(pooled: &[f32], k: f32, top: &mut [f32], acc: &mut [f32]) -> bool {
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

    /// The single pass down the rows gives each plane exactly what the stage-by-stage pass
    /// gives (signed zeros included: ties between +0 and −0 are kept), at sizes from one row
    /// or column to more rows than the rings hold, and with one to four stages.
    #[test]
    fn the_pass_in_rows_is_the_pass_by_stages() {
        let mut seed = 5u64;
        let mut value = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            match seed >> 60 {
                0 => 0.0,
                1 => -0.0,
                _ => ((seed >> 33) as f32 / (1u64 << 31) as f32) * 6.0 - 3.0,
            }
        };
        for (h, w) in [(1, 1), (1, 7), (6, 1), (2, 3), (3, 5), (5, 5), (6, 9), (9, 13), (40, 23), (17, 160)] {
            for stages in 1..=4 {
                let plane: Vec<f32> = (0..h * w).map(|_| value()).collect();
                let ks: Vec<f32> = (0..stages).map(|s| [0.8, -1.3, 0.45, 2.0][s]).collect();
                let (mut rows, mut by_stages) = (plane.clone(), plane.clone());
                let mut scratch = vec![0f32; (5 * stages + 1) * w + 2 * h * w];
                crp_plane_in_rows(&mut rows, &ks, h, w, &mut scratch);
                crp_plane_by_stages(&mut by_stages, &ks, h, w, &mut scratch);
                for (i, (a, b)) in rows.iter().zip(&by_stages).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{h}×{w}, {stages} stages, at {i}: {a} vs {b}");
                }
                assert_ne!(rows, plane, "{h}×{w}: the stages changed the plane");
            }
        }
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
