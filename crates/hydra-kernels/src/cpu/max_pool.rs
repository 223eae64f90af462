//! The CRP's 5×5 stride-1 max-pool on contiguous `[planes, H, W]` f32 buffers: separable,
//! with the argmax for the backward pass, parallel over planes with rayon.
//!
//! Semantics follow PyTorch: the pool pads with −∞, a NaN in the window wins, ties go to the
//! first element in row-major order (the gradient is routed there).

use rayon::prelude::*;

use super::buffers::with_scratch;

#[inline(always)]
fn nan_max(a: f32, b: f32) -> (f32, bool) {
    // (max, whether b was taken): strictly greater or NaN takes b, so ties keep a (the first).
    if b > a || (b.is_nan() && !a.is_nan()) { (b, true) } else { (a, false) }
}

/// Row pass of one plane: `m[y][x] = max(row[x−2 ..= x+2])` and the offset (0..5) of the max.
fn row_pass(plane: &[f32], h: usize, w: usize, m: &mut [f32], arg: Option<&mut [u8]>) {
    let mut arg = arg;
    for y in 0..h {
        let row = &plane[y * w..(y + 1) * w];
        let out = &mut m[y * w..(y + 1) * w];
        match arg.as_deref_mut() {
            None => {
                for x in 0..w {
                    let lo = x.saturating_sub(2);
                    let hi = (x + 3).min(w);
                    let mut best = row[lo];
                    for &v in &row[lo + 1..hi] {
                        best = nan_max(best, v).0;
                    }
                    out[x] = best;
                }
            }
            Some(a) => {
                let a = &mut a[y * w..(y + 1) * w];
                for x in 0..w {
                    let lo = x.saturating_sub(2);
                    let hi = (x + 3).min(w);
                    let mut best = row[lo];
                    let mut at = lo;
                    for (i, &v) in row[lo + 1..hi].iter().enumerate() {
                        let (b, took) = nan_max(best, v);
                        if took {
                            best = b;
                            at = lo + 1 + i;
                        }
                    }
                    out[x] = best;
                    a[x] = (at + 2 - x) as u8; // window offset 0..5
                }
            }
        }
    }
}

/// `best[i] = max(best[i], src[i])` for NaN-free rows. `f32::max` compiles to a register
/// maximum; the `if v > b` form compiles to masked stores, which are slow on AMD's Zen 4.
/// (The only difference from keeping the first of equal values: which zero of +0 and −0
/// survives a tie, which no sum can tell apart.)
#[inline(always)]
fn max_keep_first(best: &mut [f32], src: &[f32]) {
    for (b, &v) in best.iter_mut().zip(src) {
        *b = b.max(v);
    }
}

/// [`max_keep_first`] that also records `tag` in `at[i]` where `src[i]` wins (strictly).
/// Written as selects over zipped slices so that it compiles to vector blends.
#[inline(always)]
fn max_keep_first_at(best: &mut [f32], at: &mut [u32], src: &[f32], tag: u32) {
    for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(src) {
        let take = v > *b;
        *a = if take { tag } else { *a };
        *b = if take { v } else { *b };
    }
}

/// [`max_keep_first_at`] with the tag `row + cols[i]`.
#[inline(always)]
fn max_keep_first_at_cols(best: &mut [f32], at: &mut [u32], src: &[f32], row: u32, cols: &[u32]) {
    for (((b, a), &v), &c) in best.iter_mut().zip(at.iter_mut()).zip(src).zip(cols) {
        let take = v > *b;
        *a = if take { row + c } else { *a };
        *b = if take { v } else { *b };
    }
}

multiversion!(pub(super) pool_plane_fast(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
    pool_plane_fast_body(plane, h, w, out, arg)
});

