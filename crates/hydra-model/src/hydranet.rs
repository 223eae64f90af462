//! HydraNet: MobileNetV2 encoder + Light-Weight RefineNet decoder + one head per task.

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decoder::{RefineNetDecoder, RefineNetDecoderConfig};
use crate::encoder::{MobileNetV2, MobileNetV2Config};
use crate::head::{TaskHead, TaskHeadConfig};
use crate::init::SplitMix64;
use crate::state::{ReferenceKeys, StateDict, StateLoader};

/// A dense prediction task of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Semantic segmentation: `num_classes` logits per pixel.
    Segmentation,
    /// Depth: one value per pixel, in metres.
    Depth,
    /// Surface normals: 3 values per pixel (the third task of the official release).
    Normals,
}

impl Task {
    /// All tasks in key order.
    pub const ALL: [Task; 3] = [Task::Segmentation, Task::Depth, Task::Normals];

    /// The name used in the reference keys (`segm`, `depth`, `normal`).
    pub fn key(self) -> &'static str {
        match self {
            Task::Segmentation => "segm",
            Task::Depth => "depth",
            Task::Normals => "normal",
        }
    }

    /// Parse a name: `segm`/`segmentation`, `depth`, `normal`/`normals`.
    pub fn parse(s: &str) -> Option<Task> {
        match s {
            "segm" | "segmentation" => Some(Task::Segmentation),
            "depth" => Some(Task::Depth),
            "normal" | "normals" => Some(Task::Normals),
            _ => None,
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Segmentation => "segmentation",
            Task::Depth => "depth",
            Task::Normals => "normals",
        })
    }
}

/// How convolution weights are drawn when the network is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// The reference: N(0, 0.01²) for every convolution (the official code, whose encoder
    /// then loads ImageNet weights).
    #[default]
    Reference,
    /// He/Kaiming normal, fan-out mode (torchvision's MobileNetV2 initialisation):
    /// N(0, 2 / (out_channels · k²)) for every convolution.
    Kaiming,
    /// For training from scratch: Kaiming for the encoder and the decoder's lateral and
    /// adaptation convolutions; the CRP stages start at zero (each CRP block starts as the
    /// identity) and the heads' depthwise `pre_*` scales at one, so that no ReLU6 after them
    /// starts dead; the heads' last convolutions N(0, 0.01²).
    Scratch,
}

/// Configuration of [`HydraNet`].
#[derive(Config, Debug, PartialEq)]
pub struct HydraNetConfig {
    /// Classes of the segmentation head (ignored when segmentation is not a task).
    pub num_classes: usize,
    /// The tasks, each with its own head.
    #[config(default = "vec![Task::Segmentation, Task::Depth]")]
    pub tasks: Vec<Task>,
    /// Stages per CRP block.
    #[config(default = 4)]
    pub crp_stages: usize,
    /// Decoder width.
    #[config(default = 256)]
    pub decoder_width: usize,
    /// Seed of the weight initialisation.
    #[config(default = 0)]
    pub seed: u64,
    /// How convolution weights are drawn.
    #[config(default = "InitScheme::Reference")]
    pub init: InitScheme,
}

