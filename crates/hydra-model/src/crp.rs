//! Chained Residual Pooling (Light-Weight RefineNet).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::conv_bn::reference_conv;
use crate::init::SplitMix64;
use crate::max_pool::max_pool_5x5;
use crate::state::{join, ReferenceKeys, StateDict, StateLoader};

/// Configuration of [`Crp`].
#[derive(Config, Debug)]
pub struct CrpConfig {
    /// Channels in and out.
    pub channels: usize,
    /// Number of pool → 1×1 conv stages.
    #[config(default = 4)]
    pub stages: usize,
    /// Depthwise 1×1 convolutions (groups = channels), as in `crp1`.
    #[config(default = false)]
    pub depthwise: bool,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl CrpConfig {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> Crp {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> Crp {
        let groups = if self.depthwise { self.channels } else { 1 };
        let convs = (0..self.stages)
            .map(|_| reference_conv([self.channels, self.channels], 1, 1, groups, false, rng, device))
            .collect();
        Crp { convs }
    }
}

/// `top = x; repeat: top = conv1x1(maxpool5x5(top)); x = x + top`. No BN, no activation.
#[derive(Module, Debug)]
pub struct Crp {
    /// One 1×1 convolution per stage (`{i}_outvar_dimred`).
    pub convs: Vec<Conv2d>,
}

impl Crp {
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(w) = self.depthwise_weights() {
            return crate::kernels::crp_depthwise(x, w);
        }
        let mut x = x;
        let mut top = x.clone();
        for conv in &self.convs {
            top = crate::kernels::conv2d(conv, max_pool_5x5(top));
            x = x + top.clone();
        }
        x
    }
}

impl Crp {
    /// `[stages, C]`, the per-channel scales, when every stage is a depthwise 1×1 convolution
    /// without bias (as in `crp1`).
    fn depthwise_weights(&self) -> Option<Tensor<2>> {
        let mut rows = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let [cout, cin_g, kh, kw] = conv.weight.dims();
            if conv.groups != cout || cin_g != 1 || [kh, kw] != [1, 1] || conv.bias.is_some() || conv.stride != [1, 1] {
                return None;
            }
            rows.push(conv.weight.val().reshape([1, cout]));
        }
        (!rows.is_empty()).then(|| Tensor::cat(rows, 0))
    }
}

/// Keys: `{prefix}.0.{i}_outvar_dimred.weight`, i = 1..stages (PyTorch wraps the CRP in a
/// one-element `nn.Sequential`).
impl ReferenceKeys for Crp {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        for (i, conv) in self.convs.iter().enumerate() {
            crate::state::export_conv(conv, &join(prefix, &format!("0.{}_outvar_dimred", i + 1)), out);
        }
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        self.convs = self
            .convs
            .into_iter()
            .enumerate()
            .map(|(i, c)| loader.conv(&join(prefix, &format!("0.{}_outvar_dimred", i + 1)), c))
            .collect();
        self
    }
}
