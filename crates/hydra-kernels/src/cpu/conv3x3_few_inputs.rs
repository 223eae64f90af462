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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv3x3::tests::{naive_strided, values};

    #[test]
    fn few_inputs_matches_the_definition() {
        for &(dims, cout, s) in &[([2, 3, 9, 12], 5, 2), ([1, 3, 10, 7], 4, 2), ([1, 2, 6, 5], 3, 1), ([1, 1, 1, 1], 2, 2), ([1, 3, 2, 3], 2, 2)] {
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
}