/// One plane, no NaN: the separable pool as branch-free passes over −∞-padded rows (the
/// compiler vectorises the inner loops). `arg` receives dy · 5 + dx of each maximum; ties go
/// to the first element in row-major order (strict `>` keeps the earlier candidate).
#[inline(always)]
fn pool_plane_fast_body(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
    if arg.is_none() {
        return pool_plane_values(plane, h, w, out);
    }
    let pw = w + 4;
    let mut padded = vec![f32::NEG_INFINITY; pw];
    let mut m = vec![0f32; h * w];
    // Offsets are kept as u32 in the loops (lanes as wide as the f32 values, so the blends
    // vectorise) and packed to u8 at the end.
    let mut mcol = if arg.is_some() { vec![0u32; h * w] } else { Vec::new() };
    for y in 0..h {
        padded[2..2 + w].copy_from_slice(&plane[y * w..(y + 1) * w]);
        let best = &mut m[y * w..(y + 1) * w];
        best.copy_from_slice(&padded[..w]);
        if arg.is_some() {
            let at = &mut mcol[y * w..(y + 1) * w];
            for k in 1..5u32 {
                max_keep_first_at(best, at, &padded[k as usize..k as usize + w], k);
            }
        } else {
            for k in 1..5 {
                max_keep_first(best, &padded[k..k + w]);
            }
        }
    }
    match arg {
        None => {
            for y in 0..h {
                let lo = y.saturating_sub(2);
                let hi = (y + 3).min(h);
                let dst = &mut out[y * w..(y + 1) * w];
                dst.copy_from_slice(&m[lo * w..(lo + 1) * w]);
                for r in lo + 1..hi {
                    max_keep_first(dst, &m[r * w..(r + 1) * w]);
                }
            }
        }
        Some(arg) => {
            let mut at = vec![0u32; w];
            for y in 0..h {
                let lo = y.saturating_sub(2);
                let hi = (y + 3).min(h);
                let dst = &mut out[y * w..(y + 1) * w];
                dst.copy_from_slice(&m[lo * w..(lo + 1) * w]);
                let base = ((lo + 2 - y) * 5) as u32;
                for (a, &c) in at.iter_mut().zip(&mcol[lo * w..(lo + 1) * w]) {
                    *a = base + c;
                }
                for r in lo + 1..hi {
                    let row = ((r + 2 - y) * 5) as u32;
                    let cols = &mcol[r * w..(r + 1) * w];
                    max_keep_first_at_cols(dst, &mut at, &m[r * w..(r + 1) * w], row, cols);
                }
                for (d, &a) in arg[y * w..(y + 1) * w].iter_mut().zip(&at) {
                    *d = a as u8;
                }
            }
        }
    }
}

