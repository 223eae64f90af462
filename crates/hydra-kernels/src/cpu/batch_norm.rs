//! BatchNorm with batch statistics on `[B, C, HW]` f32 buffers, forward and backward, in
//! PyTorch's CPU arithmetic (sums in f64 over fixed lanes), parallel over channels and planes;
//! optionally with the ReLU6 that follows it fused in (MobileNetV2's BatchNorm → ReLU6): the
//! clamp in the output pass, and in the backward pass the gradient masked where the
//! normalised value, recomputed from `x` with the forward pass's own arithmetic, was not in
//! (0, 6). Bit for bit the BatchNorm and ReLU6 kernels one after the other, with two passes
//! over the activations fewer forward and three backward.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::affine::affine_plane_into;
use super::batch_norm_sums::{masked, sum_f64, sum_g_gx, sum_sq_dev_f64};
use super::buffers::par_uninit;
use crate::sync_bn::ChannelReduce;

/// Per-channel slices of a `[B, C, HW]` buffer: `(b, range)` pairs of channel `c`.
fn channel_ranges(b: usize, c: usize, hw: usize, ch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..b).map(move |i| (i * c + ch) * hw..(i * c + ch + 1) * hw)
}

/// The forward pass's per-channel affine map `(α, shift)`: `α = γ · f32(1/√(var + ε))`,
/// `shift = fma(−mean, α, β)`, so that `y = fma(x, α, shift)`.
fn output_affine(mean: f32, var: f32, gamma: f32, beta: f32, eps: f64) -> (f32, f32) {
    let alpha = (1.0 / (var as f64 + eps).sqrt()) as f32 * gamma;
    (alpha, (-mean).mul_add(alpha, beta))
}

/// BatchNorm with batch statistics over `[B, C, HW]`: returns the output, the batch mean and
/// the biased batch variance per channel. Computed as PyTorch's CPU kernel does, to the bit:
/// mean = f32(Σx / n) with the sum in f64; variance = f32(Σ(x − mean)²) / n in f32, the
/// deviations in f32 and their squares summed in f64; 1/√(var + ε) in f64; then
/// `y = fma(x, α, fma(−mean, α, β))` with `α = γ · f32(1/√(var + ε))`.
///
/// With `reduce` (SyncBatchNorm, [`crate::sync_bn`]) the sums are taken over every replica's
/// batch: Σx and the element count are summed across replicas, then Σ(x − mean)², each sum
/// the same f64 value one process would hold up to the order of its additions.
///
/// With `relu6`, the output is `min(max(y, 0), 6)` (NaN passing through), as
/// [`super::relu6::relu6_in_place`] on the output would leave it.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train(x: &[f32], gamma: &[f32], beta: &[f32], [b, c, hw]: [usize; 3], eps: f64, relu6: bool, reduce: Option<&dyn ChannelReduce>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = (b * hw) as f64;
    let stats: Vec<(f32, f32)> = match reduce {
        None => (0..c)
            .into_par_iter()
            .map(|ch| {
                let sum: f64 = channel_ranges(b, c, hw, ch).map(|r| sum_f64(&x[r])).sum();
                let mean = (sum / n) as f32;
                let sq: f64 = channel_ranges(b, c, hw, ch).map(|r| sum_sq_dev_f64(&x[r], mean)).sum();
                (mean, sq as f32 / n as f32)
            })
            .collect(),
        Some(reduce) => synced_statistics(x, [b, c, hw], reduce),
    };
    // SAFETY: affine_plane_into writes every element of its plane.
    let out = unsafe {
        par_uninit(x.len(), hw, |k, o| {
            let ch = k % c;
            let (mean, var) = stats[ch];
            let (alpha, shift) = output_affine(mean, var, gamma[ch], beta[ch], eps);
            affine_plane_into(&x[k * hw..(k + 1) * hw], alpha, shift, relu6, o);
        })
    };
    (out, stats.iter().map(|s| s.0).collect(), stats.iter().map(|s| s.1).collect())
}

