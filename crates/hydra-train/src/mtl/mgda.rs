//! MGDA: the min-norm element of the convex hull of the task gradients, by the Frank–Wolfe
//! solver of the official code as LibMTL has it (`MGDA._find_min_norm_element`): start from
//! the best pair, then at most 250 steps until the weights move by less than 1e-5 (L1). Like
//! LibMTL, the gradient applied is `Σ_t w_t g_t / n_t` with the normalised gradients (the
//! paper's MGDA-UB would use the shared representation's gradient instead).

use super::linalg::{combination, gram, norm};
use super::Combined;

/// How task gradients are normalised before the min-norm problem (LibMTL's `mgda_gn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalisation {
    /// None.
    None,
    /// By their L2 norm.
    L2,
    /// By the task's loss.
    Loss,
    /// By the loss times the L2 norm.
    LossL2,
}

/// The optimum of `min_γ ‖γ v1 + (1 − γ) v2‖²` from the three inner products, as the
/// official code clamps it (γ = 0.999 or 0.001 at the ends).
fn min_norm_from2(v1v1: f64, v1v2: f64, v2v2: f64) -> (f64, f64) {
    if v1v2 >= v1v1 {
        return (0.999, v1v1);
    }
    if v1v2 >= v2v2 {
        return (0.001, v2v2);
    }
    let gamma = -((v1v2 - v2v2) / (v1v1 + v2v2 - 2.0 * v1v2));
    (gamma, v2v2 + gamma * (v1v2 - v2v2))
}

/// Euclidean projection onto the simplex (the official code's sort-based form; CAGrad's
/// solver uses it too).
pub(super) fn projection_to_simplex(y: &[f64]) -> Vec<f64> {
    let m = y.len();
    let mut sorted = y.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut tmax_f = (y.iter().sum::<f64>() - 1.0) / m as f64;
    let mut tmpsum = 0.0;
    for i in 0..m - 1 {
        tmpsum += sorted[i];
        let tmax = (tmpsum - 1.0) / (i as f64 + 1.0);
        if tmax > sorted[i + 1] {
            tmax_f = tmax;
            break;
        }
    }
    y.iter().map(|v| (v - tmax_f).max(0.0)).collect()
}

fn next_point(cur: &[f64], grad: &[f64]) -> Vec<f64> {
    let n = cur.len() as f64;
    let mean = grad.iter().sum::<f64>() / n;
    let proj: Vec<f64> = grad.iter().map(|g| g - mean).collect();
    let tm1: Vec<f64> = cur.iter().zip(&proj).filter(|&(_, &p)| p < 0.0).map(|(&c, &p)| -c / p).collect();
    let tm2: Vec<f64> = cur.iter().zip(&proj).filter(|&(_, &p)| p > 0.0).map(|(&c, &p)| (1.0 - c) / p).collect();
    let mut t = 1.0f64;
    let above = |v: &[f64]| v.iter().copied().filter(|&x| x > 1e-7).fold(f64::INFINITY, f64::min);
    if tm1.iter().any(|&x| x > 1e-7) {
        t = above(&tm1);
    }
    if tm2.iter().any(|&x| x > 1e-7) {
        t = t.min(above(&tm2));
    }
    projection_to_simplex(&proj.iter().zip(cur).map(|(p, c)| p * t + c).collect::<Vec<_>>())
}

/// `Σ_ij a_i b_j M_ij`.
fn quad(a: &[f64], m: &[Vec<f64>], b: &[f64]) -> f64 {
    (0..a.len()).map(|i| (0..b.len()).map(|j| a[i] * b[j] * m[i][j]).sum::<f64>()).sum()
}

/// The min-norm weights of the convex hull of `grads`.
pub fn min_norm_weights(grads: &[Vec<f64>]) -> Vec<f64> {
    let m = gram(grads);
    let n = grads.len();
    if n == 1 {
        return vec![1.0];
    }
    let mut best = (f64::INFINITY, 0, 0, 0.0);
    for i in 0..n {
        for j in i + 1..n {
            let (c, d) = min_norm_from2(m[i][i], m[i][j], m[j][j]);
            if d < best.0 {
                best = (d, i, j, c);
            }
        }
    }
    let mut sol = vec![0.0; n];
    sol[best.1] = best.3;
    sol[best.2] = 1.0 - best.3;
    if n < 3 {
        return sol;
    }
    for _ in 0..250 {
        let grad_dir: Vec<f64> = (0..n).map(|i| -(0..n).map(|j| m[i][j] * sol[j]).sum::<f64>()).collect();
        let new_point = next_point(&sol, &grad_dir);
        let (v1v1, v1v2, v2v2) = (quad(&sol, &m, &sol), quad(&sol, &m, &new_point), quad(&new_point, &m, &new_point));
        let (nc, _) = min_norm_from2(v1v1, v1v2, v2v2);
        let new_sol: Vec<f64> = sol.iter().zip(&new_point).map(|(s, p)| nc * s + (1.0 - nc) * p).collect();
        let change: f64 = new_sol.iter().zip(&sol).map(|(a, b)| (a - b).abs()).sum();
        if change < 1e-5 {
            return sol;
        }
        sol = new_sol;
    }
    sol
}

pub fn combine(grads: &[Vec<f64>], losses: &[f64], normalisation: Normalisation) -> Combined {
    let scale = |t: usize| match normalisation {
        Normalisation::None => 1.0,
        Normalisation::L2 => norm(&grads[t]),
        Normalisation::Loss => losses[t],
        Normalisation::LossL2 => losses[t] * norm(&grads[t]),
    };
    let normalised: Vec<Vec<f64>> = grads
        .iter()
        .enumerate()
        .map(|(t, g)| {
            let s = scale(t);
            g.iter().map(|v| v / s).collect()
        })
        .collect();
    let weights = min_norm_weights(&normalised);
    Combined { gradient: combination(&weights, &normalised), weights }
}
