//! GradVac (Wang et al. 2021), as LibMTL: for each task `i`, the other tasks `j` in a random
//! order, and each group `k` of the shared parameters, `ρ = cos(pc_i^k, g_j^k)` (1e-8 in the
//! denominator) against the running target `ρ̂ = rho[i][j][k]`; if `ρ < ρ̂`,
//! `pc_i^k += ‖pc_i^k‖ (ρ̂√(1−ρ²) − ρ√(1−ρ̂²)) / (‖g_j^k‖√(1−ρ̂²) + 1e-8) · g_j^k`; always
//! `ρ̂ ← (1−β) ρ̂ + β ρ` with the ρ from before the change. The applied gradient is `Σ_i pc_i`;
//! the weights are ones (LibMTL's `batch_weight`; its update of them is commented out).
//! The targets start at 0, so the first step only sets them.

use super::linalg::{combination, dot};
use super::Combined;

/// The parameter granularity of the targets (LibMTL's `GradVac_group_type` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groups {
    /// One group: all shared parameters.
    WholeModel,
    /// One group per leaf module (a convolution, a BatchNorm).
    AllLayer,
    /// One group per parameter tensor.
    AllMatrix,
}

/// `sizes`: the group sizes in the flattened layout (summing to `P`); `rho`: `T·T·K` targets,
/// `[i][j][k]` row-major, updated in place; `order(i)`: a permutation of the `T − 1` other
/// tasks' ranks (`0..T−1`, ranks of `0..T` without `i`).
pub fn combine(grads: &[Vec<f64>], sizes: &[usize], beta: f64, rho: &mut [f64], order: &mut dyn FnMut(usize) -> Vec<usize>) -> Combined {
    let (t, k_n) = (grads.len(), sizes.len());
    assert_eq!(sizes.iter().sum::<usize>(), grads[0].len(), "groups cover the shared parameters");
    assert_eq!(rho.len(), t * t * k_n);
    let starts: Vec<usize> = sizes.iter().scan(0, |s, &n| {
        let b = *s;
        *s += n;
        Some(b)
    }).collect();
    let mut pc = grads.to_vec();
    for i in 0..t {
        let others: Vec<usize> = (0..t).filter(|&j| j != i).collect();
        for r in order(i) {
            let j = others[r];
            for k in 0..k_n {
                let range = starts[k]..starts[k] + sizes[k];
                let (p, g) = (&pc[i][range.clone()], &grads[j][range.clone()]);
                let (pn, gn) = (dot(p, p).sqrt(), dot(g, g).sqrt());
                let r_ijk = dot(p, g) / (pn * gn + 1e-8);
                let target = rho[(i * t + j) * k_n + k];
                if r_ijk < target {
                    let w = pn * (target * (1.0 - r_ijk * r_ijk).sqrt() - r_ijk * (1.0 - target * target).sqrt()) / (gn * (1.0 - target * target).sqrt() + 1e-8);
                    for (pv, gv) in pc[i][range].iter_mut().zip(g) {
                        *pv += gv * w;
                    }
                }
                rho[(i * t + j) * k_n + k] = (1.0 - beta) * target + beta * r_ijk;
            }
        }
    }
    Combined { gradient: combination(&vec![1.0; t], &pc), weights: vec![1.0; t] }
}
