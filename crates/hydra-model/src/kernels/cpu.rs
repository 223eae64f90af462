//! Host kernels on contiguous `[planes, H, W]` f32 buffers: the CRP's 5×5 stride-1 max-pool
//! (separable, with the argmax for the backward pass) and bilinear resizing with
//! `align_corners = false` (forward and adjoint). Parallel over planes with rayon.
//!
//! Semantics follow PyTorch: max-pool pads with −∞, a NaN in the window wins, ties go to the
//! first element in row-major order (the gradient is routed there); bilinear uses
//! `src = max(scale · (dst + 0.5) − 0.5, 0)` with `scale = in / out` in f32 and combines
//! `λh0 · (λw0 · a + λw1 · b) + λh1 · (λw0 · c + λw1 · d)`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::resize::linear_taps;

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

multiversion!(pool_plane_fast(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
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
    ROW_MAXIMA.with_borrow_mut(|m| {
        if m.len() < h * w {
            m.resize(h * w, 0.0);
        }
        pool_plane_values_with(plane, h, w, out, &mut m[..h * w]);
    });
}

// Its own vectorised entry point: the thread-local's closure does not inherit the caller's
// target features.
multiversion!(pool_plane_values_with(plane: &[f32], h: usize, w: usize, out: &mut [f32], m: &mut [f32]) {
    for (r, mr) in plane.chunks_exact(w).zip(m.chunks_exact_mut(w)) {
        if w > 4 {
            let n = w - 4;
            max_of(&mut mr[2..2 + n], &[&r[..n], &r[1..1 + n], &r[2..2 + n], &r[3..3 + n], &r[4..4 + n]]);
        }
        for x in (0..w.min(2)).chain(w.saturating_sub(2).max(2)..w) {
            mr[x] = r[x.saturating_sub(2)..(x + 3).min(w)].iter().fold(f32::NEG_INFINITY, |a, &v| max2(a, v));
        }
    }
    for (y, dst) in out.chunks_exact_mut(w).enumerate().take(h) {
        let (lo, hi) = (y.saturating_sub(2), (y + 3).min(h));
        let mut rows: [&[f32]; 5] = [&[]; 5];
        for (slot, r) in rows.iter_mut().zip(lo..hi) {
            *slot = &m[r * w..(r + 1) * w];
        }
        max_of(dst, &rows[..hi - lo]);
    }
});

/// One plane with NaN handling (a NaN wins its windows), element by element.
fn pool_plane_nan(plane: &[f32], h: usize, w: usize, out: &mut [f32], arg: Option<&mut [u8]>) {
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

multiversion!(has_nan(v: &[f32]) -> bool {
    // Branch-free within blocks so that the test vectorises.
    #[allow(clippy::eq_op)]
    v.chunks(512).any(|b| b.iter().fold(false, |a, &x| a | (x != x)))
});

/// 5×5 max-pool, stride 1, padding 2 of `planes` planes of `h × w`. With `argmax`, also the
/// window position (dy · 5 + dx) of each maximum.
pub fn max_pool5(x: &[f32], planes: usize, h: usize, w: usize, with_argmax: bool) -> (Vec<f32>, Option<Vec<u8>>) {
    let n = h * w;
    let mut out = vec![0f32; planes * n];
    let plane_of = |p: usize| &x[p * n..(p + 1) * n];
    let run = |p: usize, o: &mut [f32], a: Option<&mut [u8]>| {
        let plane = plane_of(p);
        if has_nan(plane) {
            pool_plane_nan(plane, h, w, o, a)
        } else {
            pool_plane_fast(plane, h, w, o, a)
        }
    };
    if with_argmax {
        let mut arg = vec![0u8; planes * n];
        out.par_chunks_mut(n).zip(arg.par_chunks_mut(n)).enumerate().for_each(|(p, (o, a))| run(p, o, Some(a)));
        (out, Some(arg))
    } else {
        out.par_chunks_mut(n).enumerate().for_each(|(p, o)| run(p, o, None));
        (out, None)
    }
}

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
        let mut top = acc.to_vec();
        let mut pooled = vec![0f32; n];
        for ws in weights {
            if has_nan(&top) {
                pool_plane_nan(&top, h, w, &mut pooled, None);
            } else {
                pool_plane_fast(&top, h, w, &mut pooled, None);
            }
            scale_add_plane(&pooled, ws[ch], &mut top, acc);
        }
    });
}

