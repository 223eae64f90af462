//! Dense 3×3 convolution (stride 1, padding 1) by Winograd's minimal filtering F(2×2, 3×3):
//! each 2×2 block of outputs from a 4×4 block of the padded input with 16 multiplications per
//! input channel instead of 36. The products become 16 matrix products
//! `M_ξ[Cout, T] = U_ξ[Cout, Cin] · V_ξ[Cin, T]` over the T tiles of one row of tiles, with
//! `U = G g Gᵀ` (the weights, transformed once), `V = Bᵀ d B` (the input tiles) and the
//! outputs `Y = Aᵀ M A` (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2016). The segmentation head (256 → classes at stride 4) is a third of the network's
//! multiply-adds; this path does it with 2.25× fewer.
//!
//! Rounding: the transforms add and subtract (the weights' also halve, exactly), so outputs
//! carry a few more float32 roundings than the direct sum: within ~1e-6 of the largest
//! partial sum, far below the model's parity bound, and the unit tests check it against the
//! definition computed in f64.

use rayon::prelude::*;

/// Tiles per block (see [`conv`]).
const TILES: usize = 80;

/// `w [Cout, Cin, 3, 3]` → `U [16, Cout, Cin]`, `U_ξ = (G g Gᵀ)_ξ` with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`, computed in f64 and rounded once.
pub fn transform_weights(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    assert_eq!(w.len(), cout * cin * 9, "winograd: weight size");
    let mut u = vec![0f32; 16 * cout * cin];
    let gx = |a: f64, b: f64, c: f64| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for o in 0..cout {
        for c in 0..cin {
            let g: Vec<f64> = w[(o * cin + c) * 9..(o * cin + c + 1) * 9].iter().map(|&v| v as f64).collect();
            // Columns of G g (4 × 3), then rows: (G g) Gᵀ.
            let cols: Vec<[f64; 4]> = (0..3).map(|j| gx(g[j], g[3 + j], g[6 + j])).collect();
            for i in 0..4 {
                let row = gx(cols[0][i], cols[1][i], cols[2][i]);
                for (j, v) in row.into_iter().enumerate() {
                    u[((i * 4 + j) * cout + o) * cin + c] = v as f32;
                }
            }
        }
    }
    u
}

/// One image: `x [Cin, H, W]`, `u` from [`transform_weights`] → `out [Cout, H, W]` (every
/// element written), plus `bias[o]` if given. With `pre`, the convolution's input is
/// `relu6(x · pre[c])` (a task head's depthwise 1×1 and ReLU6, applied as the tiles are read).
/// Blocks of tiles run in parallel, each with its own scratch; the zero padding exists only
/// in the few rows of scratch a block reads, never as a padded copy of the input.
pub fn conv(x: &[f32], u: &[f32], [cin, h, w]: [usize; 3], cout: usize, pre: Option<&[f32]>, bias: Option<&[f32]>, out: &mut [f32]) {
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    assert_eq!(x.len(), cin * h * w, "winograd: input size");
    assert_eq!(out.len(), cout * h * w, "winograd: output size");
    assert_eq!(u.len(), 16 * cout * cin, "winograd: weights");
    // Blocks of up to TILES tiles of one row of tiles, so that the transformed input
    // (16 · Cin · TILES values) stays close to the core between its transform and its products.
    let per_row = tw.div_ceil(TILES);
    let out_ptr = out.as_mut_ptr() as usize;
    (0..th * per_row).into_par_iter().for_each_init(
        || (vec![0f32; 16 * cin * TILES], vec![0f32; 16 * cout * TILES], vec![0f32; 5 * (2 * TILES + 2)]),
        |(v, m, scratch), block| {
            let (ty, t0) = (block / per_row, block % per_row * TILES);
            let tb = TILES.min(tw - t0);
            let n = 2 * tb + 2;
            let (rows, combo) = scratch.split_at_mut(4 * n);
            for c in 0..cin {
                padded_rows(&x[c * h * w..(c + 1) * h * w], [h, w, 2 * ty, 2 * t0], pre.map(|p| p[c]), &mut rows[..4 * n]);
                input_tiles(&rows[..4 * n], n, tb, combo, v, c, cin);
            }
            for xi in 0..16 {
                // SAFETY: m_ξ is `cout × tb` (row stride tb) inside m; u_ξ is `cout × cin`
                // (row stride cin) inside u; v_ξ is `cin × tb` (row stride tb) inside v.
                unsafe {
                    gemm::gemm(
                        cout, tb, cin,
                        m.as_mut_ptr().add(xi * cout * tb), 1, tb as isize, false,
                        u.as_ptr().add(xi * cout * cin), 1, cin as isize,
                        v.as_ptr().add(xi * cin * tb), 1, tb as isize,
                        0.0, 1.0, false, false, false,
                        gemm::Parallelism::None,
                    );
                }
            }
            let cols = (2 * t0)..(2 * (t0 + tb)).min(w);
            for o in 0..cout {
                // SAFETY: columns `cols` of rows 2·ty and 2·ty + 1 (the latter only below h) of
                // plane o of `out`, two disjoint ranges inside it that no other block touches;
                // `out` outlives the parallel loop.
                let row = |r: usize| unsafe { std::slice::from_raw_parts_mut((out_ptr as *mut f32).add(o * h * w + r * w + cols.start), cols.len()) };
                let top = row(2 * ty);
                let bottom = (2 * ty + 1 < h).then(|| row(2 * ty + 1));
                output_tiles(m, [o, cout, tb], bias.map_or(0.0, |b| b[o]), top, bottom);
            }
        },
    );
}

