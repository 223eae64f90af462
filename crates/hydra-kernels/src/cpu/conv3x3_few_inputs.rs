//! Dense 3×3 convolution, padding 1, stride 1 or 2, for few input channels (the stem:
//! 3 → 32 at stride 2) on NCHW data, inference only: each output row accumulated in
//! registers from the input rows in the padded layout of the depthwise kernels
//! ([`super::depthwise`]).

use rayon::prelude::*;

use super::buffers::assume_init_mut;
use super::depthwise::{dw_out, dw_padded_row, dw_taps};

/// Dense 3×3 convolution, padding 1, stride `s` (1 or 2), no bias, for few input channels
/// (the stem: 3 → 32 at stride 2): `x [B, Cin, H, W]`, `w [Cout, Cin, 3, 3]` →
/// `[B, Cout, H', W']`. A matrix product with K = 27 is mostly packing; here each output row
/// is the sum of its 9·Cin taps, read as contiguous slices of rows padded (and, for stride 2,
/// split into even and odd columns) once per image. Each output is accumulated with fused
/// multiply-adds in the order (ky, kx, c), the order of Burn's and oneDNN's convolutions: a
/// different order changes the stem's rounding, and the decoder amplifies that to 2.5× the
/// error against PyTorch's outputs (measured).
pub fn conv3x3_few_inputs(x: &[f32], w: &[f32], [b, cin, h, wd]: [usize; 4], cout: usize, s: usize) -> Vec<f32> {
    assert!(s == 1 || s == 2, "conv3x3_few_inputs: stride {s}");
    assert_eq!(x.len(), b * cin * h * wd, "conv3x3_few_inputs: input size");
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    let (total, per_image) = (b * cout * oh * ow, cout * oh * ow);
    if total == 0 || cin == 0 {
        return vec![0.0f32; total];
    }
    let slot = if s == 1 { wd + 2 } else { 2 * (wd + 2).div_ceil(2) };
    // The output is written whole, image after image, never zero-filled first.
    let mut out: Vec<f32> = Vec::with_capacity(total);
    for xi in x.chunks(cin * h * wd).take(b) {
        // rows[(p · cin + c) · slot ..]: padded row p of channel c.
        let mut rows = vec![0.0f32; (h + 2) * cin * slot];
        rows.par_chunks_mut(cin * slot).enumerate().for_each(|(p, r)| {
            for (c, dst) in r.chunks_mut(slot).enumerate() {
                dw_padded_row(&xi[c * h * wd..(c + 1) * h * wd], [h, wd], p, s, dst);
            }
        });
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // Bands of output rows in parallel, every output channel of a row before the next
            // row, so that the row's taps stay in the core's cache.
            let base = OutPtr(out.spare_capacity_mut()[..per_image].as_mut_ptr() as *mut f32);
            let band = oh.div_ceil(4 * rayon::current_num_threads()).max(1);
            (0..oh.div_ceil(band)).into_par_iter().for_each(|i| {
                let base = &base;
                // SAFETY: AVX-512F is present. The task writes rows i·band .. of every plane of
                // this image (inside the `per_image` values after `out.len()`), rows no other
                // task writes; `out` outlives the loop.
                unsafe { few_inputs_rows(&rows, w, [cin, wd, ow, slot, s, cout, oh], i * band..((i + 1) * band).min(oh), base.0) };
            });
            // SAFETY: every value of this image's planes was written above.
            unsafe { out.set_len(out.len() + per_image) };
            continue;
        }
        out.spare_capacity_mut()[..per_image].par_chunks_mut(oh * ow).enumerate().for_each(|(o, plane)| {
            // SAFETY: `few_inputs_plane` writes every value of the plane (its `oh` rows of `ow`).
            few_inputs_plane(&rows, &w[o * cin * 9..(o + 1) * cin * 9], [cin, wd, ow, slot, s], unsafe { assume_init_mut(plane) });
        });
        // SAFETY: this image's `cout` planes, after the `len` values already written, are
        // written whole above.
        unsafe { out.set_len(out.len() + per_image) };
    }
    out
}

/// Whether `f32::mul_add` is a hardware instruction here (otherwise it is a slow libm call and
/// [`conv3x3_few_inputs`] should not be used).
pub fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::multiversion::allowed_level() >= 1 && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    return cfg!(target_arch = "aarch64");
}

