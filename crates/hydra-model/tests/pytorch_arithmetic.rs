//! The layers whose arithmetic order hydra shares with PyTorch's CPU kernels compute the same
//! float32 result bit for bit: each is checked against a host reference written from that
//! order (found layer by layer with `scripts/layer_parity.py`, which shows these layers
//! identical to PyTorch on the fixture network). Reordering any of them breaks the whole-network
//! parity bar of 1e-4 (tests/pytorch_parity.rs in hydra-train), so the order is pinned here.

mod common;

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::Distribution;
use common::{vec1, vec4};
use hydra_model::batch_norm::BatchNormConfig;

/// Deterministic values with full mantissas, so that rounding differences show.
fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

/// Depthwise 3×3, padding 1: per output, `acc = 0; for ky, kx: acc = step(w, x, acc)` with
/// x = 0 for padding taps.
fn depthwise_reference(x: &[f32], w: &[f32], [b, c, h, wd]: [usize; 4], s: usize, step: fn(f32, f32, f32) -> f32) -> Vec<f32> {
    let (oh, ow) = ((h - 1) / s + 1, (wd - 1) / s + 1);
    let mut out = Vec::with_capacity(b * c * oh * ow);
    for p in 0..b * c {
        let (plane, k) = (&x[p * h * wd..(p + 1) * h * wd], &w[(p % c) * 9..(p % c + 1) * 9]);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0.0f32;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = ((oy * s + ky) as isize - 1, (ox * s + kx) as isize - 1);
                        let v = if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize { 0.0 } else { plane[iy as usize * wd + ix as usize] };
                        acc = step(k[ky * 3 + kx], v, acc);
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

#[test]
fn depthwise_3x3_is_pytorchs_fused_chain_bit_for_bit() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        // Stride 1 at 9×11 and 30×40 takes the small-plane kernel, at 70×60 the banded one.
        for (s, h, w) in [(1, 9, 11), (2, 9, 12), (2, 10, 7), (1, 30, 40), (1, 70, 60)] {
            let (b, c) = (2, 5);
            let conv = Conv2dConfig::new([c, c], [3, 3])
                .with_stride([s, s])
                .with_groups(c)
                .with_bias(false)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let wv = values(c * 9, 1, -1.0, 1.0);
            let conv = burn::nn::conv::Conv2d { weight: Param::from_tensor(Tensor::from_data(TensorData::new(wv.clone(), [c, 1, 3, 3]), &device)), ..conv };
            let xv = values(b * c * h * w, 2, -3.0, 3.0);
            let y = vec4(hydra_model::kernels::conv2d(&conv, Tensor::from_data(TensorData::new(xv.clone(), [b, c, h, w]), &device)));
            // oneDNN's order: one fused multiply-add per tap.
            let expect = depthwise_reference(&xv, &wv, [b, c, h, w], s, |k, v, acc| k.mul_add(v, acc));
            assert_eq!(y.len(), expect.len());
            let differ = y.iter().zip(&expect).filter(|(a, e)| a.to_bits() != e.to_bits()).count();
            assert_eq!(differ, 0, "stride {s}, {h}×{w}, autodiff {}: {differ} outputs differ", device.is_autodiff());
            // The data tell the roundings apart: a rounding after every product (what hydra computed
            // before) differs somewhere.
            let plain = depthwise_reference(&xv, &wv, [b, c, h, w], s, |k, v, acc| acc + k * v);
            assert!(plain.iter().zip(&expect).any(|(a, e)| a != e), "the data cannot tell one rounding from two");
        }
    }
}

