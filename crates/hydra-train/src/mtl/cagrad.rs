//! CAGrad, as LibMTL: with `A = G Gᵀ`, `g₀ = mean_t g_t`, `c' = c · √(mean(A) + 1e-8) + 1e-8`,
//! the weights `w = argmin_{w ∈ simplex} wᵀ A 1/T + c' √(wᵀ A w + 1e-8)`; `g_w = Σ w_t g_t`,
//! `λ = c' / (‖g_w‖ + 1e-8)`, the gradient `g₀ + λ g_w`, rescaled by `1 / (1 + c²)` (rescale 1,
//! LibMTL's default), `1 / (1 + c)` (2) or not (0). LibMTL solves the small convex problem
//! with SciPy's SLSQP from `w = 1/T`; here projected gradient descent with backtracking, to
//! a change below 1e-15: the same minimiser, found to more digits than SLSQP's tolerance.

use super::linalg::{combination, dot, gram, norm};
use super::mgda::projection_to_simplex;
use super::Combined;

/// How the CAGrad gradient is rescaled (LibMTL's `rescale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescale {
    None,
    /// `1 / (1 + c²)`.
    Quadratic,
    /// `1 / (1 + c)`.
    Linear,
}

/// `argmin_{w ∈ simplex} f(w)` for a convex, differentiable `f` with gradient `df`.
fn minimise_on_simplex(n: usize, f: &dyn Fn(&[f64]) -> f64, df: &dyn Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let mut x = vec![1.0 / n as f64; n];
    let mut step = 1.0;
    for _ in 0..100_000 {
        let (fx, g) = (f(&x), df(&x));
        let mut moved = None;
        while step > 1e-30 {
            let y = projection_to_simplex(&x.iter().zip(&g).map(|(a, b)| a - step * b).collect::<Vec<_>>());
            let d: Vec<f64> = y.iter().zip(&x).map(|(a, b)| a - b).collect();
            // Armijo on the projected step.
            if f(&y) <= fx + 1e-4 * dot(&g, &d) {
                moved = Some((y, d));
                break;
            }
            step *= 0.5;
        }
        let Some((y, d)) = moved else { break };
        x = y;
        if d.iter().map(|v| v.abs()).sum::<f64>() < 1e-15 {
            break;
        }
        step *= 2.0;
    }
    x
}

pub fn combine(grads: &[Vec<f64>], c: f64, rescale: Rescale) -> Combined {
    let t = grads.len();
    let a = gram(grads);
    let mean_a = a.iter().flatten().sum::<f64>() / (t * t) as f64;
    let cc = c * (mean_a + 1e-8).sqrt() + 1e-8;
    let ab: Vec<f64> = a.iter().map(|row| row.iter().sum::<f64>() / t as f64).collect();
    let ax = |x: &[f64]| -> Vec<f64> { a.iter().map(|row| dot(row, x)).collect() };
    let f = |x: &[f64]| dot(x, &ab) + cc * (dot(x, &ax(x)) + 1e-8).sqrt();
    let df = |x: &[f64]| {
        let axv = ax(x);
        let r = (dot(x, &axv) + 1e-8).sqrt();
        ab.iter().zip(&axv).map(|(p, q)| p + cc * q / r).collect()
    };
    let w = minimise_on_simplex(t, &f, &df);
    let gw = combination(&w, grads);
    let lambda = cc / (norm(&gw) + 1e-8);
    let scale = match rescale {
        Rescale::None => 1.0,
        Rescale::Quadratic => 1.0 / (1.0 + c * c),
        Rescale::Linear => 1.0 / (1.0 + c),
    };
    let mean = combination(&vec![1.0 / t as f64; t], grads);
    let gradient = mean.iter().zip(&gw).map(|(m, g)| (m + lambda * g) * scale).collect();
    Combined { gradient, weights: w }
}