multiversion!(scale_add_plane(pooled: &[f32], k: f32, top: &mut [f32], acc: &mut [f32]) {
    for ((t, a), &v) in top.iter_mut().zip(acc.iter_mut()).zip(pooled) {
        *t = v * k;
        *a = *a + *t;
    }
});

/// Gradient of [`max_pool5`]: each output gradient goes to its window's maximum.
pub fn max_pool5_backward(grad: &[f32], argmax: &[u8], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let n = h * w;
    let mut gx = vec![0f32; planes * n];
    gx.par_chunks_mut(n).enumerate().for_each(|(p, gx)| {
        let g = &grad[p * n..(p + 1) * n];
        let a = &argmax[p * n..(p + 1) * n];
        for y in 0..h {
            for x in 0..w {
                let k = a[y * w + x] as usize;
                let (yy, xx) = (y + k / 5 - 2, x + k % 5 - 2);
                gx[yy * w + xx] += g[y * w + x];
            }
        }
    });
    gx
}

/// Bilinear resize of `planes` planes `[h, w]` → `[oh, ow]` (`align_corners = false`).
pub fn bilinear(x: &[f32], planes: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    let taps = Taps::new([h, w], [oh, ow]);
    let mut out = vec![0f32; planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
        bilinear_plane(&x[p * h * w..(p + 1) * h * w], &taps, o);
    });
    out
}

/// Interpolation taps of one resize `[h, w]` → `[oh, ow]`: for every output row (`h*`) and
/// column (`w*`), its two source indices and their weights. The row-level steps below are
/// shared by [`bilinear`], [`bilinear_backward`] and the fused upsampled cross-entropy,
/// which must all compute the same values to the bit.
pub(crate) struct Taps {
    hi0: Vec<i64>,
    hi1: Vec<i64>,
    hl0: Vec<f32>,
    hl1: Vec<f32>,
    wi0: Vec<i64>,
    wi1: Vec<i64>,
    wl0: Vec<f32>,
    wl1: Vec<f32>,
    /// `[h, w]`, `[oh, ow]`.
    sizes: [[usize; 2]; 2],
}

impl Taps {
    pub(crate) fn new([h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Self {
        let (hi0, hi1, hl0, hl1) = linear_taps(h, oh);
        let (wi0, wi1, wl0, wl1) = linear_taps(w, ow);
        Taps { hi0, hi1, hl0, hl1, wi0, wi1, wl0, wl1, sizes: [[h, w], [oh, ow]] }
    }

    /// Width pass of a plane `[h, w]` into `tmp [h, ow]`.
    #[inline(always)]
    pub(crate) fn widen(&self, plane: &[f32], tmp: &mut [f32]) {
        let [[_, w], [_, ow]] = self.sizes;
        for (row, tr) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(ow)) {
            for j in 0..ow {
                tr[j] = self.wl0[j] * row[self.wi0[j] as usize] + self.wl1[j] * row[self.wi1[j] as usize];
            }
        }
    }

    /// Height pass: output row `i` `[ow]` from the width-interpolated plane `tmp [h, ow]`.
    #[inline(always)]
    pub(crate) fn blend_row(&self, tmp: &[f32], i: usize, out: &mut [f32]) {
        let ow = self.sizes[1][1];
        let (r0, r1) = (self.hi0[i] as usize, self.hi1[i] as usize);
        let (a, b) = (&tmp[r0 * ow..(r0 + 1) * ow], &tmp[r1 * ow..(r1 + 1) * ow]);
        let (l0, l1) = (self.hl0[i], self.hl1[i]);
        for ((d, &va), &vb) in out.iter_mut().zip(a).zip(b) {
            *d = l0 * va + l1 * vb;
        }
    }

    /// Adjoint of [`Taps::blend_row`]: adds output row `i`'s gradient `g [ow]` into its two
    /// source rows of `gtmp [h, ow]`, one contiguous update after the other (the order of
    /// the per-element form).
    #[inline(always)]
    pub(crate) fn spread_row(&self, g: &[f32], i: usize, gtmp: &mut [f32]) {
        let ow = self.sizes[1][1];
        for (r, l) in [(self.hi0[i] as usize, self.hl0[i]), (self.hi1[i] as usize, self.hl1[i])] {
            for (d, &v) in gtmp[r * ow..(r + 1) * ow].iter_mut().zip(g) {
                *d += l * v;
            }
        }
    }

    /// Adjoint of [`Taps::widen`]: scatters `gtmp [h, ow]` into the input columns of
    /// `gx [h, w]`.
    #[inline(always)]
    pub(crate) fn scatter(&self, gtmp: &[f32], gx: &mut [f32]) {
        let [[_, w], [_, ow]] = self.sizes;
        for (tr, dst) in gtmp.chunks_exact(ow).zip(gx.chunks_exact_mut(w)) {
            for j in 0..ow {
                dst[self.wi0[j] as usize] += self.wl0[j] * tr[j];
                dst[self.wi1[j] as usize] += self.wl1[j] * tr[j];
            }
        }
    }
}

multiversion!(bilinear_plane(plane: &[f32], t: &Taps, o: &mut [f32]) {
    let [[h, _], [oh, ow]] = t.sizes;
    // Width pass into a [h, ow] buffer, then the height pass.
    let mut tmp = vec![0f32; h * ow];
    t.widen(plane, &mut tmp);
    for (i, out) in o.chunks_exact_mut(ow).enumerate().take(oh) {
        t.blend_row(&tmp, i, out);
    }
});

/// Adjoint of [`bilinear`]: the gradient with respect to its input.
pub fn bilinear_backward(grad: &[f32], planes: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    let taps = Taps::new([h, w], [oh, ow]);
    let mut gx = vec![0f32; planes * h * w];
    gx.par_chunks_mut(h * w).enumerate().for_each(|(p, gx)| {
        bilinear_backward_plane(&grad[p * oh * ow..(p + 1) * oh * ow], &taps, gx);
    });
    gx
}

multiversion!(bilinear_backward_plane(g: &[f32], t: &Taps, gx: &mut [f32]) {
    let [[h, _], [_, ow]] = t.sizes;
    // Height pass into a [h, ow] buffer, then the width pass.
    let mut tmp = vec![0f32; h * ow];
    for (i, row) in g.chunks_exact(ow).enumerate() {
        t.spread_row(row, i, &mut tmp);
    }
    t.scatter(&tmp, gx);
});

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
    fn exp_fast_is_within_two_ulp() {
        let mut worst = 0f64;
        for i in 0..=2_000_000 {
            let x = -87.0 + 175.0 * i as f32 / 2_000_000.0;
            let e = (x as f64).exp();
            let ulp = (e as f32).next_up() as f64 - e as f32 as f64;
            worst = worst.max((exp_fast(x) as f64 - e).abs() / ulp);
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(f32::NAN).is_nan());
        assert!(exp_fast(-1e6) < 1e-37 && exp_fast(-1e6) >= 0.0);
        assert!(exp_fast(88.7) > 3.3e38 && exp_fast(88.7).is_finite());
    }

