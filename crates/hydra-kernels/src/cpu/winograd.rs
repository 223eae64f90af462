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
        || (vec![0f32; 16 * cin * TILES], vec![0f32; 16 * cout * TILES], vec![0f32; 8 * (TILES + 1)]),
        |(v, m, rows), block| {
            let (ty, t0) = (block / per_row, block % per_row * TILES);
            let tb = TILES.min(tw - t0);
            let rows = &mut rows[..8 * (tb + 1)];
            for c in 0..cin {
                padded_rows(&x[c * h * w..(c + 1) * h * w], [h, w, 2 * ty, 2 * t0], pre.map(|p| p[c]), rows);
                input_tiles(rows, tb, v, c, cin);
            }
            for xi in 0..16 {
                // As the transposed product M_ξᵀ [tb, cout] = V_ξᵀ [tb, cin] · U_ξᵀ [cin, cout],
                // so that the microkernel's long side runs along the tiles (80 = 5 × 16 lanes)
                // rather than along a few dozen classes.
                // SAFETY: m_ξ is `cout × tb` (row stride tb) inside m; u_ξ is `cout × cin`
                // (row stride cin) inside u; v_ξ is `cin × tb` (row stride tb) inside v.
                unsafe {
                    gemm::gemm(
                        tb, cout, cin,
                        m.as_mut_ptr().add(xi * cout * tb), tb as isize, 1, false,
                        v.as_ptr().add(xi * cin * tb), tb as isize, 1,
                        u.as_ptr().add(xi * cout * cin), cin as isize, 1,
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
    // Rows r0 .. r0 + 3 and columns c0 .. c0 + 2m of the input zero-padded by one (padded
    // (r, c) is input (r − 1, c − 1)), each row split into its even columns and its odd
    // columns: row k is `rows[2mk ..][..2m]`, `e[j]` = padded (r0 + k, c0 + 2j) in its first
    // m values, `o[j]` = padded (r0 + k, c0 + 2j + 1) in the next m, with m = rows.len() / 8
    // and c0 even. With `scale`, each value v becomes relu6(v · scale).
    let [h, w, r0, c0] = geometry;
    let m = rows.len() / 8;
    let f = |v: f32| match scale {
        Some(k) => super::relu6::scaled_relu6(v, k),
        None => v,
    };
    for (k, row) in rows.chunks_exact_mut(2 * m).enumerate() {
        let r = r0 + k;
        if r == 0 || r > h {
            row.fill(0.0);
            continue;
        }
        let src = &plane[(r - 1) * w..r * w];
        let (e, o) = row.split_at_mut(m);
        // Input columns: e[j] ← c0 + 2j − 1, o[j] ← c0 + 2j. The pairs (e[j], o[j]) with
        // both on the input are j in jlo .. jhi; the others are done one by one.
        let jlo = usize::from(c0 == 0);
        let jhi = ((w + 1).saturating_sub(c0) / 2).clamp(jlo, m);
        let at = |col: usize| if col >= 1 && col <= w { f(src[col - 1]) } else { 0.0 };
        for j in (0..jlo).chain(jhi..m) {
            e[j] = at(c0 + 2 * j);
            o[j] = at(c0 + 2 * j + 1);
        }
        if jhi > jlo {
            let pairs = src[c0 + 2 * jlo - 1..c0 + 2 * jhi - 1].chunks_exact(2);
            for ((e, o), p) in e[jlo..jhi].iter_mut().zip(&mut o[jlo..jhi]).zip(pairs) {
                *e = f(p[0]);
                *o = f(p[1]);
            }
        }
    }
});

multiversion!(input_tiles(rows: &[f32], tw: usize, v: &mut [f32], c: usize, cin: usize) {
    // Bᵀ d B with Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]: across the
    // four rows (row i of Bᵀ), then across columns 2t .. 2t + 3, which are e[t], o[t],
    // e[t + 1], o[t + 1] of the split rows from [`padded_rows`]: unit-stride loops only.
    let m = tw + 1;
    let e: [&[f32]; 4] = std::array::from_fn(|k| &rows[2 * m * k..2 * m * k + m]);
    let o: [&[f32]; 4] = std::array::from_fn(|k| &rows[2 * m * k + m..2 * m * (k + 1)]);
    for i in 0..4 {
        let at = |j: usize| ((i * 4 + j) * cin + c) * tw;
        let (v0, rest) = v[at(0)..].split_at_mut(cin * tw);
        let (v1, rest) = rest.split_at_mut(cin * tw);
        let (v2, v3) = rest.split_at_mut(cin * tw);
        let out = [&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]];
        match i {
            0 => column_tiles(out, [e[0], e[2], o[0], o[2]], |a, b| a - b),
            1 => column_tiles(out, [e[1], e[2], o[1], o[2]], |a, b| a + b),
            2 => column_tiles(out, [e[2], e[1], o[2], o[1]], |a, b| a - b),
            _ => column_tiles(out, [e[1], e[3], o[1], o[3]], |a, b| a - b),
        }
    }
});

/// One row of Bᵀ d B: with `s(x) = op(x_a, x_b)` of two split rows (even columns `[ea, eb]`,
/// odd `[oa, ob]`), tile t gets `s(e)[t] − s(e)[t+1]`, `s(o)[t] + s(e)[t+1]`,
/// `s(e)[t+1] − s(o)[t]`, `s(o)[t] − s(o)[t+1]` (the columns of Bᵀ applied to
/// `s[2t ..= 2t + 3]`).
#[inline(always)]
fn column_tiles(out: [&mut [f32]; 4], [ea, eb, oa, ob]: [&[f32]; 4], op: impl Fn(f32, f32) -> f32) {
    // Zipped iterators, no indexing: the loop vectorises (with indices it stays scalar).
    let [d0, d1, d2, d3] = out;
    let e = ea.iter().zip(eb).map(|(&a, &b)| op(a, b));
    let o = oa.iter().zip(ob).map(|(&a, &b)| op(a, b));
    let e_next = ea[1..].iter().zip(&eb[1..]).map(|(&a, &b)| op(a, b));
    let o_next = oa[1..].iter().zip(&ob[1..]).map(|(&a, &b)| op(a, b));
    let dst = d0.iter_mut().zip(d1.iter_mut()).zip(d2.iter_mut().zip(d3.iter_mut()));
    for (((((d0, d1), (d2, d3)), e0), e1), (o0, o1)) in dst.zip(e).zip(e_next).zip(o.zip(o_next)) {
        *d0 = e0 - e1;
        *d1 = o0 + e1;
        *d2 = e1 - o0;
        *d3 = o0 - o1;
    }
}

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