multiversion!(few_inputs_plane(rows: &[f32], w: &[f32], geometry: [usize; 5], plane: &mut [f32]) {
    let [cin, wd, ow, slot, s] = geometry;
    assert!(cin <= 4 && w.len() >= cin * 9, "few_inputs_plane: at most 4 input channels");
    for (oy, o) in plane.chunks_mut(ow).enumerate() {
        // The 9·cin taps of this output row in the order (ky, kx, c), and their weights.
        let mut taps: [&[f32]; 36] = [&[]; 36];
        let mut k = [0f32; 36];
        let mut n = 0;
        for ky in 0..3 {
            let p = oy * s + ky;
            for kx in 0..3 {
                for c in 0..cin {
                    taps[n] = &dw_taps(&rows[(p * cin + c) * slot..(p * cin + c + 1) * slot], s, wd, ow)[kx][..ow];
                    k[n] = w[c * 9 + ky * 3 + kx];
                    n += 1;
                }
            }
        }
        match n {
            9 => accumulate_taps::<9>(&taps, &k, o),
            18 => accumulate_taps::<18>(&taps, &k, o),
            27 => accumulate_taps::<27>(&taps, &k, o),
            _ => accumulate_taps::<36>(&taps, &k, o),
        }
    }
});

/// `o[j] = Σ_t k[t] · taps[t][j]`, accumulated in a register in the order of `t` from zero,
/// each step a fused multiply-add; `N` known at compile time so that the tap loop unrolls and
/// the loop over `j` vectorises.
#[inline(always)]
fn accumulate_taps<const N: usize>(taps: &[&[f32]; 36], k: &[f32; 36], o: &mut [f32]) {
    const LANES: usize = 16;
    let n = o.len();
    let taps: [&[f32]; N] = std::array::from_fn(|t| &taps[t][..n]);
    let full = n / LANES * LANES;
    for (jc, d) in o[..full].chunks_exact_mut(LANES).enumerate() {
        let j = jc * LANES;
        let mut acc = [0.0f32; LANES];
        for t in 0..N {
            let src: &[f32; LANES] = taps[t][j..j + LANES].try_into().expect("lanes");
            for l in 0..LANES {
                acc[l] = k[t].mul_add(src[l], acc[l]);
            }
        }
        d.copy_from_slice(&acc);
    }
    for j in full..n {
        let mut acc = 0.0f32;
        for t in 0..N {
            acc = k[t].mul_add(taps[t][j], acc);
        }
        o[j] = acc;
    }
}

/// Output channels computed together by [`few_inputs_rows`]: each tap row is loaded once for
/// all of them, and their accumulators are independent chains of multiply-adds (the chain of
/// one channel alone, 27 dependent steps, waits on its own latency).
#[cfg(target_arch = "x86_64")]
const GROUP: usize = 8;

/// Whether [`few_inputs_rows`] can run (AVX-512F, and not capped by `HYDRA_CPU_LEVEL`).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    crate::multiversion::allowed_level() >= 2 && std::arch::is_x86_feature_detected!("avx512f")
}

/// The output buffer of one image, shared by the tasks of [`conv3x3_few_inputs`], which write
/// disjoint rows of it.
#[cfg(target_arch = "x86_64")]
struct OutPtr(*mut f32);
// SAFETY: the tasks write disjoint rows (see its use).
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for OutPtr {}

/// Output rows `rows` of all `cout` planes of one image at `out` (`[cout, oh, ow]`), in
/// groups of [`GROUP`] channels, with AVX-512: the same multiply-adds in the same order per
/// output as [`few_inputs_plane`], so the same bits.
///
/// # Safety
/// The CPU must have AVX-512F; `out` must be valid for writes of `cout · oh · ow` values, and
/// rows `rows` of its planes not accessed by anyone else meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn few_inputs_rows(rows: &[f32], w: &[f32], geometry: [usize; 7], rows_out: std::ops::Range<usize>, out: *mut f32) {
    let [cin, wd, ow, slot, s, cout, oh] = geometry;
    assert!(cin <= 4 && w.len() == cout * cin * 9, "few_inputs_rows: at most 4 inputs");
    let plane = oh * ow;
    // The weights per tap in the order (ky, kx, c), per output channel.
    let n = 9 * cin;
    let mut k = vec![[0f32; GROUP]; cout.div_ceil(GROUP) * 36];
    for o in 0..cout {
        let mut t = 0;
        for ky in 0..3 {
            for kx in 0..3 {
                for c in 0..cin {
                    k[o / GROUP * 36 + t][o % GROUP] = w[(o * cin + c) * 9 + ky * 3 + kx];
                    t += 1;
                }
            }
        }
    }
    for oy in rows_out {
        let mut taps: [&[f32]; 36] = [&[]; 36];
        let mut t = 0;
        for ky in 0..3 {
            let p = oy * s + ky;
            for kx in 0..3 {
                for c in 0..cin {
                    taps[t] = &dw_taps(&rows[(p * cin + c) * slot..(p * cin + c + 1) * slot], s, wd, ow)[kx][..ow];
                    t += 1;
                }
            }
        }
        for o0 in (0..cout).step_by(GROUP) {
            let g = GROUP.min(cout - o0);
            let kg: &[[f32; GROUP]; 36] = k[o0 / GROUP * 36..o0 / GROUP * 36 + 36].try_into().expect("36 taps");
            // SAFETY: AVX-512F is present; row oy of planes o0 .. o0 + g, inside `out` and
            // this task's (the contract).
            unsafe {
                let dst = out.add(o0 * plane + oy * ow);
                match n {
                    9 => group_row::<9>(&taps, kg, [plane, g], dst),
                    18 => group_row::<18>(&taps, kg, [plane, g], dst),
                    27 => group_row::<27>(&taps, kg, [plane, g], dst),
                    _ => group_row::<36>(&taps, kg, [plane, g], dst),
                }
            }
        }
    }
}