    #[test]
    fn pool_matches_the_direct_definition_including_ties() {
        let mut g = crate::init::SplitMix64::new(5);
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

    #[test]
    fn bilinear_backward_is_the_adjoint() {
        // <B x, g> = <x, Bᵀ g> for random x and g.
        let mut r = crate::init::SplitMix64::new(9);
        for (h, w, oh, ow) in [(3, 4, 7, 9), (8, 6, 4, 3), (5, 5, 5, 5), (15, 20, 30, 40)] {
            let x: Vec<f32> = (0..2 * h * w).map(|_| r.normal() as f32).collect();
            let g: Vec<f32> = (0..2 * oh * ow).map(|_| r.normal() as f32).collect();
            let bx = bilinear(&x, 2, [h, w], [oh, ow]);
            let btg = bilinear_backward(&g, 2, [h, w], [oh, ow]);
            let lhs: f64 = bx.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = x.iter().zip(&btg).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        }
    }
}

/// `min(max(t, 0), 6)` with NaN passing through, as PyTorch's hardtanh does: the one
/// definition of the clamp every ReLU6 kernel and epilogue uses.
#[inline(always)]
pub(crate) fn relu6_value(t: f32) -> f32 {
    if t < 0.0 { 0.0 } else if t > 6.0 { 6.0 } else { t }
}

multiversion!(relu6_slice(v: &mut [f32]) {
    for o in v.iter_mut() {
        *o = relu6_value(*o);
    }
});

/// ReLU6's backward for one element: `g` where `0 < y < 6`, else +0. Written with a bit
/// mask instead of a select, which the compiler may turn into unpredictable branches.
#[inline(always)]
fn relu6_pass(g: f32, y: f32) -> f32 {
    let keep = ((y > 0.0) & (y < 6.0)) as u32;
    f32::from_bits(g.to_bits() & keep.wrapping_neg())
}

multiversion!(relu6_backward_slice(y: &[f32], g: &mut [f32]) {
    for (gv, &v) in g.iter_mut().zip(y) {
        // PyTorch: the gradient passes where 0 < x < 6, i.e. where 0 < y < 6.
        *gv = relu6_pass(*gv, v);
    }
});

const CHUNK: usize = 1 << 16;

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

multiversion!(affine_plane_into(src: &[f32], scale: f32, shift: f32, dst: &mut [MaybeUninit<f32>]) {
    // The arithmetic of `affine_plane` (without ReLU6), from `src` into `dst`.
    assert!(src.len() >= dst.len(), "affine_plane_into: sizes");
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = MaybeUninit::new(v.mul_add(scale, shift));
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

/// Per-channel slices of a `[B, C, HW]` buffer: `(b, range)` pairs of channel `c`.
fn channel_ranges(b: usize, c: usize, hw: usize, ch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..b).map(move |i| (i * c + ch) * hw..(i * c + ch + 1) * hw)
}

/// f64 accumulator lanes of the BatchNorm sums: independent lanes let the sums vectorise
/// (one f64 add chain would be latency-bound), in a fixed order.
const F64_LANES: usize = 8;

multiversion!(sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    acc.iter().sum::<f64>() + rest
});

multiversion!(sum_sq_dev_f64(x: &[f32], mean: f32) -> f64 {
    // The deviation in f32, its square summed in f64: PyTorch's CPU BatchNorm statistics.
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = (v - mean) as f64;
            *a += d * d;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| ((v - mean) as f64).powi(2)).sum();
    acc.iter().sum::<f64>() + rest
});

