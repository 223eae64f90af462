//! Dense 3×3 convolution, stride 1, padding 1 (the task heads' last layer) on NCHW data,
//! forward and backward. (The stem's 3×3 of few input channels, strided, is
//! [`super::conv3x3_few_inputs`].)
//!
//! Forward: with more than a few outputs (the segmentation head), Winograd's F(2×2, 3×3)
//! ([`super::winograd`]); with a few (the depth head), a direct accumulation over zero-padded
//! input rows `W + 2` wide, padded band by band of output rows as they are read (never as a
//! copy of the whole input). In that layout the tap `(dy, dx)` of every output pixel is the
//! same flat offset `dy·(W+2) + dx`, so no im2col buffer (9× the input) is built; the two
//! extra columns per output row are discarded at the end. burn-flex's generic convolution
//! tiles an im2col buffer and reached a quarter of the matrix-product throughput on the
//! segmentation head.
//!
//! Backward: the same padded layout, one matrix product per image for each gradient over the
//! nine taps at once (see [`conv3x3_backward`]).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Up to this many output channels the forward pass accumulates directly (the depth head has
/// one: matrix products with so few rows spend their time packing); above, Winograd.
const FEW_OUTPUTS: usize = 4;

/// Columns of the padded-width output computed together by the tests' [`direct`].
#[cfg(test)]
const TILE: usize = 2048;

/// Products below this many multiply-adds run on one thread.
const PARALLEL_MACS: usize = 1 << 21;

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// Geometry of one image in the padded layout.
#[derive(Clone, Copy)]
struct Padded {
    h: usize,
    w: usize,
    /// Row length, `W + 2`.
    pw: usize,
    /// Elements per padded channel plane: `(H + 2)·(W + 2)` plus 2 so that the last tap's
    /// read of the (discarded) overhang columns stays inside the plane.
    plane: usize,
    /// Output columns per channel in the padded-width layout, `H·(W + 2)`.
    n: usize,
}

impl Padded {
    fn new(h: usize, w: usize) -> Self {
        let pw = w + 2;
        Padded { h, w, pw, plane: (h + 2) * pw + 2, n: h * pw }
    }

    fn offset(&self, tap: usize) -> usize {
        (tap / 3) * self.pw + tap % 3
    }

    /// `[C, H, W]` → `[C, plane]`, zero border; with `pre`, each value of channel `c`
    /// becomes `relu6(v · pre[c])` on the way (a task head's depthwise 1×1 and ReLU6, bit
    /// for bit as the separate operations: one rounded product, then the clamp). Every
    /// element is written once: no zero fill first.
    fn pad(&self, x: &[f32], c: usize, pre: Option<&[f32]>) -> Vec<f32> {
        let mut p: Vec<f32> = Vec::with_capacity(c * self.plane);
        let g = *self;
        p.spare_capacity_mut()[..c * self.plane]
            .par_chunks_mut(self.plane)
            .zip(x.par_chunks(self.h * self.w))
            .enumerate()
            .with_min_len(8)
            .for_each(|(ch, (dst, src))| pad_plane(dst, src, [g.h, g.w, g.pw, 0], pre.map(|s| s[ch])));
        // SAFETY: pad_plane wrote every element of each of the c planes.
        unsafe { p.set_len(c * self.plane) };
        p
    }

    /// `[C, H, W]` → `[C, H·(W+2)]`, the two extra columns of each row zero.
    fn widen(&self, x: &[f32], c: usize) -> Vec<f32> {
        let mut p = vec![0.0f32; c * self.n];
        p.par_chunks_mut(self.n).zip(x.par_chunks(self.h * self.w)).with_min_len(8).for_each(|(dst, src)| {
            for y in 0..self.h {
                dst[y * self.pw..y * self.pw + self.w].copy_from_slice(&src[y * self.w..(y + 1) * self.w]);
            }
        });
        p
    }