multiversion!(padded_rows(plane: &[f32], geometry: [usize; 4], scale: Option<f32>, rows: &mut [f32]) {
    // Rows r0 .. r0 + 3 and columns c0 .. c0 + n of the input zero-padded by one (padded
    // (r, c) is input (r − 1, c − 1)), as four rows of n = rows.len() / 4; with `scale`,
    // each value v becomes relu6(v · scale).
    let [h, w, r0, c0] = geometry;
    let n = rows.len() / 4;
    for (k, row) in rows.chunks_exact_mut(n).enumerate() {
        let r = r0 + k;
        if r == 0 || r > h {
            row.fill(0.0);
            continue;
        }
        let src = &plane[(r - 1) * w..r * w];
        // Padded columns c0 .. c0 + n that lie on the input: 1 ..= w.
        let (lo, hi) = (c0.max(1), (c0 + n).min(w + 1));
        row[..lo - c0].fill(0.0);
        let (dst, s) = (&mut row[lo - c0..hi - c0], &src[lo - 1..hi - 1]);
        match scale {
            Some(k) => dst.iter_mut().zip(s).for_each(|(d, &v)| *d = super::relu6::scaled_relu6(v, k)),
            None => dst.copy_from_slice(s),
        }
        row[hi - c0..].fill(0.0);
    }
});

multiversion!(input_tiles(rows: &[f32], pw: usize, tw: usize, scratch: &mut [f32], v: &mut [f32], c: usize, cin: usize) {
    // Bᵀ d B with Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]: first
    // across the four rows (whole rows at once), then across columns 2t .. 2t + 3 as pairs
    // (2t, 2t + 1) and (2t + 2, 2t + 3), loops that vectorise with interleaved loads.
    let n = 2 * tw + 2;
    let r: [&[f32]; 4] = std::array::from_fn(|k| &rows[k * pw..k * pw + n]);
    let s = &mut scratch[..n];
    for i in 0..4 {
        match i {
            0 => s.iter_mut().zip(r[0]).zip(r[2]).for_each(|((d, &a), &b)| *d = a - b),
            1 => s.iter_mut().zip(r[1]).zip(r[2]).for_each(|((d, &a), &b)| *d = a + b),
            2 => s.iter_mut().zip(r[2]).zip(r[1]).for_each(|((d, &a), &b)| *d = a - b),
            _ => s.iter_mut().zip(r[1]).zip(r[3]).for_each(|((d, &a), &b)| *d = a - b),
        }
        let at = |j: usize| ((i * 4 + j) * cin + c) * tw;
        let (v0, rest) = v[at(0)..].split_at_mut(cin * tw);
        let (v1, rest) = rest.split_at_mut(cin * tw);
        let (v2, v3) = rest.split_at_mut(cin * tw);
        let pairs = s[..2 * tw].chunks_exact(2).zip(s[2..].chunks_exact(2));
        for ((((a, b), d0), d1), (d2, d3)) in pairs.zip(&mut v0[..tw]).zip(&mut v1[..tw]).zip(v2[..tw].iter_mut().zip(&mut v3[..tw])) {
            *d0 = a[0] - b[0];
            *d1 = a[1] + b[0];
            *d2 = b[0] - a[1];
            *d3 = a[1] - b[1];
        }
    }
});

multiversion!(output_tiles(m: &[f32], geometry: [usize; 3], bias: f32, top: &mut [f32], bottom: Option<&mut [f32]>) {
    // Aᵀ M A with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], then the bias: tile t gives columns
    // 2t and 2t + 1 (when inside `top`) of the block's two output rows.
    let [o, cout, tb] = geometry;
    let ms: [&[f32]; 16] = std::array::from_fn(|xi| &m[(xi * cout + o) * tb..(xi * cout + o + 1) * tb]);
    let p = |t: usize| {
        let p0: [f32; 4] = std::array::from_fn(|j| ms[j][t] + ms[4 + j][t] + ms[8 + j][t]);
        let p1: [f32; 4] = std::array::from_fn(|j| ms[4 + j][t] - ms[8 + j][t] - ms[12 + j][t]);
        (p0, p1)
    };
    for (t, d) in top.chunks_mut(2).enumerate().take(tb) {
        let (p0, _) = p(t);
        let y = [p0[0] + p0[1] + p0[2], p0[1] - p0[2] - p0[3]];
        for (d, y) in d.iter_mut().zip(y) {
            *d = y + bias;
        }
    }
    if let Some(bottom) = bottom {
        for (t, d) in bottom.chunks_mut(2).enumerate().take(tb) {
            let (_, p1) = p(t);
            let y = [p1[0] + p1[1] + p1[2], p1[1] - p1[2] - p1[3]];
            for (d, y) in d.iter_mut().zip(y) {
                *d = y + bias;
            }
        }
    }
});