/// The batch mean and biased variance per channel over every replica's batch: Σx per
/// channel and the count summed across replicas, the mean rounded as one process rounds it,
/// then Σ(x − mean)² summed across replicas.
fn synced_statistics(x: &[f32], [b, c, hw]: [usize; 3], reduce: &dyn ChannelReduce) -> Vec<(f32, f32)> {
    let mut sums: Vec<f64> = (0..c).into_par_iter().map(|ch| channel_ranges(b, c, hw, ch).map(|r| sum_f64(&x[r])).sum()).collect();
    sums.push((b * hw) as f64);
    reduce.all_reduce_sum(&mut sums);
    let n = sums[c];
    let means: Vec<f32> = sums[..c].iter().map(|s| (s / n) as f32).collect();
    let mut sq: Vec<f64> = (0..c).into_par_iter().map(|ch| channel_ranges(b, c, hw, ch).map(|r| sum_sq_dev_f64(&x[r], means[ch])).sum()).collect();
    reduce.all_reduce_sum(&mut sq);
    means.into_iter().zip(sq).map(|(m, q)| (m, q as f32 / n as f32)).collect()
}

/// Gradients of [`batch_norm_train`] with respect to `x`, `gamma` and `beta`. `relu6`: the
/// forward pass had the ReLU6 fused in, with this `beta` (the gradient `grad` is then the
/// ReLU6 output's, masked here as ReLU6's backward would mask it).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    x: &[f32],
    gamma: &[f32],
    relu6: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    grad: &[f32],
    [b, c, hw]: [usize; 3],
    eps: f64,
    reduce: Option<&dyn ChannelReduce>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // ReLU6's mask, per channel: the forward pass's affine map.
    let mask = |ch: usize| relu6.map(|beta| output_affine(mean[ch], var[ch], gamma[ch], beta[ch], eps));
    let raw: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch] as f64;
            let (mut sg, mut sgx) = (0f64, 0f64);
            for r in channel_ranges(b, c, hw, ch) {
                let (g, gx) = sum_g_gx(&grad[r.clone()], &x[r], m, mask(ch));
                sg += g;
                sgx += gx;
            }
            (sg, sgx)
        })
        .collect();
    let invstd = |ch: usize| 1.0 / (var[ch] as f64 + eps).sqrt();
    // γ's and β's gradients: this replica's own sums (the gradient average combines them).
    let sums: Vec<(f64, f64)> = raw.iter().enumerate().map(|(ch, &(sg, sgx))| (sg, sgx * invstd(ch))).collect();
    // The input's gradient: the sums over every replica's batch, and its element count.
    let (n, dx_sums) = match reduce {
        None => ((b * hw) as f64, sums.clone()),
        Some(reduce) => {
            let mut v: Vec<f64> = raw.iter().flat_map(|&(sg, sgx)| [sg, sgx]).collect();
            v.push((b * hw) as f64);
            reduce.all_reduce_sum(&mut v);
            let n = v[2 * c];
            (n, (0..c).map(|ch| (v[2 * ch], v[2 * ch + 1] * invstd(ch))).collect())
        }
    };
    // SAFETY: bn_dx_plane writes every element of its plane.
    let dx = unsafe {
        par_uninit(x.len(), hw, |k, d| {
            let ch = k % c;
            let invstd = 1.0 / (var[ch] as f64 + eps).sqrt();
            let (sg, sgx) = dx_sums[ch];
            let a = (gamma[ch] as f64 * invstd) as f32;
            let coefficients = [a, (sg / n) as f32, (sgx / n) as f32, mean[ch], invstd as f32];
            bn_dx_plane(&grad[k * hw..(k + 1) * hw], &x[k * hw..(k + 1) * hw], coefficients, mask(ch), d);
        })
    };
    (dx, sums.iter().map(|s| s.1 as f32).collect(), sums.iter().map(|s| s.0 as f32).collect())
}

multiversion!(bn_dx_plane(grad: &[f32], x: &[f32], coefficients: [f32; 5], relu6: Option<(f32, f32)>, d: &mut [MaybeUninit<f32>]) {
    // dx = a · (g − mean(g) − x̂ · mean(g · x̂)), x̂ = (x − μ) · σ⁻¹, g masked by ReLU6's
    // backward where it was fused in. Two loops, so that the one without the mask has none.
    #[inline(always)]
    fn dx(grad: &[f32], x: &[f32], [a, mg, mgx, m, is]: [f32; 5], relu6: Option<(f32, f32)>, d: &mut [MaybeUninit<f32>]) {
        assert!(grad.len() >= d.len() && x.len() >= d.len(), "bn_dx_plane: sizes");
        for ((o, &g), &v) in d.iter_mut().zip(grad).zip(x) {
            let xhat = (v - m) * is;
            *o = MaybeUninit::new(a * (masked(g, v, relu6) - mg - xhat * mgx));
        }
    }
    match relu6 {
        Some(mask) => dx(grad, x, coefficients, Some(mask), d),
        None => dx(grad, x, coefficients, None, d),
    }
});