    /// `[C, H·(W+2)]` (or `[C, plane]` read from `start`) → `[C, H, W]`, appended to `out`.
    /// With `bias`, channel `c` gets `+ bias[c]` on the way.
    fn crop_into(&self, p: &[f32], stride: usize, start: usize, bias: Option<&[f32]>, out: &mut [f32]) {
        out.par_chunks_mut(self.h * self.w).zip(p.par_chunks(stride)).enumerate().with_min_len(8).for_each(|(c, (dst, src))| {
            for y in 0..self.h {
                let s = start + y * self.pw;
                crop_row(&mut dst[y * self.w..(y + 1) * self.w], &src[s..s + self.w], bias.map(|b| b[c]));
            }
        });
    }
}

/// One output row from the padded-width layout: `dst = src` (`+ bias`).
#[inline(always)]
fn crop_row(dst: &mut [f32], src: &[f32], bias: Option<f32>) {
    match bias {
        Some(b) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + b),
        None => dst.copy_from_slice(src),
    }
}

multiversion!(pad_plane(dst: &mut [MaybeUninit<f32>], src: &[f32], geometry: [usize; 4], scale: Option<f32>) {
    // Padded rows r0, r0 + 1, … of the `h × w` input `src` into `dst` (rows of `pw ≥ w + 2`: a
    // zero, the input row, zeros up to `pw`; a zero row outside the input), as many as fit,
    // then zeros for the `dst.len() % pw` values after them: every element written.
    let [h, w, pw, r0] = geometry;
    let zero = MaybeUninit::new(0.0f32);
    let mut rows = dst.chunks_exact_mut(pw);
    for (k, row) in (&mut rows).enumerate() {
        let r = r0 + k;
        if r == 0 || r > h {
            row.fill(zero);
            continue;
        }
        row[0] = zero;
        let s = &src[(r - 1) * w..r * w];
        match scale {
            // NaN passes through the clamp, as in ReLU6.
            Some(k) => row[1..1 + w].iter_mut().zip(s).for_each(|(d, &v)| *d = MaybeUninit::new(super::relu6::scaled_relu6(v, k))),
            None => row[1..1 + w].iter_mut().zip(s).for_each(|(d, &v)| *d = MaybeUninit::new(v)),
        }
        row[1 + w..].fill(zero);
    }
    rows.into_remainder().fill(zero);
});

/// `x: [B, Cin, H, W]`, `w: [Cout, Cin, 3, 3]` → `[B, Cout, H, W]`, plus `bias[o]` if given.
/// With `pre`, the convolution's input is `relu6(x · pre[c])` instead of `x`: a task head
/// (depthwise 1×1, ReLU6, 3×3) in one pass over its input, computed as the three operations
/// one after the other would.
pub fn conv3x3(x: &[f32], w: &[f32], [b, cin, h, wd]: [usize; 4], cout: usize, pre: Option<&[f32]>, bias: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(x.len(), b * cin * h * wd, "conv3x3: input size");
    assert_eq!(w.len(), cout * cin * 9, "conv3x3: weight size");
    let g = Padded::new(h, wd);
    let mut out = vec![0.0f32; b * cout * h * wd];
    if out.is_empty() || cin == 0 {
        return out;
    }
    if cout > FEW_OUTPUTS {
        let u = super::winograd::transform_weights(w, cout, cin);
        for (xi, oi) in x.chunks(cin * h * wd).zip(out.chunks_mut(cout * h * wd)) {
            super::winograd::conv(xi, &u, [cin, h, wd], cout, pre, bias, oi);
        }
        return out;
    }
    // Few outputs (the depth head): direct accumulation, band by band of output rows.
    for (xi, oi) in x.chunks(cin * h * wd).zip(out.chunks_mut(cout * h * wd)) {
        direct_in_bands(xi, w, g, [cin, cout], pre, bias, oi);
    }
    out
}

/// Output rows per task of [`direct_in_bands`].
const BAND_ROWS: usize = 8;

