//! Dense 1×1 convolution (no bias) as matrix products on NCHW data:
//! `Y[b] = W[Cout, Cin] · X[b][Cin, H·W]`, split into column chunks that run in parallel
//! with single-threaded products (no synchronisation inside a product), written straight
//! into the output buffer without zero-filling it first.

use rayon::prelude::*;

use super::affine::{affine_plane, assert_conv1x1_sizes, Epilogue};
use super::relu6::add_relu6_row;

/// Output columns per parallel chunk.
const COLUMNS: usize = 512;

/// `x: [B, Cin, HW]`, `w: [Cout, Cin]` → `[B, Cout, HW]`. With `epilogue`, each output
/// row then gets `y · scale[o] + shift[o]` (and ReLU6) while it is in cache: inference-mode
/// BatchNorm without a pass of its own, with the same arithmetic as the separate pass. With
/// `add_relu6 = Some(a)` (`a: [B, Cout, HW]`), the output is `relu6(y + a)` (the decoder's
/// lateral convolution joining the upsampled path), computed the same way.
pub fn conv1x1(x: &[f32], w: &[f32], [b, cin, hw]: [usize; 3], cout: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>) -> Vec<f32> {
    assert_conv1x1_sizes("conv1x1", x, w, [b, cin, hw], cout, epilogue, add_relu6);
    per_image_product(w, [1, cin], x, [b, cin, hw], cout, epilogue, add_relu6)
}

/// The fewest input channels a 1×1 convolution of inference computes in bf16; below, f32. The
/// layers below (the encoder's expansions from 16, 24 and 32 channels) are bound by memory, not
/// products (AMX gave them 0.7–1.4× f32), and keeping them in f32 halves the error of the
/// network's outputs (depth median 0.24 % → 0.17 %, labels 99.46 % → 99.62 % on NYUv2 frame
/// 000464, see the README).
pub const BF16_MIN_INPUTS: usize = 64;

/// [`conv1x1`] in the precision of inference (`crate::precision`): in bf16 on this CPU's bf16
/// path when set and the layer has at least [`BF16_MIN_INPUTS`] input channels (inputs rounded,
/// weights split into two bf16), else in f32. The forward pass of inference only; training
/// calls [`conv1x1`].
pub fn conv1x1_inference(x: &[f32], w: &[f32], dims: [usize; 3], cout: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let (crate::precision::Precision::Bf16, Ok(path), true) = (crate::precision::precision(), crate::precision::bf16_path(), dims[1] >= BF16_MIN_INPUTS) {
        return super::conv1x1_bf16::conv1x1_bf16(x, w, dims, cout, epilogue, add_relu6, path, super::bf16::Bf16Weights::Split);
    }
    conv1x1(x, w, dims, cout, epilogue, add_relu6)
}

