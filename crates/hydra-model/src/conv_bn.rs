//! Convolution + BatchNorm (+ ReLU6): the unit MobileNetV2 is built from.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

use crate::batch_norm::{BatchNorm, BatchNormConfig};
use crate::init::{normal_vec, SplitMix64};
use crate::state::{join, RawTensor, ReferenceKeys, StateDict, StateLoader};

/// Standard deviation of the reference initialisation of convolution weights.
pub const INIT_STD: f64 = 0.01;

/// A convolution initialised as the reference does: weights N(0, 0.01²), bias 0.
///
/// `padding` is `kernel / 2` on each side ("same" for odd kernels at stride 1).
#[allow(clippy::too_many_arguments)]
pub fn reference_conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    groups: usize,
    bias: bool,
    rng: &mut SplitMix64,
    device: &Device,
) -> Conv2d {
    let [cin, cout] = channels;
    assert!(cin % groups == 0 && cout % groups == 0, "channels must divide groups");
    let shape = [cout, cin / groups, kernel, kernel];
    let n = shape.iter().product();
    let weight = Tensor::<4>::from_data(TensorData::new(normal_vec(rng, n, INIT_STD), shape), device);
    let pad = kernel / 2;
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([cout], device))),
        stride: [stride, stride],
        kernel_size: [kernel, kernel],
        dilation: [1, 1],
        groups,
        padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
    }
}

/// Configuration of [`ConvBn`].
#[derive(Config, Debug)]
pub struct ConvBnConfig {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Groups (cin for a depthwise convolution).
    #[config(default = 1)]
    pub groups: usize,
    /// Apply ReLU6 after the BatchNorm.
    #[config(default = true)]
    pub relu6: bool,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl ConvBnConfig {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> ConvBn {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> ConvBn {
        ConvBn {
            conv: reference_conv([self.cin, self.cout], self.kernel, self.stride, self.groups, false, rng, device),
            bn: BatchNormConfig::new(self.cout).init(device),
            relu6: self.relu6,
            folded: false,
        }
    }
}

/// Convolution (no bias) → BatchNorm → optional ReLU6.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
    /// Whether ReLU6 follows.
    pub relu6: bool,
    /// BatchNorm folded into the convolution (inference only, see [`ConvBn::fold`]).
    pub folded: bool,
}

impl ConvBn {
    /// `[B, cin, H, W]` → `[B, cout, H / stride, W / stride]` (rounded up).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if !self.folded && !x.device().is_autodiff() {
            let (alpha, shift) = self.bn.inference_affine(&x.device());
            match crate::kernels::conv_affine(&self.conv, x, alpha, shift, self.relu6) {
                Ok(y) => return y,
                Err(x) => x,
            }
        } else {
            x
        };
        let y = crate::kernels::conv2d(&self.conv, x);
        if !self.folded {
            // Batch statistics under autodiff (the ReLU6 fused in), else the running ones.
            return self.bn.forward_activated(y, self.relu6);
        }
        if self.relu6 { crate::kernels::relu6(y) } else { y }
    }

    /// Fold the BatchNorm's running statistics into the convolution for inference:
    /// `W' = W · s`, `b' = β − μ · s` with `s = γ / √(σ² + ε)` per output channel. The result
    /// computes the same function as the inference-mode original (up to rounding) with one
    /// pass less over the activations; it must not be trained.
    pub fn fold(mut self) -> Self {
        if self.folded {
            return self;
        }
        let device = self.conv.weight.device();
        let gamma = RawTensor::from_tensor(self.bn.gamma.val()).to_f32();
        let beta = RawTensor::from_tensor(self.bn.beta.val()).to_f32();
        let mean = RawTensor::from_tensor(self.bn.running_mean.value()).to_f32();
        let var = RawTensor::from_tensor(self.bn.running_var.value()).to_f32();
        let eps = self.bn.epsilon;
        let w = RawTensor::from_tensor(self.conv.weight.val());
        let per_out: usize = w.shape[1..].iter().product();
        let mut wv = w.to_f32();
        let mut bias = vec![0f32; gamma.len()];
        for o in 0..gamma.len() {
            let s = (gamma[o] as f64 / (var[o] as f64 + eps).sqrt()) as f32;
            for v in &mut wv[o * per_out..(o + 1) * per_out] {
                *v *= s;
            }
            bias[o] = beta[o] - mean[o] * s;
        }
        self.conv.weight = Param::from_tensor(RawTensor::f32(w.shape.clone(), wv).to_tensor(&device));
        self.conv.bias = Some(Param::from_tensor(RawTensor::f32(vec![bias.len()], bias).to_tensor(&device)));
        self.folded = true;
        self
    }
}

/// Keys follow PyTorch's `nn.Sequential(conv, bn[, relu6])`: `{prefix}.0.weight`, `{prefix}.1.*`.
impl ReferenceKeys for ConvBn {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        if self.folded {
            // conv(W') + b' is conv(W') followed by a BatchNorm with γ = 1, β = b', μ = 0,
            // σ² = 1 − ε: the reference layout holds a folded layer exactly.
            let p = join(prefix, "0");
            out.insert(join(&p, "weight"), RawTensor::from_tensor(self.conv.weight.val()));
            let b = RawTensor::from_tensor(self.conv.bias.as_ref().expect("folded conv has a bias").val());
            let c = b.numel();
            let q = join(prefix, "1");
            out.insert(join(&q, "weight"), RawTensor::f32(vec![c], vec![1.0; c]));
            out.insert(join(&q, "bias"), b);
            out.insert(join(&q, "running_mean"), RawTensor::f32(vec![c], vec![0.0; c]));
            out.insert(join(&q, "running_var"), RawTensor::f32(vec![c], vec![(1.0 - self.bn.epsilon) as f32; c]));
            out.insert(join(&q, "num_batches_tracked"), RawTensor::i64(vec![], vec![0]));
            return;
        }
        crate::state::export_conv(&self.conv, &join(prefix, "0"), out);
        self.bn.export_state(&join(prefix, "1"), out);
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        self.conv = loader.conv(&join(prefix, "0"), self.conv);
        self.bn = self.bn.import_state(&join(prefix, "1"), loader);
        self
    }
}
