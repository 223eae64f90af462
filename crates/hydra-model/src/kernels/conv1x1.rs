//! Dense 1×1 convolution (no bias) as matrix products on NCHW data:
//! `Y[b] = W[Cout, Cin] · X[b][Cin, H·W]`, split into column chunks that run in parallel
//! with single-threaded products (no synchronisation inside a product), written straight
//! into the output buffer without zero-filling it first.

use rayon::prelude::*;

/// Output columns per parallel chunk.
const COLUMNS: usize = 512;

/// `x: [B, Cin, HW]`, `w: [Cout, Cin]` → `[B, Cout, HW]`.
pub fn conv1x1(x: &[f32], w: &[f32], [b, cin, hw]: [usize; 3], cout: usize) -> Vec<f32> {
    assert_eq!(x.len(), b * cin * hw, "conv1x1: input size");
    assert_eq!(w.len(), cout * cin, "conv1x1: weight size");
    let total = b * cout * hw;
    if cin == 0 || total == 0 {
        return vec![0.0; total];
    }
    let mut out: Vec<f32> = Vec::with_capacity(total);
    // Tasks are (image, row block, column chunk); small planes (the encoder's last stages)
    // split the output channels instead of the columns so that every thread has work.
    let col_chunks = hw.div_ceil(COLUMNS);
    let rows = if b * col_chunks >= 4 { cout } else { cout.div_ceil(4).next_multiple_of(16).min(cout) };
    let row_blocks = cout.div_ceil(rows);
    let (op, xp, wp) = (out.as_mut_ptr() as usize, x.as_ptr() as usize, w.as_ptr() as usize);
    (0..b * row_blocks * col_chunks).into_par_iter().for_each(|t| {
        let (i, r, c) = (t / (row_blocks * col_chunks), t / col_chunks % row_blocks, t % col_chunks);
        let (o0, j0) = (r * rows, c * COLUMNS);
        let (m, len) = (rows.min(cout - o0), COLUMNS.min(hw - j0));
        // SAFETY: dst is rows o0 .. o0 + m, columns j0 .. j0 + len of image i's `cout × hw`
        // block (row stride hw), disjoint between tasks and inside the allocation of `total`
        // values; with read_dst = false the product only writes it. lhs is rows o0.. of `w`
        // (row-major), rhs is image i's `cin × hw` block from column j0. All buffers outlive
        // the parallel loop.
        unsafe {
            gemm::gemm(
                m, len, cin,
                (op as *mut f32).add((i * cout + o0) * hw + j0), 1, hw as isize, false,
                (wp as *const f32).add(o0 * cin), 1, cin as isize,
                (xp as *const f32).add(i * cin * hw + j0), 1, hw as isize,
                0.0, 1.0, false, false, false,
                gemm::Parallelism::None,
            );
        }
    });
    // SAFETY: the chunks above cover every (image, row, column) of the output exactly once.
    unsafe { out.set_len(total) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition() {
        for &([b, cin, hw], cout) in &[([2, 3, 5], 4), ([1, 7, 1300], 9), ([3, 1, 1], 1), ([1, 16, 513], 2), ([1, 20, 30], 70)] {
            let x: Vec<f32> = (0..b * cin * hw).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..cout * cin).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
            let y = conv1x1(&x, &w, [b, cin, hw], cout);
            for i in 0..b {
                for o in 0..cout {
                    for p in 0..hw {
                        let e: f64 = (0..cin).map(|c| w[o * cin + c] as f64 * x[(i * cin + c) * hw + p] as f64).sum();
                        let a = y[(i * cout + o) * hw + p] as f64;
                        assert!((a - e).abs() < 1e-5 * (1.0 + e.abs()), "{a} vs {e}");
                    }
                }
            }
        }
    }
}
