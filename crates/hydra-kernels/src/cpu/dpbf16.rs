//! The 32×32 block product on AVX512-BF16 (`vdpbf16ps`), for CPUs without AMX: the layouts of
//! [`super::bf16`], 8 rows × 32 columns (16 accumulators) at a time, each A pair broadcast to
//! all lanes against a row of B pairs.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// `C[32 × 32] = A[32 × 2·kp] · B[2·kp × 32]`, plus `A_lo · B` with `a_lo` (the layout of `a`)
/// when given: `a` a block of 32 rows of the packed weights, `b` a block of 32 columns of the
/// packed input (`kp` pair rows), in the layouts of `cpu::bf16`; `c` 32 rows of 32 f32, `c_stride` values apart. Per output, the pairs are added in order,
/// odd product first, `A`'s pair then `A_lo`'s, each addition rounded
/// (`cpu::bf16::reference_dot`).
///
/// # Safety
/// The CPU has AVX512F and AVX512-BF16; the three blocks lie inside their buffers.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn block(a: *const u16, a_lo: Option<*const u16>, b: *const u32, kp: usize, c: *mut f32, c_stride: usize) {
    for g in 0..4 {
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for p in 0..kp {
            // SAFETY: pair row p of B and rows g·8 .. g·8 + 8 of A lie inside the buffers
            // (the caller's contract); the loads are unaligned.
            unsafe {
                let bp = b.add(p * 32);
                // Pair p of row r: k block p / 16, tile r / 16, row r % 16 (64 bytes), pair p % 16.
                let pair_at = |r: usize| p / 16 * 1024 + r / 16 * 512 + r % 16 * 32 + 2 * (p % 16);
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const __m512i));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16) as *const __m512i));
                for (r, row) in acc.iter_mut().enumerate() {
                    let pair = (a.add(pair_at(g * 8 + r)) as *const u32).read_unaligned();
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                    row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                    row[1] = _mm512_dpbf16_ps(row[1], av, b1);
                    if let Some(lo) = a_lo {
                        let pair = (lo.add(pair_at(g * 8 + r)) as *const u32).read_unaligned();
                        let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                        row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                        row[1] = _mm512_dpbf16_ps(row[1], av, b1);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            // SAFETY: row g·8 + r of C lies inside its 32 × 32 block.
            unsafe {
                let dst = c.add((g * 8 + r) * c_stride);
                _mm512_storeu_ps(dst, row[0]);
                _mm512_storeu_ps(dst.add(16), row[1]);
            }
        }
    }
}
