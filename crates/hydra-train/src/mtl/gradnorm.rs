//! GradNorm (Chen et al. 2018), as LibMTL: learnable loss scales `s` (`[T]`, trained by the
//! model's optimiser) give the weights `w = T · softmax(s)`. From the second epoch on, with
//! `G_t = ‖w_t g_t‖`, `Ḡ = mean G_t`, `L̃_t = L_t / L̄_t` (`L̄_t`: task t's mean loss of the
//! first epoch) and `r_t = L̃_t / mean L̃`, the scales receive the gradient of
//! `L_grad = Σ_t |G_t − (Ḡ r_t^α).detach()|` and the shared parameters `Σ_t w_t g_t` (w
//! detached). In the first epoch the loss is `Σ_t L_t` (one backward pass) and `s` gets no
//! gradient.
//!
//! LibMTL starts `s` at ones and its optimiser may decay it; hydra starts at zeros and does
//! not decay it. `w` depends on `s` only up to a common shift, so the weights and gradients
//! are the same.

use super::linalg::{combination, norm, sign, softmax};
use super::Combined;

/// `w = T · softmax(s)`.
pub fn weights(scales: &[f64]) -> Vec<f64> {
    softmax(scales).into_iter().map(|p| scales.len() as f64 * p).collect()
}

/// The combination and the gradient of `L_grad` with respect to the scales, for task
/// gradients `grads`, task `losses`, the first epoch's mean losses `initial`, scales `s` and
/// the restoring force `alpha`.
pub fn combine(grads: &[Vec<f64>], losses: &[f64], initial: &[f64], scales: &[f64], alpha: f64) -> (Combined, Vec<f64>) {
    let t = grads.len();
    let w = weights(scales);
    let norms: Vec<f64> = grads.iter().map(|g| norm(g)).collect();
    let per_loss: Vec<f64> = (0..t).map(|i| w[i] * norms[i]).collect();
    let mean_g = per_loss.iter().sum::<f64>() / t as f64;
    let ratio: Vec<f64> = losses.iter().zip(initial).map(|(l, l0)| l / l0).collect();
    let mean_ratio = ratio.iter().sum::<f64>() / t as f64;
    let target: Vec<f64> = ratio.iter().map(|r| mean_g * (r / mean_ratio).powf(alpha)).collect();
    // ∂L_grad/∂w_i = sign(G_i − c_i) ‖g_i‖ (torch's sign(0) = 0);
    // ∂w_i/∂s_k = w_i (δ_ik − w_k / T).
    let a: Vec<f64> = (0..t).map(|i| sign(per_loss[i] - target[i]) * norms[i]).collect();
    let aw: f64 = (0..t).map(|i| a[i] * w[i]).sum::<f64>() / t as f64;
    let scale_grad: Vec<f64> = (0..t).map(|k| w[k] * (a[k] - aw)).collect();
    (Combined { gradient: combination(&w, grads), weights: w }, scale_grad)
}