multiversion!(sum_g_gx_f64(g: &[f32], x: &[f32], mean: f64) -> (f64, f64) {
    let (mut sg, mut sgx) = ([0f64; F64_LANES], [0f64; F64_LANES]);
    let n = g.len().min(x.len()) / F64_LANES * F64_LANES;
    for (gc, xc) in g[..n].chunks_exact(F64_LANES).zip(x[..n].chunks_exact(F64_LANES)) {
        for l in 0..F64_LANES {
            sg[l] += gc[l] as f64;
            sgx[l] += gc[l] as f64 * (xc[l] as f64 - mean);
        }
    }
    let (mut a, mut b) = (sg.iter().sum::<f64>(), sgx.iter().sum::<f64>());
    for (&gv, &xv) in g[n..].iter().zip(&x[n..]) {
        a += gv as f64;
        b += gv as f64 * (xv as f64 - mean);
    }
    (a, b)
});

/// BatchNorm with batch statistics over `[B, C, HW]`: returns the output, the batch mean and
/// the biased batch variance per channel. Computed as PyTorch's CPU kernel does, to the bit:
/// mean = f32(Σx / n) with the sum in f64; variance = f32(Σ(x − mean)²) / n in f32, the
/// deviations in f32 and their squares summed in f64; 1/√(var + ε) in f64; then
/// `y = fma(x, α, fma(−mean, α, β))` with `α = γ · f32(1/√(var + ε))`.
pub fn batch_norm_train(x: &[f32], gamma: &[f32], beta: &[f32], [b, c, hw]: [usize; 3], eps: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = (b * hw) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let sum: f64 = channel_ranges(b, c, hw, ch).map(|r| sum_f64(&x[r])).sum();
            let mean = (sum / n) as f32;
            let sq: f64 = channel_ranges(b, c, hw, ch).map(|r| sum_sq_dev_f64(&x[r], mean)).sum();
            (mean, sq as f32 / n as f32)
        })
        .collect();
    // SAFETY: affine_plane_into writes every element of its plane.
    let out = unsafe {
        par_uninit(x.len(), hw, |k, o| {
            let ch = k % c;
            let (mean, var) = stats[ch];
            let alpha = (1.0 / (var as f64 + eps).sqrt()) as f32 * gamma[ch];
            affine_plane_into(&x[k * hw..(k + 1) * hw], alpha, (-mean).mul_add(alpha, beta[ch]), o);
        })
    };
    (out, stats.iter().map(|s| s.0).collect(), stats.iter().map(|s| s.1).collect())
}

