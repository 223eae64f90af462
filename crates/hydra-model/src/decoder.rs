//! The Light-Weight RefineNet decoder: 1×1 lateral convs, four CRP blocks, adaptation convs
//! and bilinear upsampling to each skip's size.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use crate::kernels::{conv2d, conv_add_relu6, relu6};

use crate::conv_bn::reference_conv;
use crate::crp::{Crp, CrpConfig};
use crate::encoder::{EncoderFeatures, FEATURE_CHANNELS};
use crate::init::SplitMix64;
use crate::resize::resize_bilinear;
use crate::state::{export_conv, ReferenceKeys, StateDict, StateLoader};

/// Configuration of [`RefineNetDecoder`].
#[derive(Config, Debug)]
pub struct RefineNetDecoderConfig {
    /// Width of the decoder (256 in the reference).
    #[config(default = 256)]
    pub width: usize,
    /// Stages per CRP block (4 in the reference).
    #[config(default = 4)]
    pub crp_stages: usize,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

impl RefineNetDecoderConfig {
    /// Initialise with weights drawn from `self.seed`.
    pub fn init(&self, device: &Device) -> RefineNetDecoder {
        self.init_with(&mut SplitMix64::new(self.seed), device)
    }

    /// Initialise, drawing weights from `rng`, in the reference module order.
    pub fn init_with(&self, rng: &mut SplitMix64, device: &Device) -> RefineNetDecoder {
        let w = self.width;
        let lateral = |cin: usize, rng: &mut SplitMix64| reference_conv([cin, w], 1, 1, 1, false, rng, device);
        // Reference order: conv8, conv7, conv6, conv5, conv4, conv3.
        let conv8 = lateral(FEATURE_CHANNELS[5], rng);
        let conv7 = lateral(FEATURE_CHANNELS[4], rng);
        let conv6 = lateral(FEATURE_CHANNELS[3], rng);
        let conv5 = lateral(FEATURE_CHANNELS[2], rng);
        let conv4 = lateral(FEATURE_CHANNELS[1], rng);
        let conv3 = lateral(FEATURE_CHANNELS[0], rng);
        let crp = |depthwise: bool, rng: &mut SplitMix64| {
            CrpConfig::new(w).with_stages(self.crp_stages).with_depthwise(depthwise).init_with(rng, device)
        };
        let crp4 = crp(false, rng);
        let crp3 = crp(false, rng);
        let crp2 = crp(false, rng);
        let crp1 = crp(true, rng);
        let adapt = |rng: &mut SplitMix64| reference_conv([w, w], 1, 1, 1, false, rng, device);
        let conv_adapt4 = adapt(rng);
        let conv_adapt3 = adapt(rng);
        let conv_adapt2 = adapt(rng);
        RefineNetDecoder {
            conv3, conv4, conv5, conv6, conv7, conv8, crp1, crp2, crp3, crp4, conv_adapt2, conv_adapt3, conv_adapt4,
        }
    }
}

/// Light-Weight RefineNet decoder (reference wiring, output stride 4).
#[derive(Module, Debug)]
pub struct RefineNetDecoder {
    /// 1×1, 24 → width, on `layer3`.
    pub conv3: Conv2d,
    /// 1×1, 32 → width, on `layer4`.
    pub conv4: Conv2d,
    /// 1×1, 64 → width, on `layer5`.
    pub conv5: Conv2d,
    /// 1×1, 96 → width, on `layer6`.
    pub conv6: Conv2d,
    /// 1×1, 160 → width, on `layer7`.
    pub conv7: Conv2d,
    /// 1×1, 320 → width, on `layer8`.
    pub conv8: Conv2d,
    /// Depthwise CRP at stride 4.
    pub crp1: Crp,
    /// CRP at stride 8.
    pub crp2: Crp,
    /// CRP at stride 16.
    pub crp3: Crp,
    /// CRP at stride 32.
    pub crp4: Crp,
    /// 1×1 before upsampling to stride 4.
    pub conv_adapt2: Conv2d,
    /// 1×1 before upsampling to stride 8.
    pub conv_adapt3: Conv2d,
    /// 1×1 before upsampling to stride 16.
    pub conv_adapt4: Conv2d,
}

impl RefineNetDecoder {
    /// Encoder features → `[B, width, H/4, W/4]` (the size of `layer3`).
    pub fn forward(&self, f: EncoderFeatures) -> Tensor<4> {
        let size = |t: &Tensor<4>| {
            let d = t.dims();
            [d[2], d[3]]
        };
        // `conv_add_relu6(c, x, a)` is `relu6(c(x) + a)`; float addition commutes, so
        // `relu6(conv8(l8) + conv7(l7))` is `conv_add_relu6(conv7, l7, conv8(l8))` to the bit.
        let r = conv_add_relu6(&self.conv7, f.l7, conv2d(&self.conv8, f.l8));
        let r = resize_bilinear(conv2d(&self.conv_adapt4, self.crp4.forward(r)), size(&f.l6));
        let r = relu6(conv2d(&self.conv5, f.l5) + conv2d(&self.conv6, f.l6) + r);
        let r = resize_bilinear(conv2d(&self.conv_adapt3, self.crp3.forward(r)), size(&f.l4));
        let r = conv_add_relu6(&self.conv4, f.l4, r);
        let r = resize_bilinear(conv2d(&self.conv_adapt2, self.crp2.forward(r)), size(&f.l3));
        let r = conv_add_relu6(&self.conv3, f.l3, r);
        self.crp1.forward(r)
    }
}

impl ReferenceKeys for RefineNetDecoder {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        let k = |n: &str| crate::state::join(prefix, n);
        for (name, conv) in [
            ("conv8", &self.conv8), ("conv7", &self.conv7), ("conv6", &self.conv6),
            ("conv5", &self.conv5), ("conv4", &self.conv4), ("conv3", &self.conv3),
        ] {
            export_conv(conv, &k(name), out);
        }
        for (name, crp) in [("crp4", &self.crp4), ("crp3", &self.crp3), ("crp2", &self.crp2), ("crp1", &self.crp1)] {
            crp.export_state(&k(name), out);
        }
        for (name, conv) in [("conv_adapt4", &self.conv_adapt4), ("conv_adapt3", &self.conv_adapt3), ("conv_adapt2", &self.conv_adapt2)] {
            export_conv(conv, &k(name), out);
        }
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        let k = |n: &str| crate::state::join(prefix, n);
        self.conv8 = loader.conv(&k("conv8"), self.conv8);
        self.conv7 = loader.conv(&k("conv7"), self.conv7);
        self.conv6 = loader.conv(&k("conv6"), self.conv6);
        self.conv5 = loader.conv(&k("conv5"), self.conv5);
        self.conv4 = loader.conv(&k("conv4"), self.conv4);
        self.conv3 = loader.conv(&k("conv3"), self.conv3);
        self.crp4 = self.crp4.import_state(&k("crp4"), loader);
        self.crp3 = self.crp3.import_state(&k("crp3"), loader);
        self.crp2 = self.crp2.import_state(&k("crp2"), loader);
        self.crp1 = self.crp1.import_state(&k("crp1"), loader);
        self.conv_adapt4 = loader.conv(&k("conv_adapt4"), self.conv_adapt4);
        self.conv_adapt3 = loader.conv(&k("conv_adapt3"), self.conv_adapt3);
        self.conv_adapt2 = loader.conv(&k("conv_adapt2"), self.conv_adapt2);
        self
    }
}
