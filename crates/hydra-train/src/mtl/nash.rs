//! Nash-MTL (Navon et al. 2022), as LibMTL: the task weights `α` of the Nash bargaining
//! solution `GᵀG α = 1/α`, by LibMTL's sequence of convex problems, then `Σ_t α_t g_t` with
//! the shared gradient clipped to `max_norm`.
//!
//! At an update step, `Ĝ = GGᵀ / nf` with `nf = ‖GGᵀ‖_F`. From the previous solution (ones at
//! first) LibMTL repeats up to `iterations` times: it stops, keeping the current `α`, when
//! `‖Ĝα − 1/(α + 1e-10)‖ < 1e-3`, when the next solution moves by less than 1e-6, or when
//! the solver fails; otherwise the next `α` is the solution of
//! `min Σ(Ĝα) + φ̃(α)/nf  s.t.  α ≥ 0,  −log(α_i nf) − log((Ĝα)_i) ≤ 0`, with the concave part
//! linearised at the current `α_p`: `φ̃(α) = (1/α_p + Ĝ (1/(Ĝα_p)))·(α − α_p)`. LibMTL solves
//! that with cvxpy and ECOS; here a log-barrier Newton method solves it (`solve`), to a
//! duality gap far below ECOS's tolerance. `α` goes to float32 before it weighs the losses,
//! as in LibMTL; the heads' gradients are weighed by `α` too (LibMTL backpropagates
//! `Σ α_t L_t`).

use super::linalg::{combination, dot, norm, solve_left};
use super::Combined;

fn matvec(a: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    a.iter().map(|row| dot(row, x)).collect()
}

/// `h_i(x) = log(x_i nf) + log((Ĝx)_i)`, or `None` outside the domain (`x > 0`, `Ĝx > 0`).
fn constraints(g: &[Vec<f64>], nf: f64, x: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let gx = matvec(g, x);
    if x.iter().chain(&gx).any(|&v| !(v > 0.0) || !v.is_finite()) {
        return None;
    }
    Some((x.iter().zip(&gx).map(|(xi, gi)| (xi * nf).ln() + gi.ln()).collect(), gx))
}

/// The barrier objective `t cᵀx − Σ log h_i(x)`, `None` where `h(x) ≤ 0`.
fn barrier(g: &[Vec<f64>], nf: f64, c: &[f64], t: f64, x: &[f64]) -> Option<f64> {
    let (h, _) = constraints(g, nf, x)?;
    if h.iter().any(|&v| v <= 0.0) {
        return None;
    }
    Some(t * dot(c, x) - h.iter().map(|v| v.ln()).sum::<f64>())
}

/// Whether `cᵀx` falls without bound on the feasible set: some direction of its recession cone
/// `{d ≥ 0, Ĝd ≥ 0}` (along which every constraint only grows) has `cᵀd < 0`. The cone's
/// slice `Σd = 1` is a polytope; its vertices (`T − 1` of the `2T` inequalities active) are
/// enumerated, which is cheap for a handful of tasks. ECOS reports such a problem as
/// unbounded, and LibMTL then keeps its weights.
fn unbounded(g: &[Vec<f64>], c: &[f64]) -> bool {
    let n = c.len();
    let normals: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|k| f64::from(i == k)).collect()).chain(g.iter().cloned()).collect();
    let mut lowest = f64::INFINITY;
    combinations(2 * n, n - 1, &mut Vec::new(), &mut |rows| {
        // M d = (0, …, 0, 1) with M's rows the chosen normals and the ones row; solve_left
        // solves x A = b, so A = Mᵀ.
        let mut m: Vec<Vec<f64>> = rows.iter().map(|&r| normals[r].clone()).collect();
        m.push(vec![1.0; n]);
        let mt: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| m[j][i]).collect()).collect();
        let rhs: Vec<f64> = (0..n).map(|i| f64::from(i == n - 1)).collect();
        if let Some(d) = solve_left(&mt, &rhs) {
            if normals.iter().all(|row| dot(row, &d) >= -1e-12) {
                lowest = lowest.min(dot(c, &d));
            }
        }
    });
    lowest < 0.0
}

/// Call `f` with `chosen` extended by every ascending `k`-subset of `0..n` above its last
/// element (all `k`-subsets when `chosen` is empty).
fn combinations(n: usize, k: usize, chosen: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
    if k == 0 {
        return f(chosen);
    }
    let start = chosen.last().map_or(0, |&l| l + 1);
    for next in start..n {
        chosen.push(next);
        combinations(n, k - 1, chosen, f);
        chosen.pop();
    }
}