/// Gradients of [`batch_norm_train`] with respect to `x`, `gamma` and `beta`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    grad: &[f32],
    [b, c, hw]: [usize; 3],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = (b * hw) as f64;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let invstd = 1.0 / (var[ch] as f64 + eps).sqrt();
            let m = mean[ch] as f64;
            let (mut sg, mut sgx) = (0f64, 0f64);
            for r in channel_ranges(b, c, hw, ch) {
                let (g, gx) = sum_g_gx_f64(&grad[r.clone()], &x[r], m);
                sg += g;
                sgx += gx;
            }
            (sg, sgx * invstd)
        })
        .collect();
    // SAFETY: bn_dx_plane writes every element of its plane.
    let dx = unsafe {
        par_uninit(x.len(), hw, |k, d| {
            let ch = k % c;
            let invstd = 1.0 / (var[ch] as f64 + eps).sqrt();
            let (sg, sgx) = sums[ch];
            let a = (gamma[ch] as f64 * invstd) as f32;
            let coefficients = [a, (sg / n) as f32, (sgx / n) as f32, mean[ch], invstd as f32];
            bn_dx_plane(&grad[k * hw..(k + 1) * hw], &x[k * hw..(k + 1) * hw], coefficients, d);
        })
    };
    (dx, sums.iter().map(|s| s.1 as f32).collect(), sums.iter().map(|s| s.0 as f32).collect())
}

multiversion!(bn_dx_plane(grad: &[f32], x: &[f32], coefficients: [f32; 5], d: &mut [MaybeUninit<f32>]) {
    // dx = a · (g − mean(g) − x̂ · mean(g · x̂)), x̂ = (x − μ) · σ⁻¹.
    let [a, mg, mgx, m, is] = coefficients;
    assert!(grad.len() >= d.len() && x.len() >= d.len(), "bn_dx_plane: sizes");
    for ((o, &g), &v) in d.iter_mut().zip(grad).zip(x) {
        let xhat = (v - m) * is;
        *o = MaybeUninit::new(a * (g - mg - xhat * mgx));
    }
});

