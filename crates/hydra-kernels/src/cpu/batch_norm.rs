//! BatchNorm with batch statistics on `[B, C, HW]` f32 buffers, forward and backward, in
//! PyTorch's CPU arithmetic (sums in f64 over fixed lanes), parallel over channels and planes.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::affine::affine_plane_into;
use crate::sync_bn::ChannelReduce;
use super::buffers::par_uninit;

/// Per-channel slices of a `[B, C, HW]` buffer: `(b, range)` pairs of channel `c`.
fn channel_ranges(b: usize, c: usize, hw: usize, ch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..b).map(move |i| (i * c + ch) * hw..(i * c + ch + 1) * hw)
}

/// f64 accumulator lanes of the BatchNorm sums: independent lanes let the sums vectorise
/// (one f64 add chain would be latency-bound), in a fixed order.
const F64_LANES: usize = 8;

multiversion!(sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    acc.iter().sum::<f64>() + rest
});

multiversion!(sum_sq_dev_f64(x: &[f32], mean: f32) -> f64 {
    // The deviation in f32, its square summed in f64: PyTorch's CPU BatchNorm statistics.
    let mut acc = [0f64; F64_LANES];
    let mut chunks = x.chunks_exact(F64_LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = (v - mean) as f64;
            *a += d * d;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| ((v - mean) as f64).powi(2)).sum();
    acc.iter().sum::<f64>() + rest
});

multiversion!(sum_g_gx_f64(g: &[f32], x: &[f32], mean: f64) -> (f64, f64) {
    let (mut sg, mut sgx) = ([0f64; F64_LANES], [0f64; F64_LANES]);
    let n = g.len().min(x.len()) / F64_LANES * F64_LANES;
    for (gc, xc) in g[..n].chunks_exact(F64_LANES).zip(x[..n].chunks_exact(F64_LANES)) {
        for l in 0..F64_LANES {
            sg[l] += gc[l] as f64;
            sgx[l] += gc[l] as f64 * (xc[l] as f64 - mean);
        }
    }
    let (mut a, mut b) = (sg.iter().sum::<f64>(), sgx.iter().sum::<f64>());
    for (&gv, &xv) in g[n..].iter().zip(&x[n..]) {
        a += gv as f64;
        b += gv as f64 * (xv as f64 - mean);
    }
    (a, b)
});

/// BatchNorm with batch statistics over `[B, C, HW]`: returns the output, the batch mean and
/// the biased batch variance per channel. Computed as PyTorch's CPU kernel does, to the bit:
/// mean = f32(Σx / n) with the sum in f64; variance = f32(Σ(x − mean)²) / n in f32, the
/// deviations in f32 and their squares summed in f64; 1/√(var + ε) in f64; then
/// `y = fma(x, α, fma(−mean, α, β))` with `α = γ · f32(1/√(var + ε))`.
///
/// With `reduce` (SyncBatchNorm, [`crate::sync_bn`]) the sums are taken over every replica's
/// batch: Σx and the element count are summed across replicas, then Σ(x − mean)², each sum
/// the same f64 value one process would hold up to the order of its additions.
pub fn batch_norm_train(x: &[f32], gamma: &[f32], beta: &[f32], [b, c, hw]: [usize; 3], eps: f64, reduce: Option<&dyn ChannelReduce>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
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
            let alpha = (1.0 / (var as f64 + eps).sqrt()) as f32 * gamma[ch];
            affine_plane_into(&x[k * hw..(k + 1) * hw], alpha, (-mean).mul_add(alpha, beta[ch]), o);
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

/// Gradients of [`batch_norm_train`] with respect to `x`, `gamma` and `beta`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    grad: &[f32],
    [b, c, hw]: [usize; 3],
    eps: f64,
    reduce: Option<&dyn ChannelReduce>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let raw: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch] as f64;
            let (mut sg, mut sgx) = (0f64, 0f64);
            for r in channel_ranges(b, c, hw, ch) {
                let (g, gx) = sum_g_gx_f64(&grad[r.clone()], &x[r], m);
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
            bn_dx_plane(&grad[k * hw..(k + 1) * hw], &x[k * hw..(k + 1) * hw], coefficients, d);
        })
    };
    (dx, sums.iter().map(|s| s.1 as f32).collect(), sums.iter().map(|s| s.0 as f32).collect())
}

multiversion!(bn_dx_plane(grad: &[f32], x: &[f32], coefficients: [f32; 5], d: &mut [MaybeUninit<f32>]) {
    // dx = a · (g − mean(g) − x̂ · mean(g · x̂)), x̂ = (x − μ) · σ⁻¹.
    let [a, mg, mgx, m, is] = coefficients;
    assert!(grad.len() >= d.len() && x.len() >= d.len(), "bn_dx_plane: sizes");
    for ((o, &g), &v) in d.iter_mut().zip(grad).zip(x) {
        let xhat = (v - m) * is;
        *o = MaybeUninit::new(a * (g - mg - xhat * mgx));
    }
});
