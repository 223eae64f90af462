//! Depthwise 3×3 convolution (padding 1, stride 1 or 2) on `[B, C, H, W]` f32 buffers,
//! forward (with an optional BatchNorm epilogue) and backward, reading each input row once;
//! and the padded-row layout that the stem's convolution ([`super::conv3x3_few_inputs`])
//! shares with it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::affine::{affine_plane, Epilogue};
use super::relu6::relu6_value;
use super::buffers::{assume_init_mut, par_uninit, with_scratch};

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
    dw_padded_band_row(x, 0, [h, wd], p, s, dst)
}

/// [`dw_padded_row`] for a band of the plane: `band` holds input rows `first`, `first + 1`, …
/// (each `W` long) and must hold row `p − 1` when `p` is not a padding row.
#[inline(always)]
pub(crate) fn dw_padded_band_row(band: &[f32], first: usize, [h, wd]: [usize; 2], p: usize, s: usize, dst: &mut [f32]) {
    if p == 0 || p > h {
        dst.fill(0.0);
        return;
    }
    let row = &band[(p - 1 - first) * wd..(p - first) * wd];
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

/// One channel plane's depthwise 3×3 convolution, then `affine` (`y · scale + shift`, ReLU6
/// if asked, as [`affine_plane`]): [`dw3x3_small_plane`] for a small plane at stride 1,
/// [`dw3x3_band`] over the whole plane otherwise.
fn dw3x3_plane(x: &[f32], hw: [usize; 2], w: &[f32], s: usize, affine: Option<(f32, f32, bool)>, out: &mut [MaybeUninit<f32>]) {
    let [h, wd] = hw;
    if s == 1 && (h + 2) * (wd + 2) <= SMALL_PLANE {
        // The scratch is taken here, outside the multiversioned kernel: a closure inside it
        // would be compiled without its target features (no FMA instruction for `mul_add`).
        let need = (h + 2) * (wd + 2) + (h - 1) * (wd + 2) + wd;
        return with_scratch(&SMALL, need, |scratch| dw3x3_small_plane(x, hw, w, affine, scratch, out));
    }
    dw3x3_band(x, 0, hw, w, s, 0..dw_out(h, s), out);
    if let Some((scale, shift, relu6)) = affine {
        // SAFETY: dw3x3_band wrote every element of the plane.
        affine_plane(unsafe { assume_init_mut(out) }, scale, shift, relu6);
    }
}

/// Padded planes up to this many values (16 KB: L1) take [`dw3x3_small_plane`]: the late
/// blocks' 30×40 and 15×20 planes, whose rows are one to three vectors long.
const SMALL_PLANE: usize = 4096;

thread_local! {
    /// Each thread's padded plane and flat output for [`dw3x3_small_plane`] (every value is
    /// written before it is read).
    static SMALL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

multiversion!(dw3x3_small_plane(x: &[f32], hw: [usize; 2], w: &[f32], affine: Option<(f32, f32, bool)>, scratch: &mut [f32], out: &mut [MaybeUninit<f32>]) {
    // Stride 1, the whole plane at once: the zero-padded plane P (rows W + 2 long) is written
    // first, then output (y, x) is computed at flat index i = y·(W + 2) + x of one long loop
    // whose tap (ky, kx) is P[i + ky·(W + 2) + kx] (the two columns past each row are computed
    // and dropped). Row by row, a row of one or two vectors leaves the nine dependent
    // multiply-adds of each output waiting on each other; one loop over the plane keeps many
    // in flight. The same products in the same order as [`dw3x3_band`]: the same bits.
    // `scratch`: at least (H + 2)·(W + 2) + (H − 1)·(W + 2) + W values.
    let [h, wd] = hw;
    let pw = wd + 2;
    let n = (h - 1) * pw + wd;
    {
        let (p, flat) = scratch.split_at_mut((h + 2) * pw);
        p[..pw].fill(0.0);
        p[(h + 1) * pw..].fill(0.0);
        for (y, row) in p[pw..(h + 1) * pw].chunks_exact_mut(pw).enumerate() {
            row[0] = 0.0;
            row[pw - 1] = 0.0;
            for (d, &v) in row[1..=wd].iter_mut().zip(&x[y * wd..(y + 1) * wd]) {
                *d = v;
            }
        }
        let k: [f32; 9] = w[..9].try_into().expect("3×3 weights");
        let t: [&[f32]; 9] = std::array::from_fn(|j| &p[(j / 3) * pw + j % 3..][..n]);
        for (i, o) in flat[..n].iter_mut().enumerate() {
            let mut acc = 0.0 + k[0] * t[0][i];
            acc = k[1].mul_add(t[1][i], acc);
            acc = k[2].mul_add(t[2][i], acc);
            acc = k[3].mul_add(t[3][i], acc);
            acc = k[4].mul_add(t[4][i], acc);
            acc = k[5].mul_add(t[5][i], acc);
            acc = k[6].mul_add(t[6][i], acc);
            acc = k[7].mul_add(t[7][i], acc);
            acc = k[8].mul_add(t[8][i], acc);
            *o = acc;
        }
        // Each row out, through the epilogue on the way (the arithmetic of `affine_plane`).
        for (y, o) in out[..h * wd].chunks_exact_mut(wd).enumerate() {
            let row = &flat[y * pw..y * pw + wd];
            match affine {
                Some((scale, shift, true)) => o.iter_mut().zip(row).for_each(|(o, &v)| *o = MaybeUninit::new(relu6_value(v.mul_add(scale, shift)))),
                Some((scale, shift, false)) => o.iter_mut().zip(row).for_each(|(o, &v)| *o = MaybeUninit::new(v.mul_add(scale, shift))),
                None => o.iter_mut().zip(row).for_each(|(o, &v)| *o = MaybeUninit::new(v)),
            }
        }
    }
});

/// The padded-row slot size of a plane `W` wide at stride `s` (see [`dw_padded_row`]).
fn dw_slot(wd: usize, s: usize) -> usize {
    if s == 1 { wd + 2 } else { 2 * (wd + 2).div_ceil(2) }
}

multiversion!(pub(crate) dw3x3_band(band: &[f32], first: usize, hw: [usize; 2], w: &[f32], s: usize, rows: std::ops::Range<usize>, out: &mut [MaybeUninit<f32>]) {
    // Output rows `rows` of one channel's depthwise 3×3 convolution into `out` (row `oy` at
    // `(oy − rows.start) · W'`), from `band`, which holds input rows `first ..` (every row the
    // output rows read: `rows.start · s − 1 ..= (rows.end − 1) · s + 1`, within the plane).
    let [_, wd] = hw;
    let ow = dw_out(wd, s);
    // A ring of three padded rows: each input row is read once.
    let slot = dw_slot(wd, s);
    let mut ring = vec![0f32; 3 * slot];
    let mut next = rows.start * s;
    let k: [f32; 9] = w[..9].try_into().expect("3×3 weights");
    for oy in rows.clone() {
        let top = oy * s;
        while next <= top + 2 {
            dw_padded_band_row(band, first, hw, next, s, &mut ring[(next % 3) * slot..(next % 3 + 1) * slot]);
            next += 1;
        }
        let row = |ky: usize| &ring[((top + ky) % 3) * slot..((top + ky) % 3 + 1) * slot];
        let [a0, a1, a2] = dw_taps(row(0), s, wd, ow);
        let [b0, b1, b2] = dw_taps(row(1), s, wd, ow);
        let [c0, c1, c2] = dw_taps(row(2), s, wd, ow);
        let o = &mut out[(oy - rows.start) * ow..(oy - rows.start + 1) * ow];
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
    let slot = dw_slot(wd, s);
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
    let slot = dw_slot(wd, s);
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
            let affine = epilogue.map(|(scale, shift, relu6)| (scale[ch], shift[ch], relu6));
            dw3x3_plane(&x[p * h * wd..(p + 1) * h * wd], [h, wd], &w[ch * 9..(ch + 1) * 9], s, affine, o);
        })
    }
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
