//! DB-MTL (Lin et al. 2023), as LibMTL: the task gradients of `log(L_t + 1e-8)`, that is
//! `g_t / (L_t + 1e-8)`, go into a running buffer `buf ← g + (β / step^{β_σ}) (buf − g)`
//! (zeros at first, no bias correction); with `α_t = max_s ‖buf_s‖ / (‖buf_t‖ + 1e-8)` the
//! applied gradient is `Σ_t α_t buf_t`, every task's buffer scaled to the largest norm. The
//! heads get the gradients of the log losses. LibMTL returns ones as the weights; hydra
//! reports `α` (what the method applies to each task's buffer).

use super::linalg::norm;
use super::Combined;

/// `step`: this step's number, from 1; `buffer`: `T` rows of `P`, updated in place (empty
/// rows at the first step).
pub fn combine(grads: &[Vec<f64>], losses: &[f64], beta: f64, beta_sigma: f64, step: u64, buffer: &mut Vec<Vec<f64>>) -> Combined {
    let (t, p) = (grads.len(), grads[0].len());
    if buffer.len() != t || buffer.iter().any(|b| b.len() != p) {
        *buffer = vec![vec![0.0; p]; t];
    }
    let decay = beta / (step as f64).powf(beta_sigma);
    for ((b, g), l) in buffer.iter_mut().zip(grads).zip(losses) {
        let scale = 1.0 / (l + 1e-8);
        for (bv, gv) in b.iter_mut().zip(g) {
            let g = gv * scale;
            *bv = g + decay * (*bv - g);
        }
    }
    let norms: Vec<f64> = buffer.iter().map(|b| norm(b)).collect();
    let top = norms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let alpha: Vec<f64> = norms.iter().map(|n| top / (n + 1e-8)).collect();
    Combined { gradient: super::linalg::combination(&alpha, buffer), weights: alpha }
}

/// The factor on each head's gradient of its own loss: `∂log(L_t + 1e-8)/∂L_t`.
pub fn head_weights(losses: &[f64]) -> Vec<f64> {
    losses.iter().map(|l| 1.0 / (l + 1e-8)).collect()
}