impl HydraNetConfig {
    /// Check the values a user can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.tasks.is_empty() {
            return Err("tasks: at least one task is needed (segm, depth, normal)".into());
        }
        let mut seen = self.tasks.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.tasks.len() {
            return Err(format!("tasks: each task may appear once, got {:?}", self.tasks));
        }
        if self.has(Task::Segmentation) && self.num_classes < 2 {
            return Err(format!("num_classes: must be at least 2, got {}", self.num_classes));
        }
        if self.crp_stages == 0 || self.crp_stages > 16 {
            return Err(format!("crp_stages: must be in 1..=16, got {}", self.crp_stages));
        }
        if self.decoder_width == 0 || self.decoder_width > 4096 {
            return Err(format!("decoder_width: must be in 1..=4096, got {}", self.decoder_width));
        }
        Ok(())
    }

    /// Whether `task` is on.
    pub fn has(&self, task: Task) -> bool {
        self.tasks.contains(&task)
    }

    /// Output channels of `task`'s head.
    pub fn outputs(&self, task: Task) -> usize {
        match task {
            Task::Segmentation => self.num_classes,
            Task::Depth => 1,
            Task::Normals => 3,
        }
    }

    /// Build the network with weights drawn from `self.seed` (reference initialisation:
    /// convolutions N(0, 0.01²), biases 0, BatchNorm γ = 1, β = 0).
    ///
    /// Panics on an invalid configuration; call [`HydraNetConfig::validate`] first for user input.
    pub fn init(&self, device: &Device) -> HydraNet {
        if let Err(e) = self.validate() {
            panic!("invalid HydraNetConfig: {e}");
        }
        let mut rng = SplitMix64::new(self.seed);
        let encoder = MobileNetV2Config::new().init_with(&mut rng, device);
        let decoder = RefineNetDecoderConfig::new()
            .with_width(self.decoder_width)
            .with_crp_stages(self.crp_stages)
            .init_with(&mut rng, device);
        let head = |task: Task, rng: &mut SplitMix64| {
            self.has(task).then(|| TaskHeadConfig::new(self.decoder_width, self.outputs(task)).init_with(rng, device))
        };
        let segm = head(Task::Segmentation, &mut rng);
        let depth = head(Task::Depth, &mut rng);
        let normal = head(Task::Normals, &mut rng);
        let net = HydraNet { encoder, decoder, segm, depth, normal };
        match self.init {
            InitScheme::Reference => net,
            scheme => {
                // Redraw convolution weights (4-D tensors) by the scheme.
                let mut sd = StateDict::new();
                for (k, t) in net.state_dict().iter() {
                    if t.shape.len() == 4 {
                        let n = t.numel();
                        let fan_out = t.shape[0] * t.shape[2] * t.shape[3];
                        let kaiming = (2.0 / fan_out as f64).sqrt();
                        let values = match scheme {
                            InitScheme::Scratch if k.starts_with("crp") => vec![0.0; n],
                            InitScheme::Scratch if k.starts_with("pre_") => vec![1.0; n],
                            InitScheme::Scratch if Task::ALL.iter().any(|t| k == format!("{}.weight", t.key())) => {
                                crate::init::normal_vec(&mut rng, n, crate::conv_bn::INIT_STD)
                            }
                            _ => crate::init::normal_vec(&mut rng, n, kaiming),
                        };
                        sd.insert(k, crate::state::RawTensor::f32(t.shape.clone(), values));
                    } else {
                        sd.insert(k, t.clone());
                    }
                }
                let mut loader = StateLoader::new(&sd);
                let net = net.import_state("", &mut loader);
                debug_assert!(loader.finish().issues.is_empty());
                net
            }
        }
    }
}

/// The outputs of [`HydraNet::forward`], at a quarter of the input size (rounded up).
#[derive(Debug, Clone)]
pub struct HydraOutput {
    /// Segmentation logits `[B, num_classes, h, w]`.
    pub segm: Option<Tensor<4>>,
    /// Depth `[B, 1, h, w]` (raw: no activation, as in the reference).
    pub depth: Option<Tensor<4>>,
    /// Surface normals `[B, 3, h, w]` (raw, not normalised).
    pub normal: Option<Tensor<4>>,
}

impl HydraOutput {
    /// The output of `task`, if the network has it.
    pub fn get(&self, task: Task) -> Option<&Tensor<4>> {
        match task {
            Task::Segmentation => self.segm.as_ref(),
            Task::Depth => self.depth.as_ref(),
            Task::Normals => self.normal.as_ref(),
        }
    }
}

/// The multi-task Light-Weight RefineNet.
#[derive(Module, Debug)]
pub struct HydraNet {
    /// MobileNetV2 encoder (`layer1`..`layer8`).
    pub encoder: MobileNetV2,
    /// RefineNet decoder (`conv3`..`conv8`, `crp1`..`crp4`, `conv_adapt2`..`conv_adapt4`).
    pub decoder: RefineNetDecoder,
    /// Segmentation head (`pre_segm`, `segm`).
    pub segm: Option<TaskHead>,
    /// Depth head (`pre_depth`, `depth`).
    pub depth: Option<TaskHead>,
    /// Surface-normal head (`pre_normal`, `normal`).
    pub normal: Option<TaskHead>,
}