/// The solution of one linearised problem at `alpha_p`, or `None` where it has none that a
/// solver could report (infeasible, unbounded, no strictly feasible start).
pub fn solve(g: &[Vec<f64>], nf: f64, alpha_p: &[f64]) -> Option<Vec<f64>> {
    let n = alpha_p.len();
    let gp = matvec(g, alpha_p);
    let inv_gp: Vec<f64> = gp.iter().map(|v| 1.0 / v).collect();
    let g_inv_gp = matvec(g, &inv_gp);
    let ones = vec![1.0; n];
    let g1 = matvec(g, &ones);
    let c: Vec<f64> = (0..n).map(|i| g1[i] + (1.0 / alpha_p[i] + g_inv_gp[i]) / nf).collect();
    if c.iter().any(|v| !v.is_finite()) || unbounded(g, &c) {
        return None;
    }
    // A strictly feasible start: a candidate with x > 0 and Ĝx > 0, scaled until h ≥ 2
    // (h(s x) = h(x) + 2 log s).
    let mut candidates = vec![alpha_p.to_vec(), ones.clone()];
    if let Some(x) = solve_left(g, &ones) {
        candidates.push(x);
    }
    let mut x = candidates.into_iter().find_map(|x| {
        let (h, _) = constraints(g, nf, &x)?;
        let lowest = h.iter().cloned().fold(f64::INFINITY, f64::min);
        let s = ((2.0 - lowest).max(0.0) / 2.0).exp();
        Some(x.iter().map(|v| v * s).collect::<Vec<f64>>())
    })?;
    let mut t = (n as f64 / dot(&c, &x).abs().max(1e-12)).max(1e-3);
    for _outer in 0..80 {
        for _newton in 0..200 {
            let (h, gx) = constraints(g, nf, &x)?;
            // ∇h_i = e_i / x_i + Ĝ_i / (Ĝx)_i; ∇²h_i = −e_i e_iᵀ / x_i² − Ĝ_i Ĝ_iᵀ / (Ĝx)_i².
            let mut grad: Vec<f64> = c.iter().map(|v| t * v).collect();
            let mut hess = vec![vec![0.0; n]; n];
            for i in 0..n {
                let dh: Vec<f64> = (0..n).map(|k| g[i][k] / gx[i] + if k == i { 1.0 / x[i] } else { 0.0 }).collect();
                for k in 0..n {
                    grad[k] -= dh[k] / h[i];
                    for l in 0..n {
                        let second = g[i][k] * g[i][l] / (gx[i] * gx[i]) + if k == i && l == i { 1.0 / (x[i] * x[i]) } else { 0.0 };
                        hess[k][l] += dh[k] * dh[l] / (h[i] * h[i]) + second / h[i];
                    }
                }
            }
            let minus: Vec<f64> = grad.iter().map(|v| -v).collect();
            let step = solve_left(&hess, &minus)?;
            let decrement = -dot(&grad, &step);
            if !decrement.is_finite() {
                return None;
            }
            if decrement / 2.0 < 1e-15 {
                break;
            }
            let f0 = barrier(g, nf, &c, t, &x)?;
            let mut s = 1.0;
            let next = loop {
                let y: Vec<f64> = x.iter().zip(&step).map(|(a, d)| a + s * d).collect();
                if barrier(g, nf, &c, t, &y).is_some_and(|f| f <= f0 - 0.25 * s * decrement) {
                    break Some(y);
                }
                s *= 0.5;
                if s < 1e-20 {
                    break None;
                }
            };
            match next {
                Some(y) => x = y,
                None => break,
            }
            if norm(&x) > 1e15 {
                return None;
            }
        }
        if n as f64 / t < 1e-13 * dot(&c, &x).abs().max(1.0) {
            return Some(x);
        }
        t *= 10.0;
    }
    Some(x)
}

/// LibMTL's `solve_optimization`: the weights for the normalised Gram matrix `g` and its norm
/// `nf`, from the previous weights `previous`.
pub fn weights(g: &[Vec<f64>], nf: f64, previous: &[f64], iterations: usize) -> Vec<f64> {
    let mut alpha = previous.to_vec();
    for _ in 0..iterations {
        let Some(next) = solve(g, nf, &alpha) else { break };
        let ga = matvec(g, &alpha);
        let residual: Vec<f64> = ga.iter().zip(&alpha).map(|(v, a)| v - 1.0 / (a + 1e-10)).collect();
        let moved: Vec<f64> = next.iter().zip(&alpha).map(|(a, b)| a - b).collect();
        if norm(&residual) < 1e-3 || norm(&moved) < 1e-6 {
            break;
        }
        alpha = next;
    }
    alpha
}

/// Scale `gradient` to the norm `max_norm` where it is longer (torch's `clip_grad_norm_`:
/// factor `max_norm / (‖g‖ + 1e-6)`); `max_norm = 0` turns it off.
pub fn clip(gradient: &mut [f64], max_norm: f64) {
    let coef = crate::optim::Optimizer::clip_scale(norm(gradient), max_norm);
    if coef < 1.0 {
        gradient.iter_mut().for_each(|v| *v *= coef);
    }
}

/// An update step: new weights from `previous` (updated in place), the clipped combination.
pub fn combine(grads: &[Vec<f64>], previous: &mut Vec<f64>, iterations: usize, max_norm: f64) -> Combined {
    let t = grads.len();
    if previous.len() != t {
        *previous = vec![1.0; t];
    }
    let gtg = super::linalg::gram(grads);
    let nf = gtg.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    let normalised: Vec<Vec<f64>> = gtg.iter().map(|r| r.iter().map(|v| v / nf).collect()).collect();
    *previous = weights(&normalised, nf, previous, iterations);
    let alpha: Vec<f64> = previous.iter().map(|&a| a as f32 as f64).collect();
    let mut gradient = combination(&alpha, grads);
    clip(&mut gradient, max_norm);
    Combined { gradient, weights: alpha }
}