/// Inference-mode BatchNorm: `α = γ · (1 / √(σ² + ε))` in f32, `y = fma(x, α, fma(−μ, α, β))`.
#[test]
fn batch_norm_inference_is_pytorchs_formula_bit_for_bit() {
    let device = Device::flex();
    let c = 7;
    let mut bn = BatchNormConfig::new(c).init(&device);
    let (gamma, beta, mean, var) = (values(c, 3, 0.5, 1.5), values(c, 4, -0.2, 0.2), values(c, 5, -2.0, 2.0), values(c, 6, 0.01, 3.0));
    let t = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [c]), &device);
    bn.gamma = Param::from_tensor(t(&gamma));
    bn.beta = Param::from_tensor(t(&beta));
    bn.running_mean = RunningState::new(t(&mean));
    bn.running_var = RunningState::new(t(&var));
    let (h, w) = (6, 9);
    let xv = values(2 * c * h * w, 7, -4.0, 4.0);
    let mut two_roundings_differ = false;
    for relu6 in [false, true] {
        let y = vec4(bn.forward_inference(Tensor::from_data(TensorData::new(xv.clone(), [2, c, h, w]), &device), relu6));
        for (i, (&x, &got)) in xv.iter().zip(&y).enumerate() {
            let ch = i / (h * w) % c;
            let alpha = gamma[ch] * (1.0 / (var[ch] + 1e-5f32).sqrt());
            let v = x.mul_add(alpha, (-mean[ch]).mul_add(alpha, beta[ch]));
            two_roundings_differ |= v != x * alpha + (beta[ch] - mean[ch] * alpha);
            let v = if relu6 { v.clamp(0.0, 6.0) } else { v };
            assert_eq!(got.to_bits(), v.to_bits(), "relu6 {relu6}, index {i}: {got} vs {v}");
        }
    }
    assert!(two_roundings_differ, "the data cannot tell one rounding from two");
}

/// Training-mode BatchNorm: mean = f32(Σx / n) (sum in f64); var = f32(Σ f64((x − mean)_f32)²) / n
/// in f32; α = γ · f32(1 / √(f64(var) + ε)); `y = fma(x, α, fma(−mean, α, β))`. The batch
/// statistics returned are that mean and var.
#[test]
fn batch_norm_training_is_pytorchs_formula_bit_for_bit() {
    let device = Device::flex();
    let (b, c, h, w) = (3, 4, 11, 13);
    let xv: Vec<f32> = hydra_testkit::random::<4>([b, c, h, w], Distribution::Normal(0.7, 2.0), line!() as u64, &device).into_data().try_into_vec::<f32>().unwrap();
    let (gamma, beta) = (values(c, 8, 0.5, 1.5), values(c, 9, -0.5, 0.5));
    let t = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [c]), &device);
    let (y, m, v) = hydra_model::kernels::batch_norm_train(Tensor::from_data(TensorData::new(xv.clone(), [b, c, h, w]), &device), t(&gamma), t(&beta), 1e-5);
    let (y, m, v) = (vec4(y), vec1(m), vec1(v));
    let n = b * h * w;
    let mut textbook_differs = false;
    for ch in 0..c {
        let xs: Vec<f32> = (0..b).flat_map(|i| xv[(i * c + ch) * h * w..(i * c + ch + 1) * h * w].iter().copied()).collect();
        let mean = (xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64) as f32;
        let var = xs.iter().map(|&x| ((x - mean) as f64).powi(2)).sum::<f64>() as f32 / n as f32;
        assert_eq!(m[ch].to_bits(), mean.to_bits(), "mean of channel {ch}");
        assert_eq!(v[ch].to_bits(), var.to_bits(), "variance of channel {ch}");
        let alpha = gamma[ch] * (1.0 / (var as f64 + 1e-5).sqrt()) as f32;
        let shift = (-mean).mul_add(alpha, beta[ch]);
        for i in 0..b {
            for k in 0..h * w {
                let at = (i * c + ch) * h * w + k;
                let want = xv[at].mul_add(alpha, shift);
                let invstd = (1.0 / (var as f64 + 1e-5).sqrt()) as f32;
                textbook_differs |= want != (xv[at] - mean) * invstd * gamma[ch] + beta[ch];
                assert_eq!(y[at].to_bits(), want.to_bits(), "channel {ch}, index {at}: {} vs {want}", y[at]);
            }
        }
    }
    assert!(textbook_differs, "the data cannot tell PyTorch's formula from (x − μ)·σ⁻¹·γ + β");
}
