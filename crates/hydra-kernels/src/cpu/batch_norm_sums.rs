//! The f64 sums of BatchNorm with batch statistics ([`super::batch_norm`]), each over a
//! fixed set of [`F64_LANES`] lanes (element `i` into lane `i mod 8`, the lanes then added
//! in order), so that every CPU level computes the same bits; the gradient sums with the
//! fused ReLU6's mask, auto-vectorised and, on AVX-512, by hand (the compiler splits the
//! masked loop into two-lane pieces).

use super::relu6::relu6_pass;

/// f64 accumulator lanes of the BatchNorm sums: independent lanes let the sums vectorise
/// (one f64 add chain would be latency-bound), in a fixed order.
const F64_LANES: usize = 8;

multiversion!(pub(super) sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    acc.iter().sum::<f64>() + rest
});

multiversion!(pub(super) sum_sq_dev_f64(x: &[f32], mean: f32) -> f64 {
    // The deviation in f32, its square summed in f64: PyTorch's CPU BatchNorm statistics.
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = (v - mean) as f64;
            *a += d * d;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| ((v - mean) as f64).powi(2)).sum();
    acc.iter().sum::<f64>() + rest
});

/// `g`, or where `relu6 = Some((α, shift))` ReLU6's backward of it at the normalised value
/// `fma(x, α, shift)` (the forward pass's output, recomputed to the bit).
#[inline(always)]
pub(super) fn masked(g: f32, x: f32, relu6: Option<(f32, f32)>) -> f32 {
    match relu6 {
        Some((alpha, shift)) => relu6_pass(g, x.mul_add(alpha, shift)),
        None => g,
    }
}

/// The end of both gradient sums: the lanes added in order, then the elements past the last
/// full set of lanes (`g`, `x`) one by one.
#[inline(always)]
fn lanes_and_tail(sg: [f64; F64_LANES], sgx: [f64; F64_LANES], g: &[f32], x: &[f32], mean: f64, relu6: Option<(f32, f32)>) -> (f64, f64) {
    let (mut a, mut b) = (sg.iter().sum::<f64>(), sgx.iter().sum::<f64>());
    for (&gv, &xv) in g.iter().zip(x) {
        let gv = masked(gv, xv, relu6) as f64;
        a += gv;
        b += gv * (xv as f64 - mean);
    }
    (a, b)
}

multiversion!(sum_g_gx_f64(g: &[f32], x: &[f32], mean: f64, relu6: Option<(f32, f32)>) -> (f64, f64) {
    // Two loops, so that the one without the mask has none in it.
    #[inline(always)]
    fn sums(g: &[f32], x: &[f32], mean: f64, relu6: Option<(f32, f32)>) -> (f64, f64) {
        let (mut sg, mut sgx) = ([0f64; F64_LANES], [0f64; F64_LANES]);
        let n = g.len().min(x.len()) / F64_LANES * F64_LANES;
        for (gc, xc) in g[..n].chunks_exact(F64_LANES).zip(x[..n].chunks_exact(F64_LANES)) {
            for l in 0..F64_LANES {
                let gv = masked(gc[l], xc[l], relu6) as f64;
                sg[l] += gv;
                sgx[l] += gv * (xc[l] as f64 - mean);
            }
        }
        lanes_and_tail(sg, sgx, &g[n..], &x[n..], mean, relu6)
    }
    match relu6 {
        Some(m) => sums(g, x, mean, Some(m)),
        None => sums(g, x, mean, None),
    }
});

/// [`sum_g_gx_f64`], with AVX-512 where the CPU has it (and `HYDRA_CPU_LEVEL` allows): the
/// same lanes and roundings, so the same bits.
pub(super) fn sum_g_gx(g: &[f32], x: &[f32], mean: f64, relu6: Option<(f32, f32)>) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the features were detected on this CPU.
        return unsafe { sum_g_gx_avx512(g, x, mean, relu6) };
    }
    sum_g_gx_f64(g, x, mean, relu6)
}