/// Few output channels, one image: `x [Cin, H, W]` → `out [Cout, H, W]` (every element
/// written), `out[o] = Σ_c Σ_t w[o, c, t] · xp[c] shifted by tap t` (+ `bias[o]`), with `xp`
/// the zero-padded input (`relu6(x · pre[c])` with `pre`). Bands of output rows run in
/// parallel; each pads the R + 2 input rows it reads, one channel at a time, into a block of
/// its own and accumulates that channel's nine taps into the band's outputs (padded-width
/// layout, in L1). The sums and their order are those over a padded copy of the whole input
/// ([`direct`] in the tests), without writing that copy (the size of the input) and reading
/// it back.
fn direct_in_bands(x: &[f32], w: &[f32], g: Padded, [cin, cout]: [usize; 2], pre: Option<&[f32]>, bias: Option<&[f32]>, out: &mut [f32]) {
    let out_ptr = out.as_mut_ptr() as usize;
    (0..g.h.div_ceil(BAND_ROWS)).into_par_iter().for_each(|band| {
        let r0 = band * BAND_ROWS;
        let rows = BAND_ROWS.min(g.h - r0);
        let n = rows * g.pw;
        // The band's padded rows r0 .. r0 + rows + 2, plus the 2 values the last tap's read
        // of the discarded overhang columns reaches.
        let mut block = vec![MaybeUninit::uninit(); (rows + 2) * g.pw + 2];
        let mut acc = vec![0f32; cout * n];
        for c in 0..cin {
            pad_plane(&mut block, &x[c * g.h * g.w..(c + 1) * g.h * g.w], [g.h, g.w, g.pw, r0], pre.map(|p| p[c]));
            // SAFETY: pad_plane wrote every element of `block`.
            let block = unsafe { super::buffers::assume_init_mut(&mut block) };
            band_taps(block, w, [g.pw, cin, cout, c], &mut acc);
        }
        for o in 0..cout {
            for r in 0..rows {
                // SAFETY: row r0 + r of plane o of `out` (`[cout, h, w]`): rows of this band
                // only, so disjoint between tasks; `out` outlives the parallel loop.
                let dst = unsafe { std::slice::from_raw_parts_mut((out_ptr as *mut f32).add((o * g.h + r0 + r) * g.w), g.w) };
                crop_row(dst, &acc[o * n + r * g.pw..][..g.w], bias.map(|b| b[o]));
            }
        }
    });
}

multiversion!(band_taps(block: &[f32], w: &[f32], geometry: [usize; 4], acc: &mut [f32]) {
    // acc[o, j] += the nine taps of channel c in order (each a fused multiply-add, the
    // accumulator in a register across them) for the band's `acc.len() / cout` outputs.
    let [pw, cin, cout, c] = geometry;
    let n = acc.len() / cout;
    let src: [&[f32]; 9] = std::array::from_fn(|tap| {
        let off = (tap / 3) * pw + tap % 3;
        &block[off..off + n]
    });
    for (o, acc) in acc.chunks_exact_mut(n).enumerate() {
        let k: [f32; 9] = std::array::from_fn(|tap| w[(o * cin + c) * 9 + tap]);
        for (j, a) in acc.iter_mut().enumerate() {
            let mut v = *a;
            for tap in 0..9 {
                v = src[tap][j].mul_add(k[tap], v);
            }
            *a = v;
        }
    }
});

/// Few output channels over a padded copy of the whole input: `y[o, j] = Σ_c Σ_t w[o, c, t] ·
/// xp[c, off_t + j]`, in column tiles (parallel). The path of the forward pass before
/// [`direct_in_bands`], kept as its reference.
#[cfg(test)]
fn direct(xp: &[f32], w: &[f32], g: Padded, cin: usize, cout: usize, y: &mut [f32]) {
    let tiles = g.n.div_ceil(TILE);
    let results: Vec<Vec<f32>> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let j0 = t * TILE;
            let len = TILE.min(g.n - j0);
            let mut acc = vec![0.0f32; cout * len];
            direct_tile(xp, w, [g.plane, g.pw, cin, cout, j0, len], &mut acc);
            acc
        })
        .collect();
    for (t, acc) in results.iter().enumerate() {
        let j0 = t * TILE;
        let len = TILE.min(g.n - j0);
        for o in 0..cout {
            y[o * g.n + j0..o * g.n + j0 + len].copy_from_slice(&acc[o * len..(o + 1) * len]);
        }
    }
}

