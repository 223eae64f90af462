//! The depthwise Chained Residual Pooling of training (crp1) on `[B, C, H, W]` f32 buffers,
//! forward and backward, one channel plane per task: `top = x; per stage s: top =
//! maxpool5(top) · w[s][c]; x = x + top`.
//!
//! As the stages one by one under autodiff (max-pool, multiply, add; 4 stages: 12 operations,
//! each a pass over the whole tensor, and twice as many backward), but each plane's stages run
//! while the plane is in cache. The output and the input's gradient are those operations' to
//! the bit (same products, sums in the same order; the tests say so). The weights' gradient
//! sums each channel's products in f64 (the operations sum them in f32).

use rayon::prelude::*;

use super::crp::scale_add_plane;
use super::max_pool::{pool_plane, route_plane};

/// What [`crp_train_backward`] needs from the forward pass, per plane `[B · C]` and stage:
/// the pool's output (`pooled`, f32) and its argmax (`argmax`, window offsets), each laid
/// out `[plane][stage][H · W]`.
#[derive(Debug)]
pub struct CrpSaved {
    /// Each stage's max-pool output.
    pub pooled: Vec<f32>,
    /// Each stage's max-pool argmax ([`super::max_pool::max_pool5`]'s offsets).
    pub argmax: Vec<u8>,
}

/// Forward pass over `x [B, C, H, W]` with `w [stages, C]`: the output and what the backward
/// pass needs.
pub fn crp_train(x: &[f32], w: &[f32], [b, c, h, wd]: [usize; 4]) -> (Vec<f32>, CrpSaved) {
    let n = h * wd;
    let stages = w.len().checked_div(c).unwrap_or(0);
    assert!(x.len() == b * c * n && w.len() == stages * c, "crp_train: sizes");
    let mut out = x.to_vec();
    let mut pooled = vec![0f32; b * c * stages * n];
    let mut argmax = vec![0u8; b * c * stages * n];
    if n == 0 || stages == 0 {
        return (out, CrpSaved { pooled, argmax });
    }
    out.par_chunks_mut(n)
        .zip(pooled.par_chunks_mut(stages * n))
        .zip(argmax.par_chunks_mut(stages * n))
        .enumerate()
        .for_each_init(
            || vec![0f32; n],
            |top, (p, ((acc, pl), am))| {
                let ch = p % c;
                let plane = &x[p * n..(p + 1) * n];
                for s in 0..stages {
                    let (pl, am) = (&mut pl[s * n..(s + 1) * n], &mut am[s * n..(s + 1) * n]);
                    pool_plane(if s == 0 { plane } else { top }, h, wd, pl, Some(am));
                    // top = pooled · w; acc = acc + top (inference's stage step; its NaN flag unused).
                    scale_add_plane(pl, w[s * c + ch], top, acc);
                }
            },
        );
    (out, CrpSaved { pooled, argmax })
}

multiversion!(dot_f64(a: &[f32], b: &[f32]) -> f64 {
    // Σ a[i] · b[i], each product rounded to f32 (the multiply's gradient), summed in f64
    // over eight lanes in a fixed order.
    const LANES: usize = 8;
    let mut acc = [0f64; LANES];
    let n = a.len().min(b.len()) / LANES * LANES;
    for (ac, bc) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += (ac[l] * bc[l]) as f64;
        }
    }
    acc.iter().sum::<f64>() + a[n..].iter().zip(&b[n..]).map(|(&u, &v)| (u * v) as f64).sum::<f64>()
});

multiversion!(scale_into(g: &[f32], k: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(g) {
        *o = v * k;
    }
});

multiversion!(add_into(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, &u), &v) in out.iter_mut().zip(a).zip(b) {
        *o = u + v;
    }
});

