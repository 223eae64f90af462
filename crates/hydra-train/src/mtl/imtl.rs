//! IMTL-G: with `u_t = g_t / ‖g_t‖`, `D = [g_1 − g_t]`, `U = [u_1 − u_t]` (t = 2..T),
//! `α_{2..T} = g_1 Uᵀ (D Uᵀ)⁻¹` and `α_1 = 1 − Σ α_{2..T}`; the gradient is `Σ α_t g_t`, whose
//! projections onto every `u_t` are equal. (LibMTL's IMTL also learns loss scales, IMTL-L;
//! with the scales at 0 the losses are unchanged, which is what this function sees.)
//! Identical task gradients make `D Uᵀ` singular: then the weights are equal (`1/T` each),
//! which is the unique answer with equal projections (LibMTL's `torch.inverse` fails there).

use super::linalg::{combination, dot, norm, solve_left};
use super::Combined;

pub fn combine(grads: &[Vec<f64>]) -> Combined {
    let t = grads.len();
    if t == 1 {
        return Combined { gradient: grads[0].clone(), weights: vec![1.0] };
    }
    let unit: Vec<Vec<f64>> = grads.iter().map(|g| {
        let n = norm(g);
        g.iter().map(|v| v / n).collect()
    }).collect();
    let diff = |m: &[Vec<f64>], k: usize| -> Vec<f64> { m[0].iter().zip(&m[k]).map(|(a, b)| a - b).collect() };
    let d: Vec<Vec<f64>> = (1..t).map(|k| diff(grads, k)).collect();
    let u: Vec<Vec<f64>> = (1..t).map(|k| diff(&unit, k)).collect();
    // (D Uᵀ)[i][j] = d_i · u_j; g_1 Uᵀ = [g_1 · u_j].
    let dut: Vec<Vec<f64>> = d.iter().map(|di| u.iter().map(|uj| dot(di, uj)).collect()).collect();
    let gu: Vec<f64> = u.iter().map(|uj| dot(&grads[0], uj)).collect();
    let weights = match solve_left(&dut, &gu) {
        Some(rest) => std::iter::once(1.0 - rest.iter().sum::<f64>()).chain(rest).collect(),
        None => vec![1.0 / t as f64; t],
    };
    Combined { gradient: combination(&weights, grads), weights }
}