/// `Y[b] = L · R[b]` for every image, with `L` an `m × k` matrix whose element `(i, c)` is
/// `lhs[i·rs + c·cs]` (`[rs, cs]` = `lhs_strides`) and `R[b]` the row-major `k × hw` block
/// `b` of `rhs`: `[B, m, hw]`.
fn per_image_product(lhs: &[f32], [cs, rs]: [usize; 2], rhs: &[f32], [b, k, hw]: [usize; 3], m_total: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>) -> Vec<f32> {
    let total = b * m_total * hw;
    if k == 0 || total == 0 {
        let mut out = vec![0.0; total];
        if let Some((scale, shift, relu6)) = epilogue {
            for (p, plane) in out.chunks_mut(hw.max(1)).enumerate() {
                affine_plane(plane, scale[p % m_total], shift[p % m_total], relu6);
            }
        }
        if let Some(a) = add_relu6 {
            add_relu6_row(&mut out, a);
        }
        return out;
    }
    let mut out: Vec<f32> = Vec::with_capacity(total);
    // Tasks are (image, row block, column chunk); small planes (the encoder's last stages)
    // split the output rows instead of the columns so that every thread has work.
    let col_chunks = hw.div_ceil(COLUMNS);
    let rows = if b * col_chunks >= 4 { m_total } else { m_total.div_ceil(4).next_multiple_of(16).min(m_total) };
    let row_blocks = m_total.div_ceil(rows);
    let (op, rp, lp) = (out.as_mut_ptr() as usize, rhs.as_ptr() as usize, lhs.as_ptr() as usize);
    (0..b * row_blocks * col_chunks).into_par_iter().for_each(|t| {
        let (i, r, c) = (t / (row_blocks * col_chunks), t / col_chunks % row_blocks, t % col_chunks);
        let (o0, j0) = (r * rows, c * COLUMNS);
        let (m, len) = (rows.min(m_total - o0), COLUMNS.min(hw - j0));
        // SAFETY: dst is rows o0 .. o0 + m, columns j0 .. j0 + len of image i's `m_total × hw`
        // block (row stride hw), disjoint between tasks and inside the allocation of `total`
        // values; with read_dst = false the product only writes it. lhs starts at row o0 of
        // `L` (rows `rs` apart, columns `cs` apart, inside `lhs` by the caller's strides), rhs
        // is image i's `k × hw` block from column j0. All buffers outlive the parallel loop.
        unsafe {
            gemm::gemm(
                m, len, k,
                (op as *mut f32).add((i * m_total + o0) * hw + j0), 1, hw as isize, false,
                (lp as *const f32).add(o0 * rs), cs as isize, rs as isize,
                (rp as *const f32).add(i * k * hw + j0), 1, hw as isize,
                0.0, 1.0, false, false, false,
                gemm::Parallelism::None,
            );
            if epilogue.is_some() || add_relu6.is_some() {
                for o in o0..o0 + m {
                    let at = (i * m_total + o) * hw + j0;
                    // SAFETY: row o, columns j0 .. j0 + len of image i: written above by this
                    // task only.
                    let row = std::slice::from_raw_parts_mut((op as *mut f32).add(at), len);
                    if let Some((scale, shift, relu6)) = epilogue {
                        affine_plane(row, scale[o], shift[o], relu6);
                    }
                    if let Some(a) = add_relu6 {
                        add_relu6_row(row, &a[at..at + len]);
                    }
                }
            }
        }
    });
    // SAFETY: the chunks above cover every (image, row, column) of the output exactly once.
    unsafe { out.set_len(total) };
    out
}

/// Columns per partial weight gradient: the partials are summed in a fixed order, so the
/// result does not depend on the thread count.
const GRAD_COLUMNS: usize = 4096;