/// Backward pass of [`crp_train`]: from the output's gradient `grad [B, C, H, W]`, the input's
/// gradient `[B, C, H, W]` and the weights' `[stages, C]`.
///
/// With `t_s` the stage outputs (`t_0 = x`) and `G` the output's gradient: the gradient of the
/// last stage's output is `G`; going back, that of `t_s` is `G + route_s(w[s] · grad(t_{s+1}))`
/// (the add's and the pool's, the pool's gradient routed into zeros first, as the operations
/// do), and `∂w[s][c] = Σ grad(t_{s+1}) · pooled_s` over the channel's planes.
pub fn crp_train_backward(grad: &[f32], w: &[f32], saved: &CrpSaved, [b, c, h, wd]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let n = h * wd;
    let stages = w.len().checked_div(c).unwrap_or(0);
    assert!(grad.len() == b * c * n && saved.pooled.len() == b * c * stages * n && saved.argmax.len() == saved.pooled.len(), "crp_train_backward: sizes");
    let mut dx = grad.to_vec();
    if n == 0 || stages == 0 {
        return (dx, vec![0f32; stages * c]);
    }
    // Per plane, per stage: Σ grad(t_{s+1}) · pooled_s.
    let mut partial = vec![0f64; b * c * stages];
    dx.par_chunks_mut(n).zip(partial.par_chunks_mut(stages)).enumerate().for_each_init(
        || (vec![0f32; n], vec![0f32; n]),
        |(scaled, routed), (p, (gt, part))| {
            let ch = p % c;
            let g = &grad[p * n..(p + 1) * n];
            // gt holds the gradient of t_{s+1}; starts as G (the last stage's output).
            for s in (0..stages).rev() {
                let at = (p * stages + s) * n;
                part[s] = dot_f64(gt, &saved.pooled[at..at + n]);
                scale_into(gt, w[s * c + ch], scaled);
                routed.fill(0.0);
                route_plane(scaled, &saved.argmax[at..at + n], h, wd, routed);
                add_into(g, routed, gt);
            }
        },
    );
    let mut dw = vec![0f32; stages * c];
    for s in 0..stages {
        for ch in 0..c {
            dw[s * c + ch] = (0..b).map(|i| partial[(i * c + ch) * stages + s]).sum::<f64>() as f32;
        }
    }
    (dx, dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::max_pool::{max_pool5, max_pool5_backward};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Quarter steps in [-4, 4): many ties in the pools.
                ((s >> 33) % 32) as f32 / 4.0 - 4.0
            })
            .collect()
    }

    /// The stages one by one with the whole-tensor kernels (max-pool, then multiply, then add),
    /// forward and backward, written out: what autodiff runs without the fused operation.
    fn staged(x: &[f32], w: &[f32], g: &[f32], [b, c, h, wd]: [usize; 4]) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let n = h * wd;
        let stages = w.len() / c;
        let per_channel = |v: &[f32], s: usize| -> Vec<f32> { v.iter().enumerate().map(|(i, &u)| u * w[s * c + (i / n) % c]).collect() };
        let (mut acc, mut top) = (x.to_vec(), x.to_vec());
        let (mut pooled, mut args) = (vec![], vec![]);
        for s in 0..stages {
            let (p, a) = max_pool5(&top, b * c, h, wd, true);
            top = per_channel(&p, s);
            acc = acc.iter().zip(&top).map(|(u, v)| u + v).collect();
            pooled.push(p);
            args.push(a.unwrap());
        }
        let mut gt = g.to_vec();
        let mut dw = vec![0f64; stages * c];
        for s in (0..stages).rev() {
            for (i, (&u, &p)) in gt.iter().zip(&pooled[s]).enumerate() {
                dw[s * c + (i / n) % c] += (u * p) as f64;
            }
            let routed = max_pool5_backward(&per_channel(&gt, s), &args[s], b * c, h, wd);
            gt = g.iter().zip(&routed).map(|(u, v)| u + v).collect();
        }
        (acc, gt, dw)
    }

    #[test]
    fn fused_crp_equals_its_stages_forward_and_backward() {
        for (dims, stages) in [([2usize, 3, 7, 9], 4usize), ([1, 2, 3, 2], 4), ([2, 2, 16, 5], 2)] {
            let [b, c, h, wd] = dims;
            let mut x = values(b * c * h * wd, 1);
            x[5] = f32::NAN; // one NaN plane: the NaN-aware pool
            let w: Vec<f32> = values(stages * c, 2).iter().map(|v| v / 3.0).collect();
            let g = values(b * c * h * wd, 3);
            let (y, saved) = crp_train(&x, &w, dims);
            let (dx, dw) = crp_train_backward(&g, &w, &saved, dims);
            let (y_ref, dx_ref, dw_ref) = staged(&x, &w, &g, dims);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&y_ref), "output {dims:?}");
            assert_eq!(bits(&dx), bits(&dx_ref), "input gradient {dims:?}");
            for (i, (&a, &r)) in dw.iter().zip(&dw_ref).enumerate() {
                // Channel 0 holds the NaN (its sums are NaN on both sides).
                if r.is_nan() {
                    assert!(a.is_nan(), "weight gradient {i} {dims:?}");
                } else {
                    assert!((a as f64 - r).abs() <= 1e-6 * r.abs().max(1.0), "weight gradient {i}: {a} vs {r} {dims:?}");
                }
            }
        }
    }
}
