//! MobileNetV2's inverted residual block in the reference layout (the expansion conv is kept
//! even when t = 1).

use burn::module::Module;
use burn::prelude::*;

use crate::conv_bn::{ConvBn, ConvBnConfig};
use crate::init::SplitMix64;
use crate::state::{join, ReferenceKeys, StateDict, StateLoader};

/// Configuration of [`InvertedResidual`].
#[derive(Config, Debug)]
pub struct InvertedResidualConfig {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Expansion factor t.
    pub expansion: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl InvertedResidualConfig {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> InvertedResidual {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> InvertedResidual {
        let mid = self.cin * self.expansion;
        InvertedResidual {
            expand: ConvBnConfig::new(self.cin, mid, 1).init_with(rng, device),
            depthwise: ConvBnConfig::new(mid, mid, 3).with_stride(self.stride).with_groups(mid).init_with(rng, device),
            project: ConvBnConfig::new(mid, self.cout, 1).with_relu6(false).init_with(rng, device),
            residual: self.stride == 1 && self.cin == self.cout,
        }
    }
}

/// 1×1 expand + BN + ReLU6 → 3×3 depthwise + BN + ReLU6 → 1×1 project + BN, with a residual
/// connection when the stride is 1 and the channel count is unchanged.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1×1 expansion, cin → cin·t.
    pub expand: ConvBn,
    /// 3×3 depthwise, stride s.
    pub depthwise: ConvBn,
    /// 1×1 linear projection, cin·t → cout.
    pub project: ConvBn,
    /// Whether the input is added to the output.
    pub residual: bool,
}

impl InvertedResidual {
    /// Fold every BatchNorm into its convolution (inference only).
    pub fn fold(self) -> Self {
        Self { expand: self.expand.fold(), depthwise: self.depthwise.fold(), project: self.project.fold(), residual: self.residual }
    }

    /// `[B, cin, H, W]` → `[B, cout, ⌈H/s⌉, ⌈W/s⌉]`. In f32 inference on the CPU (unfolded
    /// BatchNorms), a block whose expanded tensor is large runs as one fused kernel
    /// (`kernels::inverted_residual`), to the bit what the layers compute one after the other.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let layers = [&self.expand, &self.depthwise, &self.project];
        let x = if !x.device().is_autodiff() && layers.iter().all(|l| !l.folded) && self.expand.relu6 && self.depthwise.relu6 && !self.project.relu6 {
            let device = x.device();
            let affine = || layers.map(|l| l.bn.inference_affine(&device));
            match crate::kernels::inverted_residual(x, layers.map(|l| &l.conv), affine, self.residual) {
                Ok(y) => return y,
                Err(x) => x,
            }
        } else {
            x
        };
        let y = self.project.forward(self.depthwise.forward(self.expand.forward(x.clone())));
        if self.residual { x + y } else { y }
    }
}

/// Keys: `{prefix}.output.{0,1,2}.{0,1}.*` (expand, depthwise, project).
impl ReferenceKeys for InvertedResidual {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        let p = join(prefix, "output");
        self.expand.export_state(&join(&p, "0"), out);
        self.depthwise.export_state(&join(&p, "1"), out);
        self.project.export_state(&join(&p, "2"), out);
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        let p = join(prefix, "output");
        self.expand = self.expand.import_state(&join(&p, "0"), loader);
        self.depthwise = self.depthwise.import_state(&join(&p, "1"), loader);
        self.project = self.project.import_state(&join(&p, "2"), loader);
        self
    }
}