impl HydraNet {
    /// `[B, 3, H, W]` (ImageNet-normalised RGB) → per-task outputs `[B, C_t, ⌈H/4⌉', ⌈W/4⌉']`
    /// where the size is that of `layer3` (e.g. 480×640 → 120×160, 370×1226 → 93×307).
    pub fn forward(&self, x: Tensor<4>) -> HydraOutput {
        let features = self.decoder.forward(self.encoder.forward(x));
        let run = |h: &Option<TaskHead>| h.as_ref().map(|h| h.forward(features.clone()));
        HydraOutput { segm: run(&self.segm), depth: run(&self.depth), normal: run(&self.normal) }
    }

    /// An inference copy with BatchNorm folded into the convolutions (on a non-autodiff
    /// device). Same outputs as the inference-mode network up to float rounding, one pass less
    /// per layer. Measured on the PyTorch fixture it moves the output from PyTorch's by 4.2e-4
    /// instead of 2.2e-5 × max |logit| (the unfolded layers compute PyTorch's arithmetic) for
    /// a few % of speed, so `hydra predict` and `eval`
    /// do not use it; `hydra bench --fold-bn` measures it. It exports to the reference layout
    /// exactly (a folded layer is a BatchNorm with unit statistics) but must not be trained.
    pub fn fold_batch_norm(&self) -> HydraNet {
        let net = self.valid();
        HydraNet { encoder: net.encoder.fold(), ..net }
    }

    /// The tasks this network predicts, in key order.
    pub fn tasks(&self) -> Vec<Task> {
        Task::ALL.into_iter().filter(|&t| self.head(t).is_some()).collect()
    }

    /// The head of `task`.
    pub fn head(&self, task: Task) -> Option<&TaskHead> {
        match task {
            Task::Segmentation => self.segm.as_ref(),
            Task::Depth => self.depth.as_ref(),
            Task::Normals => self.normal.as_ref(),
        }
    }

    /// The configuration this network has (seed and init scheme are not described by it).
    pub fn config(&self) -> HydraNetConfig {
        HydraNetConfig::new(self.segm.as_ref().map(|h| h.outputs()).unwrap_or(0))
            .with_tasks(self.tasks())
            .with_crp_stages(self.decoder.crp1.convs.len())
            .with_decoder_width(self.decoder.conv3.weight.dims()[0])
    }

    /// All tensors in the reference key layout (BatchNorm buffers included), in the order
    /// of PyTorch's `state_dict()`.
    pub fn state_dict(&self) -> StateDict {
        let mut out = StateDict::new();
        self.export_state("", &mut out);
        out
    }

    /// Number of trainable parameters (PyTorch's `sum(p.numel() for p in parameters())`).
    pub fn parameter_count(&self) -> usize {
        self.state_dict()
            .iter()
            .filter(|(k, _)| !crate::state::is_buffer_key(k))
            .map(|(_, t)| t.numel())
            .sum()
    }
}

impl ReferenceKeys for HydraNet {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        self.encoder.export_state(prefix, out);
        self.decoder.export_state(prefix, out);
        // The reference registers the depth head before the segmentation head.
        for task in [Task::Depth, Task::Segmentation, Task::Normals] {
            if let Some(h) = self.head(task) {
                h.export_named(&crate::state::join(prefix, task.key()), out);
            }
        }
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        self.encoder = self.encoder.import_state(prefix, loader);
        self.decoder = self.decoder.import_state(prefix, loader);
        let k = |t: Task| crate::state::join(prefix, t.key());
        self.segm = self.segm.map(|h| h.import_named(&k(Task::Segmentation), loader));
        self.depth = self.depth.map(|h| h.import_named(&k(Task::Depth), loader));
        self.normal = self.normal.map(|h| h.import_named(&k(Task::Normals), loader));
        self
    }
}