/// The larger of two NaN-free values as one compare-and-select (`vmaxps`); `f32::max` adds a
/// NaN fix-up to every lane that the NaN-free pool paths do not need.
#[inline(always)]
fn max2(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// `dst[i] = max(src[0][i], …, src[k−1][i])` for up to five NaN-free sources (one pass, no
/// copies).
#[inline(always)]
fn max_of(dst: &mut [f32], src: &[&[f32]]) {
    match *src {
        [a, b, c, d, e] => {
            for (((((o, &a), &b), &c), &d), &e) in dst.iter_mut().zip(a).zip(b).zip(c).zip(d).zip(e) {
                *o = max2(max2(max2(a, b), max2(c, d)), e);
            }
        }
        [a, b, c, d] => {
            for ((((o, &a), &b), &c), &d) in dst.iter_mut().zip(a).zip(b).zip(c).zip(d) {
                *o = max2(max2(a, b), max2(c, d));
            }
        }
        [a, b, c] => {
            for (((o, &a), &b), &c) in dst.iter_mut().zip(a).zip(b).zip(c) {
                *o = max2(max2(a, b), c);
            }
        }
        [a, b] => {
            for ((o, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                *o = max2(a, b);
            }
        }
        [a] => dst.copy_from_slice(&a[..dst.len()]),
        _ => unreachable!("max_of: 1 to 5 sources"),
    }
}

/// The separable pool without argmax, NaN-free: each row's window maxima straight from
/// the input row (edges clipped), then each output row as the maximum of up to five rows of
/// those, with no padded copies.
#[inline(always)]
fn pool_plane_values(plane: &[f32], h: usize, w: usize, out: &mut [f32]) {
    thread_local! {
        /// The row maxima of one plane, reused from plane to plane (every element is written
        /// before it is read).
        static ROW_MAXIMA: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    with_scratch(&ROW_MAXIMA, h * w, |m| pool_plane_values_with(plane, h, w, out, m));
}

// Its own vectorised entry point: the thread-local's closure does not inherit the caller's
// target features.
multiversion!(pool_plane_values_with(plane: &[f32], h: usize, w: usize, out: &mut [f32], m: &mut [f32]) {
    for (r, mr) in plane.chunks_exact(w).zip(m.chunks_exact_mut(w)) {
        row_maxima(r, mr);
    }
    for (y, dst) in out.chunks_exact_mut(w).enumerate().take(h) {
        column_maxima(dst, y, h, |r| &m[r * w..(r + 1) * w]);
    }
});

/// The column pass of the NaN-free pool for output row `y` of `h`: `dst = max(row(y − 2) ..=
/// row(y + 2))` (clipped at the ends), `row(r)` being row r's maxima from [`row_maxima`].
#[inline(always)]
pub(super) fn column_maxima<'a>(dst: &mut [f32], y: usize, h: usize, row: impl Fn(usize) -> &'a [f32]) {
    let (lo, hi) = (y.saturating_sub(2), (y + 3).min(h));
    let mut rows: [&[f32]; 5] = [&[]; 5];
    for (slot, r) in rows.iter_mut().zip(lo..hi) {
        *slot = row(r);
    }
    max_of(dst, &rows[..hi - lo]);
}

/// The row pass of the NaN-free pool: `mr[x] = max(r[x − 2 ..= x + 2])` (clipped at the ends).
#[inline(always)]
pub(super) fn row_maxima(r: &[f32], mr: &mut [f32]) {
    let w = r.len();
    if w > 4 {
        let n = w - 4;
        max_of(&mut mr[2..2 + n], &[&r[..n], &r[1..1 + n], &r[2..2 + n], &r[3..3 + n], &r[4..4 + n]]);
    }
    for x in (0..w.min(2)).chain(w.saturating_sub(2).max(2)..w) {
        mr[x] = r[x.saturating_sub(2)..(x + 3).min(w)].iter().fold(f32::NEG_INFINITY, |a, &v| max2(a, v));
    }
}

/// One plane with NaN handling (a NaN wins its windows), element by element.
pub(super) fn pool_plane_nan(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
    let mut m = vec![0f32; h * w];
    let mut col = if arg.is_some() { vec![0u8; h * w] } else { Vec::new() };
    row_pass(plane, h, w, &mut m, arg.is_some().then_some(col.as_mut_slice()));
    let mut arg = arg;
    for y in 0..h {
        let lo = y.saturating_sub(2);
        let hi = (y + 3).min(h);
        for x in 0..w {
            let mut best = m[lo * w + x];
            let mut at = lo;
            for r in lo + 1..hi {
                let (b, took) = nan_max(best, m[r * w + x]);
                if took {
                    best = b;
                    at = r;
                }
            }
            out[y * w + x] = best;
            if let Some(a) = arg.as_deref_mut() {
                a[y * w + x] = ((at + 2 - y) * 5) as u8 + col[at * w + x];
            }
        }
    }
}

multiversion!(pub(super) has_nan(v: &[f32]) -> bool {
    // Branch-free within blocks so that the test vectorises.
    #[allow(clippy::eq_op)]
    v.chunks(512).any(|b| b.iter().fold(false, |a, &x| a | (x != x)))
});

/// The pool of one `h × w` plane into `out`, with the argmax into `arg` if given: the fast
/// path, or the NaN-aware one where the plane holds a NaN.
pub(super) fn pool_plane(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
    if has_nan(plane) {
        pool_plane_nan(plane, h, w, out, arg)
    } else {
        pool_plane_fast(plane, h, w, out, arg)
    }
}

/// The gradient of one plane's pool added into `gx`: each output gradient `g` to its
/// window's maximum (`argmax` of [`pool_plane`]), in row-major order of the outputs.
pub(super) fn route_plane(g: &[f32], argmax: &[u8], h: usize, w: usize, gx: &mut [f32]) {
    for y in 0..h {
        for x in 0..w {
            let k = argmax[y * w + x] as usize;
            let (yy, xx) = (y + k / 5 - 2, x + k % 5 - 2);
            gx[yy * w + xx] += g[y * w + x];
        }
    }
}

/// 5×5 max-pool, stride 1, padding 2 of `planes` planes of `h × w`. With `argmax`, also the
/// window position (dy · 5 + dx) of each maximum.
pub fn max_pool5(x: &[f32], planes: usize, h: usize, w: usize, with_argmax: bool) -> (Vec<f32>, Option<Vec<u8>>) {
    let n = h * w;
    let mut out = vec![0f32; planes * n];
    let run = |p: usize, o: &mut [f32], a: Option<&mut [u8]>| pool_plane(&x[p * n..(p + 1) * n], h, w, o, a);
    if with_argmax {
        let mut arg = vec![0u8; planes * n];
        out.par_chunks_mut(n).zip(arg.par_chunks_mut(n)).enumerate().for_each(|(p, (o, a))| run(p, o, Some(a)));
        (out, Some(arg))
    } else {
        out.par_chunks_mut(n).enumerate().for_each(|(p, o)| run(p, o, None));
        (out, None)
    }
}

/// Gradient of [`max_pool5`]: each output gradient goes to its window's maximum.
pub fn max_pool5_backward(grad: &[f32], argmax: &[u8], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let n = h * w;
    let mut gx = vec![0f32; planes * n];
    gx.par_chunks_mut(n).enumerate().for_each(|(p, gx)| route_plane(&grad[p * n..(p + 1) * n], &argmax[p * n..(p + 1) * n], h, w, gx));
    gx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_pool(x: &[f32], h: usize, w: usize) -> (Vec<f32>, Vec<usize>) {
        let mut out = vec![0f32; h * w];
        let mut at = vec![0usize; h * w];
        for y in 0..h {
            for xx in 0..w {
                let mut best = f32::NEG_INFINITY;
                let mut idx = usize::MAX;
                for dy in 0..5 {
                    for dx in 0..5 {
                        let (yy, xs) = (y as isize + dy - 2, xx as isize + dx - 2);
                        if yy < 0 || xs < 0 || yy >= h as isize || xs >= w as isize {
                            continue;
                        }
                        let v = x[yy as usize * w + xs as usize];
                        if idx == usize::MAX || v > best {
                            best = v;
                            idx = yy as usize * w + xs as usize;
                        }
                    }
                }
                out[y * w + xx] = best;
                at[y * w + xx] = idx;
            }
        }
        (out, at)
    }

    #[test]
    fn pool_matches_the_direct_definition_including_ties() {
        let mut g = hydra_core::SplitMix64::new(5);
        // Every edge case of the window clipping: sizes 1 to 5 and beyond, in both directions.
        for (h, w) in [(1, 1), (2, 7), (6, 5), (13, 17), (3, 4), (4, 3), (5, 40), (40, 2)] {
            // Few distinct values: many ties.
            let x: Vec<f32> = (0..2 * h * w).map(|_| g.below(4) as f32).collect();
            let (out, arg) = max_pool5(&x, 2, h, w, true);
            let (plain, _) = max_pool5(&x, 2, h, w, false);
            assert_eq!(out, plain);
            let arg = arg.unwrap();
            for p in 0..2 {
                let (o, at) = naive_pool(&x[p * h * w..(p + 1) * h * w], h, w);
                assert_eq!(&out[p * h * w..(p + 1) * h * w], &o[..]);
                for i in 0..h * w {
                    let k = arg[p * h * w + i] as usize;
                    let (y, xx) = (i / w, i % w);
                    assert_eq!((y + k / 5 - 2) * w + xx + k % 5 - 2, at[i], "{h}x{w} plane {p} at {i}");
                }
            }
            let grad: Vec<f32> = (0..2 * h * w).map(|i| i as f32).collect();
            let gx = max_pool5_backward(&grad, &arg, 2, h, w);
            for p in 0..2 {
                let (_, at) = naive_pool(&x[p * h * w..(p + 1) * h * w], h, w);
                let mut expect = vec![0f32; h * w];
                for i in 0..h * w {
                    expect[at[i]] += grad[p * h * w + i];
                }
                assert_eq!(&gx[p * h * w..(p + 1) * h * w], &expect[..]);
            }
        }
    }

    #[test]
    fn nan_wins_the_window() {
        let mut x = vec![1.0f32; 9];
        x[4] = f32::NAN;
        let (out, _) = max_pool5(&x, 1, 3, 3, false);
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