/// Gradients of [`conv1x1`] for `dy [B, Cout, HW]`: `(dx [B, Cin, HW], dw [Cout, Cin])`;
/// `dx = Wᵀ · dY[b]` per image (only when `want_dx`), `dw = Σ_b dY[b] · X[b]ᵀ`.
pub fn conv1x1_backward(x: &[f32], w: &[f32], dy: &[f32], [b, cin, hw]: [usize; 3], cout: usize, want_dx: bool) -> (Option<Vec<f32>>, Vec<f32>) {
    assert_eq!(x.len(), b * cin * hw, "conv1x1_backward: input size");
    assert_eq!(dy.len(), b * cout * hw, "conv1x1_backward: gradient size");
    // Wᵀ: element (c, o) is w[o·cin + c].
    let dx = want_dx.then(|| per_image_product(w, [cin, 1], dy, [b, cout, hw], cin, None, None));
    let size = cout * cin;
    let chunks = hw.div_ceil(GRAD_COLUMNS);
    if size == 0 || b * chunks == 0 {
        return (dx, vec![0.0; size]);
    }
    let partials: Vec<Vec<f32>> = (0..b * chunks)
        .into_par_iter()
        .map(|t| {
            let (i, j0) = (t / chunks, t % chunks * GRAD_COLUMNS);
            let len = GRAD_COLUMNS.min(hw - j0);
            let mut part = vec![0.0f32; size];
            // part[o, c] = Σ_j dY[i][o, j0 + j] · X[i][c, j0 + j]; rhs element (j, c) is
            // x[(i·cin + c)·hw + j0 + j].
            // SAFETY: all three matrices lie inside their buffers by the strides above.
            unsafe {
                gemm::gemm(
                    cout, cin, len,
                    part.as_mut_ptr(), 1, cin as isize, false,
                    dy.as_ptr().add(i * cout * hw + j0), 1, hw as isize,
                    x.as_ptr().add(i * cin * hw + j0), hw as isize, 1,
                    0.0, 1.0, false, false, false,
                    gemm::Parallelism::None,
                );
            }
            part
        })
        .collect();
    let mut dw = partials[0].clone();
    dw.par_chunks_mut(4096).enumerate().for_each(|(n, d)| {
        for p in &partials[1..] {
            for (a, &v) in d.iter_mut().zip(&p[n * 4096..]) {
                *a += v;
            }
        }
    });
    (dx, dw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pattern of `n` values in about [−2, 2].
    fn pattern(n: usize, step: usize, modulus: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * step % modulus) as f32 - (modulus / 2) as f32) / (modulus / 4) as f32).collect()
    }

    /// `Y[b] = L · R[b]` in f64, with `lhs(i, c)` the element of the `m × k` matrix `L` and
    /// `R[b]` the row-major `k × hw` block `b` of `rhs`: `[B, m, hw]`.
    fn per_image_reference(lhs: impl Fn(usize, usize) -> f64, rhs: &[f32], [b, k, hw]: [usize; 3], m: usize) -> Vec<f64> {
        let mut y = vec![0.0; b * m * hw];
        for i in 0..b {
            for o in 0..m {
                for p in 0..hw {
                    y[(i * m + o) * hw + p] = (0..k).map(|c| lhs(o, c) * rhs[(i * k + c) * hw + p] as f64).sum();
                }
            }
        }
        y
    }

    fn assert_close(got: &[f32], expect: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), expect.len(), "{what}");
        for (&a, &e) in got.iter().zip(expect) {
            assert!((a as f64 - e).abs() < tol * (1.0 + e.abs()), "{what}: {a} vs {e}");
        }
    }

    #[test]
    fn matches_the_definition() {
        for &([b, cin, hw], cout) in &[([2, 3, 5], 4), ([1, 7, 1300], 9), ([3, 1, 1], 1), ([1, 16, 513], 2), ([1, 20, 30], 70)] {
            let x = pattern(b * cin * hw, 37, 101);
            let w = pattern(cout * cin, 13, 29);
            let y = conv1x1(&x, &w, [b, cin, hw], cout, None, None);
            assert_close(&y, &per_image_reference(|o, c| w[o * cin + c] as f64, &x, [b, cin, hw], cout), 1e-5, "y");
        }
    }

    #[test]
    fn backward_matches_the_definition() {
        // More than one partial per image (hw > GRAD_COLUMNS) and several images.
        for &([b, cin, hw], cout) in &[([2, 3, 5], 4), ([2, 5, 4100], 3), ([1, 1, 1], 1)] {
            let x = pattern(b * cin * hw, 37, 101);
            let w = pattern(cout * cin, 13, 29);
            let dy = pattern(b * cout * hw, 17, 53);
            let (dx, dw) = conv1x1_backward(&x, &w, &dy, [b, cin, hw], cout, true);
            // dw[o, c] = Σ_b Σ_j dY[b][o, j] · X[b][c, j].
            let dw_expect: Vec<f64> = (0..cout * cin)
                .map(|t| {
                    let (o, c) = (t / cin, t % cin);
                    (0..b).flat_map(|i| (0..hw).map(move |j| (i, j))).map(|(i, j)| dy[(i * cout + o) * hw + j] as f64 * x[(i * cin + c) * hw + j] as f64).sum()
                })
                .collect();
            assert_close(&dw, &dw_expect, 1e-4, "dw");
            // dX[b] = Wᵀ · dY[b].
            assert_close(&dx.unwrap(), &per_image_reference(|c, o| w[o * cin + c] as f64, &dy, [b, cout, hw], cin), 1e-5, "dx");
            assert!(conv1x1_backward(&x, &w, &dy, [b, cin, hw], cout, false).0.is_none());
        }
    }
}
