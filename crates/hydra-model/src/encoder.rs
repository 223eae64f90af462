//! The MobileNetV2 encoder in the reference layout: stem `layer1`, stages `layer2`..`layer8`.

use burn::module::Module;
use burn::prelude::*;

use crate::conv_bn::{ConvBn, ConvBnConfig};
use crate::init::SplitMix64;
use crate::inverted_residual::{InvertedResidual, InvertedResidualConfig};
use crate::state::{ReferenceKeys, StateDict, StateLoader};

/// MobileNetV2's stage table (t, c, n, s) for `layer2`..`layer8`.
pub const MOBILENET_V2_STAGES: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// Output channels of the stem.
pub const STEM_CHANNELS: usize = 32;

/// Channels of `layer3`..`layer8`, the features the decoder uses.
pub const FEATURE_CHANNELS: [usize; 6] = [24, 32, 64, 96, 160, 320];

/// Configuration of [`MobileNetV2`].
#[derive(Config, Debug)]
pub struct MobileNetV2Config {
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl MobileNetV2Config {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> MobileNetV2 {
        let stem = ConvBnConfig::new(3, STEM_CHANNELS, 3).with_stride(2).init_with(rng, device);
        let mut cin = STEM_CHANNELS;
        let mut stages = Vec::new();
        for &(t, c, n, s) in &MOBILENET_V2_STAGES {
            let mut blocks = Vec::new();
            for j in 0..n {
                let stride = if j == 0 { s } else { 1 };
                blocks.push(InvertedResidualConfig::new(cin, c, t, stride).init_with(rng, device));
                cin = c;
            }
            stages.push(blocks);
        }
        MobileNetV2 { stem, stages }
    }
}

/// The encoder's multi-scale features.
#[derive(Debug, Clone)]
pub struct EncoderFeatures {
    /// `layer3`: `[B, 24, H/4, W/4]`.
    pub l3: Tensor<4>,
    /// `layer4`: `[B, 32, H/8, W/8]`.
    pub l4: Tensor<4>,
    /// `layer5`: `[B, 64, H/16, W/16]`.
    pub l5: Tensor<4>,
    /// `layer6`: `[B, 96, H/16, W/16]`.
    pub l6: Tensor<4>,
    /// `layer7`: `[B, 160, H/32, W/32]`.
    pub l7: Tensor<4>,
    /// `layer8`: `[B, 320, H/32, W/32]`.
    pub l8: Tensor<4>,
}

/// One convolution + BatchNorm layer of the encoder at a given input size.
#[derive(Debug, Clone)]
pub struct EncoderLayer<'a> {
    /// Reference name (`layer1`, `layer3.0.output.1`, ...).
    pub name: String,
    /// The layer.
    pub layer: &'a ConvBn,
    /// Its input `[B, C_in, h, w]`.
    pub input: [usize; 4],
    /// Its output `[B, C_out, h / s, w / s]` (rounded up).
    pub output: [usize; 4],
}

/// MobileNetV2 without the final 1280-channel convolution and classifier.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// `layer1`: 3×3 stride-2 conv, 3 → 32, BN, ReLU6.
    pub stem: ConvBn,
    /// `layer2`..`layer8`: inverted residual blocks per stage.
    pub stages: Vec<Vec<InvertedResidual>>,
}

impl MobileNetV2 {
    /// Fold every BatchNorm into its convolution (inference only).
    pub fn fold(self) -> Self {
        Self { stem: self.stem.fold(), stages: self.stages.into_iter().map(|s| s.into_iter().map(|b| b.fold()).collect()).collect() }
    }

    /// Every convolution + BatchNorm layer in forward order, with its reference name and, for
    /// an input `[B, 3, H, W]`, its input and output shapes (`⌈H/s⌉ × ⌈W/s⌉` after a total
    /// stride `s`).
    pub fn layers(&self, [b, h, w]: [usize; 3]) -> Vec<EncoderLayer<'_>> {
        let mut named: Vec<(String, &ConvBn)> = vec![("layer1".into(), &self.stem)];
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                for (k, layer) in [&block.expand, &block.depthwise, &block.project].into_iter().enumerate() {
                    named.push((format!("layer{}.{j}.output.{k}", i + 2), layer));
                }
            }
        }
        let mut out = Vec::with_capacity(named.len());
        let mut input = [b, 3, h, w];
        for (name, layer) in named {
            let s = layer.conv.stride;
            let output = [b, layer.bn.num_features(), input[2].div_ceil(s[0]), input[3].div_ceil(s[1])];
            out.push(EncoderLayer { name, layer, input, output });
            input = output;
        }
        out
    }

    /// Every BatchNorm's running statistics, in forward order (see
    /// [`crate::batch_norm::BatchNorm::running_statistics`]).
    pub fn running_statistics(&self) -> Vec<[Tensor<1>; 3]> {
        self.layers([1, 1, 1]).iter().map(|l| l.layer.bn.running_statistics()).collect()
    }

    /// Put back the statistics [`MobileNetV2::running_statistics`] took.
    pub fn restore_running_statistics(&self, statistics: Vec<[Tensor<1>; 3]>) {
        for (l, s) in self.layers([1, 1, 1]).iter().zip(statistics) {
            l.layer.bn.restore_running_statistics(s);
        }
    }

    /// For an input `[B, 3, H, W]`, the input shape `[B, C, h, w]` of each BatchNorm that
    /// normalises with batch statistics in training, in forward order (frozen layers left
    /// out). Each such layer reduces `B · h · w` values per channel.
    pub fn batch_norm_input_shapes(&self, batch: [usize; 3]) -> Vec<[usize; 4]> {
        let batch_statistics = |l: &EncoderLayer<'_>| l.layer.bn.training.is_enabled() && !l.layer.folded;
        self.layers(batch).iter().filter(|l| batch_statistics(l)).map(|l| l.output).collect()
    }

    /// `[B, 3, H, W]` → features at strides 4, 8, 16, 16, 32, 32 (sizes rounded up per
    /// stride-2 step, as PyTorch's padded convolutions give).
    pub fn forward(&self, x: Tensor<4>) -> EncoderFeatures {
        let run = |stage: &Vec<InvertedResidual>, x: Tensor<4>| stage.iter().fold(x, |x, b| b.forward(x));
        let x = run(&self.stages[0], self.stem.forward(x));
        let l3 = run(&self.stages[1], x);
        let l4 = run(&self.stages[2], l3.clone());
        let l5 = run(&self.stages[3], l4.clone());
        let l6 = run(&self.stages[4], l5.clone());
        let l7 = run(&self.stages[5], l6.clone());
        let l8 = run(&self.stages[6], l7.clone());
        EncoderFeatures { l3, l4, l5, l6, l7, l8 }
    }
}

/// Keys: `layer1.{0,1}.*`, `layer{2..8}.{block}.output.*` (the prefix is normally empty).
impl ReferenceKeys for MobileNetV2 {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        self.stem.export_state(&crate::state::join(prefix, "layer1"), out);
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                block.export_state(&crate::state::join(prefix, &format!("layer{}.{j}", i + 2)), out);
            }
        }
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        self.stem = self.stem.import_state(&crate::state::join(prefix, "layer1"), loader);
        self.stages = self
            .stages
            .into_iter()
            .enumerate()
            .map(|(i, stage)| {
                stage
                    .into_iter()
                    .enumerate()
                    .map(|(j, b)| b.import_state(&crate::state::join(prefix, &format!("layer{}.{j}", i + 2)), loader))
                    .collect()
            })
            .collect();
        self
    }
}
