//! Softmax cross-entropy over the classes of `[B, C, HW]` logits, forward and backward, with
//! a vectorisable `exp`; its softmax terms are shared with the fused upsampled cross-entropy
//! ([`super::upsampled_ce`]).

use rayon::prelude::*;

/// `e^x` for f32 without a library call, so that loops over it vectorise: Cephes' `expf`
/// (x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7 polynomial for e^r, then 2^n from the
/// exponent bits), within 2 ulp of the exact value on [−87, 88]. Below −87.3 it returns
/// ~1e-38 instead of underflowing; NaN stays NaN.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let c = x.clamp(-87.33, 88.72);
    let n = (c * LOG2E).round();
    let r = c - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = p.mul_add(r * r, r) + 1.0;
    // n ∈ [−126, 128]: 2^n as exponent bits, split in two factors so that 2^128 does not
    // overflow the exponent field before the multiplication.
    let half = (n * 0.5).floor();
    // The integer k is read from the bits of k + 1.5·2²³ (a bit cast, which vectorises,
    // unlike Rust's saturating float-to-int conversion).
    let two = |k: f32| f32::from_bits((k + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    let e = y * two(half) * two(n - half);
    if x.is_nan() { x } else { e }
}

multiversion!(pub(crate) softmax_terms(x: &[f32], maxv: &[f32], se: &mut [f32], store: Option<&mut [f32]>) {
    match store {
        Some(dst) => {
            for (((d, s), &v), &m) in dst.iter_mut().zip(se.iter_mut()).zip(x).zip(maxv) {
                let e = exp_fast(v - m);
                *d = e;
                *s += e;
            }
        }
        None => {
            for ((s, &v), &m) in se.iter_mut().zip(x).zip(maxv) {
                *s += exp_fast(v - m);
            }
        }
    }
});

/// Cross-entropy of `logits: [B, C, HW]` against `labels: [B, HW]`, pixels labelled `ignore`
/// (or outside 0..C) excluded: returns (Σ −log softmax[label] in f64, number of valid pixels).
pub fn cross_entropy(logits: &[f32], labels: &[i64], [b, c, hw]: [usize; 3], ignore: i64) -> (f64, usize) {
    (0..b)
        .into_par_iter()
        .map(|i| {
            let base = i * c * hw;
            let mut sum = 0f64;
            let mut count = 0usize;
            let mut maxv = vec![f32::NEG_INFINITY; hw];
            for ch in 0..c {
                for (m, &v) in maxv.iter_mut().zip(&logits[base + ch * hw..base + (ch + 1) * hw]) {
                    *m = if v > *m { v } else { *m };
                }
            }
            let mut se = vec![0f32; hw];
            for ch in 0..c {
                softmax_terms(&logits[base + ch * hw..base + (ch + 1) * hw], &maxv, &mut se, None);
            }
            for p in 0..hw {
                let l = labels[i * hw + p];
                if l == ignore || l < 0 || l as usize >= c {
                    continue;
                }
                let lse = maxv[p] as f64 + (se[p] as f64).ln();
                sum += lse - logits[base + l as usize * hw + p] as f64;
                count += 1;
            }
            (sum, count)
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Gradient of the mean cross-entropy (`Σ / max(count, 1)`) with respect to the logits, times
/// the upstream gradient `scale`: `(softmax − onehot) · scale / count` at valid pixels, 0 else.
pub fn cross_entropy_backward(logits: &[f32], labels: &[i64], [_b, c, hw]: [usize; 3], ignore: i64, count: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; logits.len()];
    let k = scale / count.max(1) as f32;
    out.par_chunks_mut(c * hw).enumerate().for_each(|(i, o)| {
        let x = &logits[i * c * hw..(i + 1) * c * hw];
        let lab = &labels[i * hw..(i + 1) * hw];
        let mut maxv = vec![f32::NEG_INFINITY; hw];
        for ch in 0..c {
            for (m, &v) in maxv.iter_mut().zip(&x[ch * hw..(ch + 1) * hw]) {
                *m = if v > *m { v } else { *m };
            }
        }
        let mut se = vec![0f32; hw];
        for ch in 0..c {
            softmax_terms(&x[ch * hw..(ch + 1) * hw], &maxv, &mut se, Some(&mut o[ch * hw..(ch + 1) * hw]));
        }
        let valid: Vec<f32> = lab.iter().map(|&l| if l == ignore || l < 0 || l as usize >= c { 0.0 } else { k }).collect();
        for ch in 0..c {
            let dst = &mut o[ch * hw..(ch + 1) * hw];
            for ((d, &s), &v) in dst.iter_mut().zip(&se).zip(&valid) {
                *d = *d / s * v;
            }
        }
        for (p, &l) in lab.iter().enumerate() {
            if valid[p] != 0.0 {
                o[l as usize * hw + p] -= k;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_within_two_ulp() {
        let mut worst = 0f64;
        for i in 0..=2_000_000 {
            let x = -87.0 + 175.0 * i as f32 / 2_000_000.0;
            let e = (x as f64).exp();
            let ulp = (e as f32).next_up() as f64 - e as f32 as f64;
            worst = worst.max((exp_fast(x) as f64 - e).abs() / ulp);
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(f32::NAN).is_nan());
        assert!(exp_fast(-1e6) < 1e-37 && exp_fast(-1e6) >= 0.0);
        assert!(exp_fast(88.7) > 3.3e38 && exp_fast(88.7).is_finite());
    }
}
