//! Dense 1×1 convolution (no bias) in bf16 with f32 accumulation, on AMX tiles or AVX512-BF16
//! dot products (`crate::precision`): `Y[b] = W[Cout, Cin] · X[b][Cin, H·W]` with `X` rounded to
//! bf16 and `W` rounded or split into two bf16 (`cpu::bf16::Bf16Weights`). Each layer's weights
//! are packed once and kept (`CACHE`); each task packs its block of input columns into the pair
//! layout once and reuses it for all its output rows, in blocks of 32 × 32. The epilogues are
//! those of the f32 kernel, applied to each block's rows as they are written.

#![cfg(target_arch = "x86_64")]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::affine::{affine_plane, assert_conv1x1_sizes, Epilogue};
use super::bf16::{pack_pair_row, pack_rows, Bf16Weights};
use super::relu6::add_relu6_row;
use super::{amx, dpbf16};
use crate::precision::Bf16Path;

/// Input columns per task at most (a multiple of 32); the packed block is `Cin × COLUMNS` bf16
/// values (at most 480 KB for the encoder's 960 channels).
const COLUMNS: usize = 256;

/// A layer's weights packed for the kernels, with the fingerprint of the f32 values they came
/// from.
struct PackedWeights {
    fingerprint: u64,
    hi: Vec<u16>,
    lo: Option<Vec<u16>>,
    kp: usize,
}

/// Packed weights by (address, length, rows, split) of the f32 weights: a model's parameters
/// keep their storage while it lives, so each layer is packed once. An entry is used only if
/// the values' fingerprint is the same (a pass over them, a tenth of the packing's cost), so a
/// new tensor at an old address is packed anew. Cleared when it holds more than
/// `CACHE_ENTRIES` layers.
static CACHE: Mutex<Option<HashMap<(usize, usize, usize, bool), Arc<PackedWeights>>>> = Mutex::new(None);
const CACHE_ENTRIES: usize = 512;

multiversion!(fingerprint(w: &[f32]) -> u64 {
    // Eight independent lanes (vectorised), each a multiply-xor chain over its values' bits.
    let mut lanes = [0x9e37_79b9_7f4a_7c15u64; 8];
    let chunks = w.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (h, &v) in lanes.iter_mut().zip(c) {
            *h = (*h ^ v.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    for (h, &v) in lanes.iter_mut().zip(tail) {
        *h = (*h ^ v.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    lanes.iter().fold(w.len() as u64, |a, &h| (a ^ h).wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(23))
});

fn packed_weights(w: &[f32], cout: usize, cin: usize, weights: Bf16Weights) -> Arc<PackedWeights> {
    let key = (w.as_ptr() as usize, w.len(), cout, weights == Bf16Weights::Split);
    let print = fingerprint(w);
    if let Some(p) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&key) {
        if p.fingerprint == print {
            return Arc::clone(p);
        }
    }
    let (hi, lo, kp) = pack_rows(w, cout, cin, weights);
    let packed = Arc::new(PackedWeights { fingerprint: print, hi, lo, kp });
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() >= CACHE_ENTRIES {
        map.clear();
    }
    map.insert(key, Arc::clone(&packed));
    packed
}

thread_local! {
    /// Each thread's packed input block, kept between calls.
    static PACKED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// `x: [B, Cin, HW]`, `w: [Cout, Cin]` → `[B, Cout, HW]` in bf16 on `path` (which this CPU
/// must have: `crate::precision::bf16_paths`), the weights carried as `weights` says, with the
/// epilogues of `cpu::conv1x1::conv1x1`.
#[allow(clippy::too_many_arguments)]
pub fn conv1x1_bf16(x: &[f32], w: &[f32], [b, cin, hw]: [usize; 3], cout: usize, epilogue: Epilogue, add_relu6: Option<&[f32]>, path: Bf16Path, weights: Bf16Weights) -> Vec<f32> {
    assert_conv1x1_sizes("conv1x1_bf16", x, w, [b, cin, hw], cout, epilogue, add_relu6);
    assert!(crate::precision::detected().as_ref().is_ok_and(|p| p.contains(&path)), "conv1x1_bf16: {} is not available on this CPU", path.name());
    let total = b * cout * hw;
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let packed_w = packed_weights(w, cout, cin, weights);
    let (hi, lo, kp) = (&packed_w.hi, &packed_w.lo, packed_w.kp);
    let mp = cout.next_multiple_of(32);
    // Tasks are (image, row block, column chunk): at least 4 of them, by narrower column chunks
    // on small planes, then (on the smallest) by splitting the rows, which packs the same input
    // block once per row block.
    let columns = if b * hw.div_ceil(COLUMNS) >= 4 { COLUMNS } else { hw.div_ceil(4).next_multiple_of(32).clamp(32, COLUMNS) };
    let col_chunks = hw.div_ceil(columns);
    let rows = if b * col_chunks >= 4 { mp } else { mp.div_ceil(4).next_multiple_of(32).min(mp) };
    let row_blocks = mp.div_ceil(rows);
    let op = out.as_mut_ptr() as usize;
    (0..b * row_blocks * col_chunks).into_par_iter().for_each(|t| {
        let (i, r, c) = (t / (row_blocks * col_chunks), t / col_chunks % row_blocks, t % col_chunks);
        let (m0, j0) = (r * rows, c * columns);
        let (m_end, len) = ((m0 + rows).min(mp), columns.min(hw - j0));
        let np = len.next_multiple_of(32);
        PACKED.with(|cell| {
            let mut packed = cell.borrow_mut();
            // Per block of 32 columns, its kp / 2 pair rows of 32 values.
            let stride = kp / 2 * 32;
            packed.resize(np / 32 * stride, 0);
            let row = |k: usize| (k < cin).then(|| &x[(i * cin + k) * hw + j0..][..len]);
            for p in 0..kp / 2 {
                pack_pair_row(&mut packed[p * 32..], np, stride, row(2 * p), row(2 * p + 1));
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
                    // SAFETY: the block of rows m .. m + 32 of the packed weights (mp rows of kp
                    // values, 32 · kp per block) and that of columns c0 .. c0 + 32 of the packed
                    // input (kp / 2 pair rows of 32, `stride` per block) exist; a
                    // whole block's 32 rows × 32 columns lie inside the output rows and columns
                    // of this task; the path's instructions are available (asserted above).
                    unsafe {
                        let (a, a_lo, bp) = (hi.as_ptr().add(m * kp), lo.as_ref().map(|l| l.as_ptr().add(m * kp)), packed.as_ptr().add(c0 / 32 * stride));
                        match path {
                            Bf16Path::Amx => amx::block(a, a_lo, bp, kp / 32, c, c_stride * 4),
                            Bf16Path::Avx512Bf16 => dpbf16::block(a, a_lo, bp, kp / 2, c, c_stride),
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
