//! Aligned-MTL, as LibMTL: `M = G Gᵀ = V Λ Vᵀ`; the eigenvalues above `max λ · T · ε`
//! (float64 ε) count; `B = √λ_min · V Λ^{-1/2} Vᵀ` over them and the task weights are the
//! column sums of `B`; the gradient is `Σ_t w_t g_t`.

use super::linalg::{combination, gram, symmetric_eigen};
use super::Combined;

pub fn combine(grads: &[Vec<f64>]) -> Combined {
    let t = grads.len();
    let (values, vectors) = symmetric_eigen(&gram(grads));
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tol = max * t as f64 * f64::EPSILON;
    // Descending, the ones above the tolerance.
    let kept: Vec<usize> = (0..t).rev().filter(|&k| values[k] > tol).collect();
    let smallest = values[*kept.last().expect("a non-zero gradient")];
    let mut weights = vec![0.0; t];
    for &k in &kept {
        let s = smallest.sqrt() / values[k].sqrt();
        let v = &vectors[k];
        let col_sum: f64 = v.iter().sum();
        for (j, w) in weights.iter_mut().enumerate() {
            // B[i][j] = Σ_k s_k v_k[i] v_k[j]; the column sum over i.
            *w += s * col_sum * v[j];
        }
    }
    Combined { gradient: combination(&weights, grads), weights }
}
