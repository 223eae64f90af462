//! GradDrop (Chen et al. 2020), as LibMTL, on representation gradients only: with the
//! representation `rep` (`[B, F]`) and each task's gradient of it `∇_t` (`[B, F]`),
//! `s_t = Σ_batch ∇_t ⊙ sign(rep)` and, per feature, the positive-sign purity
//! `P = ½ (1 + Σ_t s_t / (Σ_t |s_t| + 1e-7))`. One uniform `U` per feature (shared by the
//! tasks and the batch) keeps the positive gradients where `P > U` and the negative ones
//! where `P < U`: `M_t = [P > U][s_t > 0] + [P < U][s_t < 0]`, and the gradient that flows
//! back into the shared part is `Σ_t ∇_t ⊙ (leak + (1 − leak) M_t)`. There are no task weights
//! (LibMTL returns none; the logs show ones).

/// The upstream gradient `[B·F]` from the representation `rep` and the tasks' gradients
/// `grads` (each `[B·F]`, sample-major), `u`: the `F` uniforms.
use super::linalg::sign;

pub fn upstream(rep: &[f64], grads: &[Vec<f64>], u: &[f64], leak: f64) -> Vec<f64> {
    let f = u.len();
    assert!(rep.len() % f == 0 && grads.iter().all(|g| g.len() == rep.len()));
    let s: Vec<Vec<f64>> = grads.iter().map(|g| {
        let mut s = vec![0.0; f];
        for (gs, rs) in g.chunks(f).zip(rep.chunks(f)) {
            for k in 0..f {
                s[k] += gs[k] * sign(rs[k]);
            }
        }
        s
    }).collect();
    let masks: Vec<Vec<f64>> = (0..grads.len()).map(|t| (0..f).map(|k| {
        let total: f64 = s.iter().map(|st| st[k]).sum();
        let abs: f64 = s.iter().map(|st| st[k].abs()).sum();
        let p = 0.5 * (1.0 + total / (abs + 1e-7));
        let m = f64::from((p > u[k] && s[t][k] > 0.0) || (p < u[k] && s[t][k] < 0.0));
        leak + (1.0 - leak) * m
    }).collect()).collect();
    let mut out = vec![0.0; rep.len()];
    for (g, m) in grads.iter().zip(&masks) {
        for (o, gs) in out.chunks_mut(f).zip(g.chunks(f)) {
            for k in 0..f {
                o[k] += gs[k] * m[k];
            }
        }
    }
    out
}