/// `e^x` for f32 without a library call, so that loops over it vectorise: Cephes' `expf`
/// (x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7 polynomial for e^r, then 2^n from the
/// exponent bits), within 2 ulp of the exact value on [−87, 88]. Below −87.3 it returns
/// ~1e-38 instead of underflowing; NaN stays NaN.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let c = x.clamp(-87.33, 88.72);
    let n = (c * LOG2E).round();
    let r = c - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = p.mul_add(r * r, r) + 1.0;
    // n ∈ [−126, 128]: 2^n as exponent bits, split in two factors so that 2^128 does not
    // overflow the exponent field before the multiplication.
    let half = (n * 0.5).floor();
    // The integer k is read from the bits of k + 1.5·2²³ (a bit cast, which vectorises,
    // unlike Rust's saturating float-to-int conversion).
    let two = |k: f32| f32::from_bits((k + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    let e = y * two(half) * two(n - half);
    if x.is_nan() { x } else { e }
}

multiversion!(pub(crate) softmax_terms(x: &[f32], maxv: &[f32], se: &mut [f32], store: Option<&mut [f32]>) {
    match store {
        Some(dst) => {
            for (((d, s), &v), &m) in dst.iter_mut().zip(se.iter_mut()).zip(x).zip(maxv) {
                let e = exp_fast(v - m);
                *d = e;
                *s += e;
            }
        }
        None => {
            for ((s, &v), &m) in se.iter_mut().zip(x).zip(maxv) {
                *s += exp_fast(v - m);
            }
        }
    }
});

/// Cross-entropy of `logits: [B, C, HW]` against `labels: [B, HW]`, pixels labelled `ignore`
/// (or outside 0..C) excluded: returns (Σ −log softmax[label] in f64, number of valid pixels).
pub fn cross_entropy(logits: &[f32], labels: &[i64], [b, c, hw]: [usize; 3], ignore: i64) -> (f64, usize) {
    (0..b)
        .into_par_iter()
        .map(|i| {
            let base = i * c * hw;
            let mut sum = 0f64;
            let mut count = 0usize;
            let mut maxv = vec![f32::NEG_INFINITY; hw];
            for ch in 0..c {
                for (m, &v) in maxv.iter_mut().zip(&logits[base + ch * hw..base + (ch + 1) * hw]) {
                    *m = if v > *m { v } else { *m };
                }
            }
            let mut se = vec![0f32; hw];
            for ch in 0..c {
                softmax_terms(&logits[base + ch * hw..base + (ch + 1) * hw], &maxv, &mut se, None);
            }
            for p in 0..hw {
                let l = labels[i * hw + p];
                if l == ignore || l < 0 || l as usize >= c {
                    continue;
                }
                let lse = maxv[p] as f64 + (se[p] as f64).ln();
                sum += lse - logits[base + l as usize * hw + p] as f64;
                count += 1;
            }
            (sum, count)
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Gradient of the mean cross-entropy (`Σ / max(count, 1)`) with respect to the logits, times
/// the upstream gradient `scale`: `(softmax − onehot) · scale / count` at valid pixels, 0 else.
pub fn cross_entropy_backward(logits: &[f32], labels: &[i64], [_b, c, hw]: [usize; 3], ignore: i64, count: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; logits.len()];
    let k = scale / count.max(1) as f32;
    out.par_chunks_mut(c * hw).enumerate().for_each(|(i, o)| {
        let x = &logits[i * c * hw..(i + 1) * c * hw];
        let lab = &labels[i * hw..(i + 1) * hw];
        let mut maxv = vec![f32::NEG_INFINITY; hw];
        for ch in 0..c {
            for (m, &v) in maxv.iter_mut().zip(&x[ch * hw..(ch + 1) * hw]) {
                *m = if v > *m { v } else { *m };
            }
        }
        let mut se = vec![0f32; hw];
        for ch in 0..c {
            softmax_terms(&x[ch * hw..(ch + 1) * hw], &maxv, &mut se, Some(&mut o[ch * hw..(ch + 1) * hw]));
        }
        let valid: Vec<f32> = lab.iter().map(|&l| if l == ignore || l < 0 || l as usize >= c { 0.0 } else { k }).collect();
        for ch in 0..c {
            let dst = &mut o[ch * hw..(ch + 1) * hw];
            for ((d, &s), &v) in dst.iter_mut().zip(&se).zip(&valid) {
                *d = *d / s * v;
            }
        }
        for (p, &l) in lab.iter().enumerate() {
            if valid[p] != 0.0 {
                o[l as usize * hw + p] -= k;
            }
        }
    });
    out
}

/// Output size of a 3×3 convolution with padding 1 and stride `s`.
pub fn dw_out(n: usize, s: usize) -> usize {
    (n - 1) / s + 1
}

/// Row `p` of the zero-padded plane (`p = 0` and `p = H + 1` are the padding rows; row `p`
/// holds input row `p − 1` between two zeros), written to `dst`: as is for stride 1
/// (`W + 2` values), or split into its even and odd columns for stride 2 (`even` at
/// `dst[..half]`, `odd` at `dst[half..]`, `half = ⌈(W + 2) / 2⌉`) so that every tap of a
/// stride-2 row is a contiguous slice.
#[inline(always)]
pub(crate) fn dw_padded_row(x: &[f32], [h, wd]: [usize; 2], p: usize, s: usize, dst: &mut [f32]) {
    if p == 0 || p > h {
        dst.fill(0.0);
        return;
    }
    let row = &x[(p - 1) * wd..p * wd];
    if s == 1 {
        dst[0] = 0.0;
        dst[wd + 1] = 0.0;
        dst[1..1 + wd].copy_from_slice(row);
    } else {
        let half = (wd + 2).div_ceil(2);
        let (even, odd) = dst.split_at_mut(half);
        // Padded column k is row[k − 1]: even k = 2j ← row[2j − 1], odd k = 2j + 1 ← row[2j];
        // the columns past the row are padding.
        let pairs = wd / 2;
        even[0] = 0.0;
        for ((o, e), c) in odd.iter_mut().zip(even[1..].iter_mut()).zip(row.chunks_exact(2)) {
            *o = c[0];
            *e = c[1];
        }
        let odd_end = if wd % 2 == 1 {
            odd[pairs] = row[wd - 1];
            pairs + 1
        } else {
            pairs
        };
        even[pairs + 1..].fill(0.0);
        odd[odd_end..].fill(0.0);
    }
}

/// The three taps of one kernel row as contiguous slices of a padded row (see
/// [`dw_padded_row`]), each `ow` long: columns `ox·s + kx` for `kx = 0, 1, 2`.
#[inline(always)]
pub(crate) fn dw_taps(row: &[f32], s: usize, wd: usize, ow: usize) -> [&[f32]; 3] {
    if s == 1 {
        [&row[..ow], &row[1..1 + ow], &row[2..2 + ow]]
    } else {
        let half = (wd + 2).div_ceil(2);
        [&row[..ow], &row[half..half + ow], &row[1..1 + ow]]
    }
}

multiversion!(dw3x3_plane(x: &[f32], hw: [usize; 2], w: &[f32], s: usize, out: &mut [MaybeUninit<f32>]) {
    let [h, wd] = hw;
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    // A ring of three padded rows: each input row is read once.
    let slot = if s == 1 { wd + 2 } else { 2 * (wd + 2).div_ceil(2) };
    let mut ring = vec![0f32; 3 * slot];
    let mut next = 0;
    let k: [f32; 9] = w[..9].try_into().expect("3×3 weights");
    for oy in 0..oh {
        let top = oy * s;
        while next <= top + 2 {
            dw_padded_row(x, hw, next, s, &mut ring[(next % 3) * slot..(next % 3 + 1) * slot]);
            next += 1;
        }
        let row = |ky: usize| &ring[((top + ky) % 3) * slot..((top + ky) % 3 + 1) * slot];
        let [a0, a1, a2] = dw_taps(row(0), s, wd, ow);
        let [b0, b1, b2] = dw_taps(row(1), s, wd, ow);
        let [c0, c1, c2] = dw_taps(row(2), s, wd, ow);
        let o = &mut out[oy * ow..(oy + 1) * ow];
        // The nine products accumulated in tap order (row-major) from zero, each with one
        // fused multiply-add, as one pass that writes every output of the row: oneDNN's order,
        // so the result is PyTorch's to the bit.
        for x in 0..ow {
            let mut acc = 0.0 + k[0] * a0[x];
            acc = k[1].mul_add(a1[x], acc);
            acc = k[2].mul_add(a2[x], acc);
            acc = k[3].mul_add(b0[x], acc);
            acc = k[4].mul_add(b1[x], acc);
            acc = k[5].mul_add(b2[x], acc);
            acc = k[6].mul_add(c0[x], acc);
            acc = k[7].mul_add(c1[x], acc);
            acc = k[8].mul_add(c2[x], acc);
            o[x] = MaybeUninit::new(acc);
        }
    }
});

multiversion!(dw3x3_dx_plane(dy: &[f32], hw: [usize; 2], w: &[f32], s: usize, dx: &mut [f32]) {
    let [h, wd] = hw;
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    // Padded gradient rows, one per input row plus the two padding rows, in the layout of
    // `dw_padded_row` (even/odd columns apart for stride 2) so that every update is contiguous.
    let slot = if s == 1 { wd + 2 } else { 2 * (wd + 2).div_ceil(2) };
    let half = (wd + 2).div_ceil(2);
    let mut acc = vec![0f32; (h + 2) * slot];
    for oy in 0..oh {
        let g = &dy[oy * ow..(oy + 1) * ow];
        for ky in 0..3 {
            let row = &mut acc[(oy * s + ky) * slot..(oy * s + ky + 1) * slot];
            for kx in 0..3 {
                let k = w[ky * 3 + kx];
                let start = if s == 1 { kx } else { [0, half, 1][kx] };
                for (d, &v) in row[start..start + ow].iter_mut().zip(g) {
                    *d += k * v;
                }
            }
        }
    }
    for y in 0..h {
        let row = &acc[(y + 1) * slot..(y + 2) * slot];
        let d = &mut dx[y * wd..(y + 1) * wd];
        if s == 1 {
            d.copy_from_slice(&row[1..1 + wd]);
        } else {
            // Input column c is padded column c + 1: odd (c = 2m: odd[m]) or even
            // (c = 2m + 1: even[m + 1]).
            let (even, odd) = row.split_at(half);
            let mut pairs = d.chunks_exact_mut(2);
            for ((v, &o), &e) in (&mut pairs).zip(odd).zip(&even[1..]) {
                v[0] = o;
                v[1] = e;
            }
            if let [last] = pairs.into_remainder() {
                *last = odd[wd / 2];
            }
        }
    }
});

/// `lanes[k][i % 16] += g[i] · taps[k][i]` for the three taps of a row, one pass over `g`
/// (vectorisable; each lane sums its products in the same order as one dot product at a time).
#[inline(always)]
fn dot3_into(g: &[f32], taps: [&[f32]; 3], lanes: &mut [[f32; 16]]) {
    let n = taps.iter().fold(g.len(), |n, t| n.min(t.len()));
    let full = n / 16 * 16;
    let [l0, l1, l2] = lanes else { unreachable!("three taps") };
    for j in (0..full).step_by(16) {
        let gc: &[f32; 16] = g[j..j + 16].try_into().expect("16 lanes");
        let (a, b, c): (&[f32; 16], &[f32; 16], &[f32; 16]) =
            (taps[0][j..j + 16].try_into().expect("16"), taps[1][j..j + 16].try_into().expect("16"), taps[2][j..j + 16].try_into().expect("16"));
        for l in 0..16 {
            l0[l] += gc[l] * a[l];
            l1[l] += gc[l] * b[l];
            l2[l] += gc[l] * c[l];
        }
    }
    for j in full..n {
        l0[j - full] += g[j] * taps[0][j];
        l1[j - full] += g[j] * taps[1][j];
        l2[j - full] += g[j] * taps[2][j];
    }
}

multiversion!(dw3x3_dw_plane(x: &[f32], dy: &[f32], hw: [usize; 2], s: usize, dw: &mut [f64]) {
    let [h, wd] = hw;
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    let slot = if s == 1 { wd + 2 } else { 2 * (wd + 2).div_ceil(2) };
    let mut ring = vec![0f32; 3 * slot];
    // Per tap, 16 f32 lanes for the whole plane (a plane has at most a few thousand products
    // per lane), summed in f64 at the end.
    let mut lanes = [[0f32; 16]; 9];
    let mut next = 0;
    for oy in 0..oh {
        let top = oy * s;
        while next <= top + 2 {
            dw_padded_row(x, hw, next, s, &mut ring[(next % 3) * slot..(next % 3 + 1) * slot]);
            next += 1;
        }
        let g = &dy[oy * ow..(oy + 1) * ow];
        for ky in 0..3 {
            let p = top + ky;
            if p == 0 || p > h {
                continue;
            }
            let taps = dw_taps(&ring[(p % 3) * slot..(p % 3 + 1) * slot], s, wd, ow);
            dot3_into(g, taps, &mut lanes[ky * 3..ky * 3 + 3]);
        }
    }
    for (d, l) in dw.iter_mut().zip(&lanes) {
        *d += l.iter().map(|&v| v as f64).sum::<f64>();
    }
});

/// Depthwise 3×3 convolution, padding 1, stride `s` (1 or 2): `x [B, C, H, W]`,
/// `w [C, 1, 3, 3]` → `[B, C, H', W']`.
/// With `epilogue`, each output plane then gets `y · scale[c] + shift[c]` (and ReLU6).
pub fn depthwise3x3(x: &[f32], w: &[f32], [b, c, h, wd]: [usize; 4], s: usize, epilogue: Epilogue) -> Vec<f32> {
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    // SAFETY: dw3x3_plane writes every element of its plane (each of its oh rows, all ow columns).
    unsafe {
        par_uninit(b * c * oh * ow, oh * ow, |p, o| {
            let ch = p % c;
            dw3x3_plane(&x[p * h * wd..(p + 1) * h * wd], [h, wd], &w[ch * 9..(ch + 1) * 9], s, o);
            if let Some((scale, shift, relu6)) = epilogue {
                // SAFETY: written just above.
                affine_plane(assume_init_mut(o), scale[ch], shift[ch], relu6);
            }
        })
    }
}

/// `&mut [f32]` over storage whose every element has been written.
///
/// # Safety
/// Every element of `s` must be initialised.
unsafe fn assume_init_mut(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the caller guarantees initialisation.
    unsafe { &mut *(s as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// A buffer of `total` values whose chunks of `chunk` values (the last may be shorter) are
/// written in parallel by `write(index, chunk)`, without zero-filling it first (a memset of
/// every output tensor was ~4 % of a training step).
///
/// # Safety
/// `write` must initialise every element of the chunk it is given.
pub(crate) unsafe fn par_uninit(total: usize, chunk: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total > 0 {
        out.spare_capacity_mut()[..total].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| write(i, c));
    }
    // SAFETY: the chunks cover all `total` elements, and the caller's `write` initialised each.
    unsafe { out.set_len(total) };
    out
}

/// Gradients of [`depthwise3x3`] with respect to the input and the weight.
pub fn depthwise3x3_backward(x: &[f32], w: &[f32], dy: &[f32], [b, c, h, wd]: [usize; 4], s: usize) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(h * wd).enumerate().for_each(|(p, d)| {
        let ch = p % c;
        dw3x3_dx_plane(&dy[p * oh * ow..(p + 1) * oh * ow], [h, wd], &w[ch * 9..(ch + 1) * 9], s, d);
    });
    let dw: Vec<f32> = (0..c)
        .into_par_iter()
        .flat_map_iter(|ch| {
            let mut acc = [0f64; 9];
            for i in 0..b {
                let p = i * c + ch;
                dw3x3_dw_plane(&x[p * h * wd..(p + 1) * h * wd], &dy[p * oh * ow..(p + 1) * oh * ow], [h, wd], s, &mut acc);
            }
            acc.into_iter().map(|v| v as f32)
        })
        .collect();
    (dx, dw)
}