/// Whether [`sum_g_gx_avx512`] can run (AVX-512F/VL and FMA, not capped by `HYDRA_CPU_LEVEL`).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    crate::multiversion::allowed_level() >= 2
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("fma")
}

/// [`sum_g_gx_f64`] with one zmm register of eight f64 lanes per sum: per eight elements the
/// mask from `fma(x, α, shift)` in f32 (ReLU6's backward: +0 outside (0, 6)), the gradient and
/// `x − mean` widened to f64, `Σg += g`, `Σgx += g · (x − mean)` (a product, then a sum).
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512VL and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn sum_g_gx_avx512(g: &[f32], x: &[f32], mean: f64, relu6: Option<(f32, f32)>) -> (f64, f64) {
    use std::arch::x86_64::*;
    let n = g.len().min(x.len()) / F64_LANES * F64_LANES;
    let (mut sg, mut sgx) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let m = _mm512_set1_pd(mean);
    let (alpha, shift) = relu6.unwrap_or((0.0, 0.0));
    let (va, vs, zero, six) = (_mm256_set1_ps(alpha), _mm256_set1_ps(shift), _mm256_setzero_ps(), _mm256_set1_ps(6.0));
    for i in (0..n).step_by(F64_LANES) {
        // SAFETY: i + 8 ≤ n ≤ both lengths.
        let (gv, xv) = unsafe { (_mm256_loadu_ps(g.as_ptr().add(i)), _mm256_loadu_ps(x.as_ptr().add(i))) };
        let gv = if relu6.is_some() {
            let y = _mm256_fmadd_ps(xv, va, vs);
            let keep = _mm256_cmp_ps_mask::<_CMP_GT_OQ>(y, zero) & _mm256_cmp_ps_mask::<_CMP_LT_OQ>(y, six);
            _mm256_maskz_mov_ps(keep, gv)
        } else {
            gv
        };
        let gd = _mm512_cvtps_pd(gv);
        sg = _mm512_add_pd(sg, gd);
        sgx = _mm512_add_pd(sgx, _mm512_mul_pd(gd, _mm512_sub_pd(_mm512_cvtps_pd(xv), m)));
    }
    let (mut lg, mut lgx) = ([0f64; F64_LANES], [0f64; F64_LANES]);
    // SAFETY: each array holds eight f64.
    unsafe {
        _mm512_storeu_pd(lg.as_mut_ptr(), sg);
        _mm512_storeu_pd(lgx.as_mut_ptr(), sgx);
    }
    lanes_and_tail(lg, lgx, &g[n..], &x[n..], mean, relu6)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 sums equal the auto-vectorised ones bit for bit, with and without the mask,
    /// on lengths with and without a remainder, values on both sides of the clamp and NaN.
    #[test]
    fn avx512_gradient_sums_equal_the_portable_ones() {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            let mut state = 7u64;
            let mut next = || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 3.0
            };
            for len in [0usize, 5, 8, 37, 1024, 1029] {
                let g: Vec<f32> = (0..len).map(|_| next()).collect();
                let mut x: Vec<f32> = (0..len).map(|_| next()).collect();
                if len > 20 {
                    x[17] = f32::NAN;
                }
                for relu6 in [None, Some((1.7f32, 0.4f32)), Some((-2.0, 3.0))] {
                    let want = sum_g_gx_f64(&g, &x, 0.25, relu6);
                    // SAFETY: has_avx512 checked the features.
                    let got = unsafe { sum_g_gx_avx512(&g, &x, 0.25, relu6) };
                    assert_eq!((got.0.to_bits(), got.1.to_bits()), (want.0.to_bits(), want.1.to_bits()), "len {len}, {relu6:?}");
                }
                // The mask did something where there are values to mask.
                if len > 20 {
                    assert_ne!(sum_g_gx_f64(&g, &x, 0.25, Some((1.7, 0.4))).0, sum_g_gx_f64(&g, &x, 0.25, None).0);
                }
            }
        }
    }
}