#[cfg(test)]
multiversion!(direct_tile(xp: &[f32], w: &[f32], geometry: [usize; 6], acc: &mut [f32]) {
    let [plane, pw, cin, cout, j0, len] = geometry;
    for c in 0..cin {
        let p = &xp[c * plane..(c + 1) * plane];
        let src: [&[f32]; 9] = std::array::from_fn(|tap| {
            let off = (tap / 3) * pw + tap % 3 + j0;
            &p[off..off + len]
        });
        for o in 0..cout {
            let k: [f32; 9] = std::array::from_fn(|tap| w[(o * cin + c) * 9 + tap]);
            // The nine taps of this channel in order, each a fused multiply-add, with the
            // accumulator kept in a register across them.
            for (j, a) in acc[o * len..(o + 1) * len].iter_mut().enumerate() {
                let mut v = *a;
                for tap in 0..9 {
                    v = src[tap][j].mul_add(k[tap], v);
                }
                *a = v;
            }
        }
    }
});

/// Gradients of [`conv3x3`]: `(dx [B, Cin, H, W], dw [Cout, Cin, 3, 3])` for `dy [B, Cout, H, W]`.
/// `dx` is computed only when `want_dx`.
///
/// Both are one matrix product per image over the nine taps at once. With `R [9·Cout, plane]`
/// the output gradient in the padded layout shifted by each tap's offset
/// (`R[(t, o), p] = dYp[o, p − off_t]`, zero elsewhere; 9 × the small `dY`, not the large
/// input): `dXp = Wₛ · R` with `Wₛ[c, (t, o)] = W[o, c, t]`, and `dWᵀ[c, (t, o)] = Xp · Rᵀ`,
/// so that the input is packed once per image instead of once per tap.
pub fn conv3x3_backward(x: &[f32], w: &[f32], dy: &[f32], [b, cin, h, wd]: [usize; 4], cout: usize, want_dx: bool) -> (Option<Vec<f32>>, Vec<f32>) {
    let g = Padded::new(h, wd);
    let mut dx = want_dx.then(|| vec![0.0f32; b * cin * h * wd]);
    if b * h * wd * cin * cout == 0 {
        return (dx, vec![0.0f32; cout * cin * 9]);
    }
    let k = 9 * cout;
    // The shifted rows cover the same ranges for every image: zeroed once.
    let mut shifted = vec![0.0f32; k * g.plane];
    let mut dwt = vec![0.0f32; cin * k];
    let stacked: Vec<f32> = if want_dx {
        (0..cin * k).map(|i| (i / k, i % k / cout, i % cout)).map(|(c, t, o)| w[(o * cin + c) * 9 + t]).collect()
    } else {
        Vec::new()
    };
    let mut dxp = if want_dx { vec![0.0f32; cin * g.plane] } else { Vec::new() };
    for i in 0..b {
        let dyp = g.widen(&dy[i * cout * h * wd..(i + 1) * cout * h * wd], cout);
        for t in 0..9 {
            let off = g.offset(t);
            for o in 0..cout {
                let row = (t * cout + o) * g.plane;
                shifted[row + off..row + off + g.n].copy_from_slice(&dyp[o * g.n..(o + 1) * g.n]);
            }
        }
        let xp = g.pad(&x[i * cin * h * wd..(i + 1) * cin * h * wd], cin, None);
        // dWᵀ[c, (t, o)] (+)= Σ_p Xp[c, p] · R[(t, o), p]: rhs element (p, col) is
        // shifted[col·plane + p].
        // SAFETY: dst is `cin × k` row-major, lhs `cin × plane` row-major, rhs `plane × k`
        // column-major, all inside their buffers; dst aliases neither.
        unsafe {
            gemm::gemm(
                cin, k, g.plane,
                dwt.as_mut_ptr(), 1, k as isize, i > 0,
                xp.as_ptr(), 1, g.plane as isize,
                shifted.as_ptr(), g.plane as isize, 1,
                1.0, 1.0, false, false, false,
                parallelism(cin, k, g.plane),
            );
        }
        if let Some(dx) = dx.as_mut() {
            // dXp[c, p] = Σ_{(t, o)} Wₛ[c, (t, o)] · R[(t, o), p].
            // SAFETY: dst is `cin × plane` row-major, lhs `cin × k` row-major, rhs
            // `k × plane` row-major, all inside their buffers; dst aliases neither.
            unsafe {
                gemm::gemm(
                    cin, g.plane, k,
                    dxp.as_mut_ptr(), 1, g.plane as isize, false,
                    stacked.as_ptr(), 1, k as isize,
                    shifted.as_ptr(), 1, g.plane as isize,
                    0.0, 1.0, false, false, false,
                    parallelism(cin, g.plane, k),
                );
            }
            g.crop_into(&dxp, g.plane, g.pw + 1, None, &mut dx[i * cin * h * wd..(i + 1) * cin * h * wd]);
        }
    }
    let dw = (0..cout * cin * 9).map(|i| (i / (9 * cin), i / 9 % cin, i % 9)).map(|(o, c, t)| dwt[c * k + t * cout + o]).collect();
    (dx, dw)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The definition at stride 1, in f64: `y[b,o,i,j] = Σ_c Σ_{dy,dx} w[o,c,dy,dx] ·
    /// x[b,c,i+dy−1,j+dx−1]`.
    fn naive(x: &[f32], w: &[f32], dims: [usize; 4], cout: usize) -> Vec<f64> {
        naive_strided(x, w, dims, cout, 1)
    }

    pub(in crate::cpu) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn forward_matches_the_definition() {
        // Five or more outputs take the Winograd path: odd and even sizes, single rows and columns.
        for &(dims, cout) in &[
            ([2, 5, 7, 9], 3), ([1, 1, 1, 1], 1), ([1, 3, 2, 17], 1), ([3, 16, 6, 5], 20), ([1, 3, 40, 70], 2), ([2, 6, 30, 80], 9),
            ([1, 8, 7, 9], 12), ([1, 5, 1, 1], 6), ([1, 5, 1, 6], 7), ([2, 3, 3, 1], 5), ([1, 64, 12, 16], 40),
            // Wider than one block of tiles (160 columns): a second block that starts inside a row.
            ([1, 3, 5, 203], 6), ([1, 2, 4, 322], 5),
        ] {
            let [b, cin, h, wd] = dims;
            let x = values(b * cin * h * wd, 1);
            let w = values(cout * cin * 9, 2);
            let y = conv3x3(&x, &w, dims, cout, None, None);
            for (a, e) in y.iter().zip(naive(&x, &w, dims, cout)) {
                assert!((*a as f64 - e).abs() < 1e-5 * (1.0 + e.abs()), "{dims:?}: {a} vs {e}");
            }
        }
    }

    /// The fused task head (scale, ReLU6, 3×3, bias) is bit for bit the three steps apart,
    /// NaN included, on both forward paths (few outputs: direct; more: Winograd).
    #[test]
    fn fused_head_equals_its_steps() {
        for &(dims, cout) in &[([2, 6, 7, 9], 3), ([1, 16, 30, 80], 9), ([1, 4, 1, 5], 1), ([1, 3, 4, 181], 6)] {
            let [b, cin, h, wd] = dims;
            let mut x: Vec<f32> = values(b * cin * h * wd, 3).iter().map(|v| v * 20.0).collect();
            x[h * wd + 2] = f32::NAN;
            let w = values(cout * cin * 9, 4);
            let pre: Vec<f32> = values(cin, 5).iter().map(|v| v * 2.0).collect();
            let bias = values(cout, 6);
            let steps: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let t = v * pre[i / (h * wd) % cin];
                    if t.is_nan() { t } else { t.clamp(0.0, 6.0) }
                })
                .collect();
            assert!(steps.iter().any(|&v| v == 6.0) && steps.iter().any(|&v| v == 0.0), "both clamps are exercised");
            let expect: Vec<f32> = conv3x3(&steps, &w, dims, cout, None, None).iter().enumerate().map(|(i, &v)| v + bias[i / (h * wd) % cout]).collect();
            let fused = conv3x3(&x, &w, dims, cout, Some(&pre), Some(&bias));
            assert_eq!(fused.len(), expect.len());
            for (i, (a, e)) in fused.iter().zip(&expect).enumerate() {
                assert!(a.to_bits() == e.to_bits() || (a.is_nan() && e.is_nan()), "{dims:?} at {i}: {a} vs {e}");
            }
            assert!(fused.iter().any(|v| v.is_nan()), "the NaN reaches the outputs around it");
        }
    }

    /// The banded direct path gives the bits of the direct sum over a padded copy of the
    /// whole input (NaN, both clamps and bias included), with bands that end inside the
    /// image, a last short band and single rows or columns.
    #[test]
    fn bands_are_the_sum_over_the_padded_copy() {
        for &([cin, h, wd], cout) in &[([3, 1, 4], 1), ([2, 1, 9], 2), ([4, 7, 1], 1), ([5, 8, 6], 3), ([6, 17, 13], 4), ([16, 24, 40], 1)] {
            let mut x: Vec<f32> = values(cin * h * wd, 7).iter().map(|v| v * 20.0).collect();
            x[cin * h * wd / 2] = f32::NAN;
            let w = values(cout * cin * 9, 8);
            let pre: Vec<f32> = values(cin, 9).iter().map(|v| v * 2.0).collect();
            let bias = values(cout, 10);
            let g = Padded::new(h, wd);
            for (pre, bias) in [(None, None), (Some(&pre[..]), Some(&bias[..]))] {
                let mut y = vec![0.0f32; cout * g.n];
                direct(&g.pad(&x, cin, pre), &w, g, cin, cout, &mut y);
                let mut expect = vec![0.0f32; cout * h * wd];
                g.crop_into(&y, g.n, 0, bias, &mut expect);
                let mut got = vec![f32::INFINITY; cout * h * wd];
                direct_in_bands(&x, &w, g, [cin, cout], pre, bias, &mut got);
                for (i, (a, e)) in got.iter().zip(&expect).enumerate() {
                    assert!(a.to_bits() == e.to_bits() || (a.is_nan() && e.is_nan()), "{cin}×{h}×{wd} → {cout} at {i}: {a} vs {e}");
                }
                assert!(got.iter().any(|v| v.is_nan()) && got.iter().any(|v| !v.is_nan()));
            }
        }
    }

    /// The definition at stride `s` (padding 1), in f64.
    pub(in crate::cpu) fn naive_strided(x: &[f32], w: &[f32], [b, cin, h, wd]: [usize; 4], cout: usize, s: usize) -> Vec<f64> {
        let (oh, ow) = ((h - 1) / s + 1, (wd - 1) / s + 1);
        let mut y = vec![0.0; b * cout * oh * ow];
        for n in 0..b {
            for o in 0..cout {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = 0.0f64;
                        for c in 0..cin {
                            for t in 0..9 {
                                let (yy, xx) = ((i * s + t / 3) as isize - 1, (j * s + t % 3) as isize - 1);
                                if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < wd {
                                    acc += w[(o * cin + c) * 9 + t] as f64 * x[((n * cin + c) * h + yy as usize) * wd + xx as usize] as f64;
                                }
                            }
                        }
                        y[((n * cout + o) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        y
    }


    /// ⟨conv(x), dy⟩ is bilinear: its gradients are exactly the adjoints. Checked against
    /// the definition through finite differences of the f64 reference, which is linear, so
    /// the difference quotient is exact up to rounding.
    #[test]
    fn backward_is_the_adjoint() {
        let (dims, cout) = ([2, 4, 5, 6], 3);
        let [b, cin, h, wd] = dims;
        let x = values(b * cin * h * wd, 3);
        let w = values(cout * cin * 9, 4);
        let dy = values(b * cout * h * wd, 5);
        let (dx, dw) = conv3x3_backward(&x, &w, &dy, dims, cout, true);
        let dx = dx.unwrap();
        let inner = |x: &[f32], w: &[f32]| -> f64 { naive(x, w, dims, cout).iter().zip(&dy).map(|(a, b)| a * *b as f64).sum() };
        let base = inner(&x, &w);
        for i in (0..x.len()).step_by(7) {
            let mut xe = x.clone();
            xe[i] += 1.0;
            let e = inner(&xe, &w) - base;
            assert!((dx[i] as f64 - e).abs() < 1e-4, "dx[{i}]: {} vs {e}", dx[i]);
        }
        for i in 0..w.len() {
            let mut we = w.clone();
            we[i] += 1.0;
            let e = inner(&x, &we) - base;
            assert!((dw[i] as f64 - e).abs() < 1e-4, "dw[{i}]: {} vs {e}", dw[i]);
        }
        let (none, dw2) = conv3x3_backward(&x, &w, &dy, dims, cout, false);
        assert!(none.is_none());
        assert_eq!(dw, dw2);
    }
}