/// One row of the `g` planes of a group at `dst` (row o at `dst + o · plane`):
/// `row_o[j] = Σ_t k[t][o] · taps[t][j]`, 16 columns at a time (the last ones masked), each
/// output accumulated from zero with one fused multiply-add per tap in the order of `t`.
///
/// # Safety
/// The CPU must have AVX-512F; `dst + o · plane .. + taps[0].len()` must be valid for writes
/// for every o < g.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn group_row<const N: usize>(taps: &[&[f32]; 36], k: &[[f32; GROUP]; 36], [plane, g]: [usize; 2], dst: *mut f32) {
    use std::arch::x86_64::*;
    let n = taps[0].len();
    assert!(taps[..N].iter().all(|t| t.len() == n) && g <= GROUP, "group_row: sizes");
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(16);
        let mask: __mmask16 = if lanes == 16 { !0 } else { (1u16 << lanes) - 1 };
        let mut acc = [_mm512_setzero_ps(); GROUP];
        for t in 0..N {
            // SAFETY: lanes j .. j + lanes of taps[t] (length n); the others are masked off.
            let src = unsafe { _mm512_maskz_loadu_ps(mask, taps[t].as_ptr().add(j)) };
            for (a, &kt) in acc.iter_mut().zip(&k[t]) {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(kt), src, *a);
            }
        }
        for (o, a) in acc.iter().enumerate().take(g) {
            // SAFETY: columns j .. j + lanes of row o (the contract).
            unsafe { _mm512_mask_storeu_ps(dst.add(o * plane + j), mask, *a) };
        }
        j += 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv3x3::tests::{naive_strided, values};

    #[test]
    fn few_inputs_matches_the_definition() {
        for &(dims, cout, s) in &[([2, 3, 9, 12], 5, 2), ([1, 3, 10, 7], 4, 2), ([1, 2, 6, 5], 3, 1), ([1, 1, 1, 1], 2, 2), ([1, 3, 2, 3], 2, 2), ([1, 3, 12, 70], 19, 2), ([2, 4, 5, 40], 16, 1)] {
            let [b, cin, h, wd] = dims;
            let x = values(b * cin * h * wd, 7);
            let w = values(cout * cin * 9, 8);
            let y = conv3x3_few_inputs(&x, &w, dims, cout, s);
            let e = naive_strided(&x, &w, dims, cout, s);
            assert_eq!(y.len(), e.len(), "{dims:?} s {s}");
            for (a, e) in y.iter().zip(e) {
                assert!((*a as f64 - e).abs() < 1e-5 * (1.0 + e.abs()), "{dims:?} s {s}: {a} vs {e}");
            }
        }
    }

    /// Every path (AVX-512 channel groups where the CPU has it, one plane at a time otherwise)
    /// gives each output exactly as one fused multiply-add per tap in the order (ky, kx, c) from
    /// zero, the padding read as zeros: the order the stem's rounding depends on.
    #[test]
    fn few_inputs_is_the_ordered_chain_bit_for_bit() {
        for &(dims, cout, s) in &[([1, 3, 13, 70], 19, 2), ([2, 3, 9, 33], 32, 1), ([1, 2, 5, 17], 8, 2)] {
            let [b, cin, h, wd] = dims;
            let x = values(b * cin * h * wd, 9);
            let w = values(cout * cin * 9, 10);
            let y = conv3x3_few_inputs(&x, &w, dims, cout, s);
            let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
            let at = |n: usize, c: usize, yy: isize, xx: isize| {
                if yy < 0 || xx < 0 || yy as usize >= h || xx as usize >= wd { 0.0 } else { x[((n * cin + c) * h + yy as usize) * wd + xx as usize] }
            };
            for n in 0..b {
                for o in 0..cout {
                    for i in 0..oh {
                        for j in 0..ow {
                            let mut acc = 0.0f32;
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    for c in 0..cin {
                                        let v = at(n, c, (i * s + ky) as isize - 1, (j * s + kx) as isize - 1);
                                        acc = w[(o * cin + c) * 9 + ky * 3 + kx].mul_add(v, acc);
                                    }
                                }
                            }
                            let got = y[((n * cout + o) * oh + i) * ow + j];
                            assert_eq!(got.to_bits(), acc.to_bits(), "{dims:?} s {s} at ({n}, {o}, {i}, {j}): {got} vs {acc}");
                        }
                    }
                }
            }
        }
    }
}
