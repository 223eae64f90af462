//! Dense 1×1 convolution (no bias) in bf16 with f32 accumulation, on AMX tiles or AVX512-BF16
//! dot products (`crate::precision`): `Y[b] = W[Cout, Cin] · X[b][Cin, H·W]` with `X` rounded to
//! bf16 and `W` rounded or split into two bf16 (`cpu::bf16::Bf16Weights`). The weights are packed once per call (`Cout × Cin` values against the
//! product's `Cout × Cin × H·W`); each task packs its block of input columns into the pair
//! layout once and reuses it for all its output rows, in blocks of 32 × 32. The epilogues are
//! those of the f32 kernel, applied to each block's rows as they are written.

#![cfg(target_arch = "x86_64")]

use std::cell::RefCell;

use rayon::prelude::*;

use super::affine::{affine_plane, Epilogue};
use super::bf16::{pack_pair_row, pack_rows, Bf16Weights};
use super::relu6::add_relu6_row;
use super::{amx, dpbf16};
use crate::precision::Bf16Path;

/// Input columns per task (a multiple of 32); the packed block is `Cin × COLUMNS` bf16 values
/// (at most 480 KB for the encoder's 960 channels).
const COLUMNS: usize = 256;

thread_local! {
    /// Each thread's packed input block, kept between calls.
    static PACKED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// `x: [B, Cin, HW]`, `w: [Cout, Cin]` → `[B, Cout, HW]` in bf16 on `path` (which this CPU
/// must have: `crate::precision::bf16_paths`), the weights carried as `weights` says, with the
/// epilogues of `cpu::conv1x1::conv1x1`.
#[allow(clippy::too_many_arguments)]
pub fn conv1x1_bf16(x: &[f32], w: &[f32], [b, cin, hw]: [usize; 3], cout: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>, path: Bf16Path, weights: Bf16Weights) -> Vec<f32> {
    assert_eq!(x.len(), b * cin * hw, "conv1x1_bf16: input size");
    assert_eq!(w.len(), cout * cin, "conv1x1_bf16: weight size");
    if let Some((scale, shift, _)) = epilogue {
        assert!(scale.len() == cout && shift.len() == cout, "conv1x1_bf16: epilogue size");
    }
    if let Some(a) = add_relu6 {
        assert_eq!(a.len(), b * cout * hw, "conv1x1_bf16: addend size");
    }
    assert!(crate::precision::bf16_paths().is_ok_and(|p| p.contains(&path)), "conv1x1_bf16: {} is not available on this CPU", path.name());
    let total = b * cout * hw;
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let (hi, lo, kp) = pack_rows(w, cout, cin, weights);
    let mp = cout.next_multiple_of(32);
    // Tasks are (image, row block, column chunk); small planes split the rows as well so that
    // every thread has work.
    let col_chunks = hw.div_ceil(COLUMNS);
    let rows = if b * col_chunks >= 4 { mp } else { mp.div_ceil(4).next_multiple_of(32).min(mp) };
    let row_blocks = mp.div_ceil(rows);
    let op = out.as_mut_ptr() as usize;
    (0..b * row_blocks * col_chunks).into_par_iter().for_each(|t| {
        let (i, r, c) = (t / (row_blocks * col_chunks), t / col_chunks % row_blocks, t % col_chunks);
        let (m0, j0) = (r * rows, c * COLUMNS);
        let (m_end, len) = ((m0 + rows).min(mp), COLUMNS.min(hw - j0));
        let np = len.next_multiple_of(32);
        PACKED.with(|cell| {
            let mut packed = cell.borrow_mut();
            packed.resize(kp / 2 * np, 0);
            let row = |k: usize| (k < cin).then(|| &x[(i * cin + k) * hw + j0..][..len]);
            for (p, dst) in packed[..kp / 2 * np].chunks_mut(np).enumerate() {
                pack_pair_row(dst, row(2 * p), row(2 * p + 1));
            }
            let mut block = [0f32; 32 * 32];
            if path == Bf16Path::Amx {
                // SAFETY: the path is available (asserted above), so AMX is enabled.
                unsafe { amx::configure() };
            }
            for m in (m0..m_end).step_by(32) {
                for c0 in (0..np).step_by(32) {
                    let (rows_here, cols) = (cout.saturating_sub(m).min(32), 32.min(len - c0));
                    let at = (i * cout + m) * hw + j0 + c0;
                    // A whole block goes straight into the output; a partial one (the last rows
                    // or columns) through `block`.
                    let whole = rows_here == 32 && cols == 32;
                    let (c, c_stride) = if whole { ((op as *mut f32).wrapping_add(at), hw) } else { (block.as_mut_ptr(), 32) };
                    // SAFETY: rows m .. m + 32 of the packed weights (mp rows of kp values) and
                    // columns c0 .. c0 + 32 of the kp / 2 packed pair rows (np apart) exist; a
                    // whole block's 32 rows × 32 columns lie inside the output rows and columns
                    // of this task; the path's instructions are available (asserted above).
                    unsafe {
                        let (a, a_lo, bp) = (hi.as_ptr().add(m * kp), lo.as_ref().map(|l| l.as_ptr().add(m * kp)), packed.as_ptr().add(c0));
                        match path {
                            Bf16Path::Amx => amx::block(a, a_lo, kp * 2, bp, np * 4, kp / 32, c, c_stride * 4),
                            Bf16Path::Avx512Bf16 => dpbf16::block(a, a_lo, kp, bp, np, kp / 2, c, c_stride),
                        }
                    }
                    for rr in 0..rows_here {
                        let (o, at) = (m + rr, at + rr * hw);
                        // SAFETY: row o, columns j0 + c0 .. + cols of image i: inside the
                        // output, written by this task only.
                        let dst = unsafe { std::slice::from_raw_parts_mut((op as *mut f32).add(at), cols) };
                        if !whole {
                            dst.copy_from_slice(&block[rr * 32..rr * 32 + cols]);
                        }
                        if let Some((scale, shift, relu6)) = epilogue {
                            affine_plane(dst, scale[o], shift[o], relu6);
                        }
                        if let Some(a) = add_relu6 {
                            add_relu6_row(dst, &a[at..at + cols]);
                        }
                    }
                }
            }
            if path == Bf16Path::Amx {
                // SAFETY: as for configure.
                unsafe { amx::release() };
            }
        });
    });
    // SAFETY: the tasks cover every (image, output row < cout, column) exactly once.
    unsafe { out.set_len(total) };
    out
}
