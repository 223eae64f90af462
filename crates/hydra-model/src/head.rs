//! Task heads: depthwise 1×1 → ReLU6 → 3×3 convolution with bias.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::conv_bn::reference_conv;
use crate::init::SplitMix64;
use crate::state::{export_conv, StateDict, StateLoader};

/// Configuration of [`TaskHead`].
#[derive(Config, Debug)]
pub struct TaskHeadConfig {
    /// Decoder width (input channels).
    pub width: usize,
    /// Output channels (classes, 1 for depth, 3 for normals).
    pub outputs: usize,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl TaskHeadConfig {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> TaskHead {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> TaskHead {
        TaskHead {
            pre: reference_conv([self.width, self.width], 1, 1, self.width, false, rng, device),
            out: reference_conv([self.width, self.outputs], 3, 1, 1, true, rng, device),
        }
    }
}

/// One task's head (`pre_<task>` and `<task>` in the reference keys).
#[derive(Module, Debug)]
pub struct TaskHead {
    /// Depthwise 1×1, no bias.
    pub pre: Conv2d,
    /// 3×3, padding 1, with bias.
    pub out: Conv2d,
}

impl TaskHead {
    /// `[B, width, h, w]` → `[B, outputs, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::kernels::task_head(&self.pre, &self.out, x)
    }

    /// Number of output channels.
    pub fn outputs(&self) -> usize {
        self.out.weight.dims()[0]
    }

    /// Write under `pre_{name}` and `{name}`.
    pub fn export_named(&self, name: &str, out: &mut StateDict) {
        export_conv(&self.pre, &format!("pre_{name}"), out);
        export_conv(&self.out, name, out);
    }

    /// Read from `pre_{name}` and `{name}`.
    pub fn import_named(mut self, name: &str, loader: &mut StateLoader<'_>) -> Self {
        self.pre = loader.conv(&format!("pre_{name}"), self.pre);
        self.out = loader.conv(name, self.out);
        self
    }
}
