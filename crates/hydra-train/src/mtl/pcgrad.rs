//! PCGrad, as LibMTL: for each task `i`, in a random order of all tasks `j` (itself
//! included), if `pc_i · g_j < 0` then `pc_i −= (pc_i · g_j) g_j / (‖g_j‖² + 1e-8)`; the
//! applied gradient is `Σ_i pc_i`. The weights are LibMTL's `batch_weight`: 1 per task,
//! minus the projection coefficients of the times `g_j` was projected out.

use super::linalg::{combination, dot};
use super::Combined;

pub fn combine(grads: &[Vec<f64>], order: &mut dyn FnMut(usize) -> Vec<usize>) -> Combined {
    let t = grads.len();
    let mut pc = grads.to_vec();
    let mut weights = vec![1.0; t];
    let sq: Vec<f64> = grads.iter().map(|g| dot(g, g) + 1e-8).collect();
    for i in 0..t {
        let perm = order(i);
        debug_assert_eq!(perm.len(), t);
        for j in perm {
            let gij = dot(&pc[i], &grads[j]);
            if gij < 0.0 {
                let k = gij / sq[j];
                for (p, g) in pc[i].iter_mut().zip(&grads[j]) {
                    *p -= k * g;
                }
                weights[j] -= k;
            }
        }
    }
    Combined { gradient: combination(&vec![1.0; t], &pc), weights }
}
