//! Evaluation over a split: metrics accumulated over every pixel of every sample. A task
//! without a single valid pixel in the split gets no metrics (see [`EvalMetrics`]), and the
//! loss of a split where no pixel of any task counted is `None`, not a perfect 0.

use burn::prelude::*;
use hydra_data::batch::HostBatch;
use hydra_data::loader::Loader;
use hydra_data::DataError;
use hydra_model::{HydraNet, Task};

use crate::loss::{cross_entropy, depth_loss, to_label_size, DepthLoss};
use crate::panels::PanelSample;
use crate::metrics::{ConfusionMatrix, DepthAccumulator, DepthEval, EvalDetails, EvalMetrics};

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    pub num_classes: usize,
    pub ignore: i64,
    pub depth: DepthEval,
    pub depth_loss: DepthLoss,
}

fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32")
}

/// Accumulates one split.
#[derive(Debug, Clone)]
pub struct EvalState {
    pub confusion: ConfusionMatrix,
    pub depth: DepthAccumulator,
    loss_sum: f64,
    loss_batches: usize,
    /// Pixels that entered a loss: labelled (segmentation) or measured (depth).
    loss_pixels: u64,
    /// How many samples to keep for panels, and those kept.
    keep: usize,
    samples: Vec<PanelSample>,
}

impl EvalState {
    /// Empty accumulators.
    pub fn new(spec: &EvalSpec) -> Self {
        Self { confusion: ConfusionMatrix::new(spec.num_classes), depth: DepthAccumulator::default(), loss_sum: 0.0, loss_batches: 0, loss_pixels: 0, keep: 0, samples: Vec::new() }
    }

    /// Empty accumulators that also keep the first `k` samples added, with the network's
    /// predictions, for prediction panels.
    pub fn with_samples(spec: &EvalSpec, k: usize) -> Self {
        Self { keep: k, ..Self::new(spec) }
    }

    /// The samples kept (see [`EvalState::with_samples`]), in the order added.
    pub fn samples(&self) -> &[PanelSample] {
        &self.samples
    }

    /// Add one batch evaluated by `net` (inference mode) on `device`.
    pub fn add(&mut self, net: &HydraNet, device: &Device, batch: &HostBatch, spec: &EvalSpec) {
        let b = batch.to_device(device);
        let [h, w] = batch.size;
        let out = net.forward(b.images);
        let mut loss = 0.0;
        let mut seg_pred = None;
        let mut depth_pred = None;
        if let (Some(logits), Some(labels)) = (out.get(Task::Segmentation), b.labels) {
            let up = to_label_size(logits.clone(), [h, w]);
            loss += cross_entropy(up.clone(), labels, spec.ignore).into_scalar::<f32>() as f64;
            let pred: Vec<i64> = up.argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().expect("int");
            let gt = batch.labels.as_ref().expect("labels");
            self.loss_pixels += gt.iter().filter(|&&g| g != spec.ignore).count() as u64;
            for i in 0..batch.len {
                let [vh, vw] = batch.valid_size[i];
                for y in 0..vh {
                    let o = i * h * w + y * w;
                    self.confusion.add(&gt[o..o + vw], &pred[o..o + vw], spec.ignore);
                }
            }
            seg_pred = Some(pred);
        }
        if let (Some(d), Some(target)) = (out.get(Task::Depth), b.depth) {
            let up = to_label_size(d.clone(), [h, w]);
            loss += depth_loss(up.clone(), target, spec.depth_loss).into_scalar::<f32>() as f64;
            let pred = host_f32(up);
            let gt = batch.depth.as_ref().expect("depth");
            self.loss_pixels += gt.iter().filter(|&&g| g > 0.0).count() as u64;
            for i in 0..batch.len {
                let [vh, vw] = batch.valid_size[i];
                let mut p = Vec::with_capacity(vh * vw);
                let mut g = Vec::with_capacity(vh * vw);
                for y in 0..vh {
                    let o = i * h * w + y * w;
                    p.extend_from_slice(&pred[o..o + vw]);
                    g.extend_from_slice(&gt[o..o + vw]);
                }
                self.depth.add(&p, &g, [vh, vw], &spec.depth);
            }
            depth_pred = Some(pred);
        }
        for i in 0..batch.len {
            if self.samples.len() >= self.keep {
                break;
            }
            let gt_labels = batch.labels.as_deref().filter(|_| batch.has_label[i]);
            let gt_depth = batch.depth.as_deref().filter(|_| batch.has_depth[i]);
            self.samples.push(PanelSample::from_batch(batch, i, gt_labels.zip(seg_pred.as_deref()), gt_depth.zip(depth_pred.as_deref())));
        }
        self.loss_sum += loss;
        self.loss_batches += 1;
    }

    /// The metrics of everything added, for the network's `tasks`. A task with no valid
    /// pixel is `None` and named in `no_valid_pixels`.
    pub fn metrics(&self, tasks: &[Task]) -> EvalMetrics {
        let mut no_valid_pixels = Vec::new();
        let mut evaluated = |task: Task, present: bool| {
            if tasks.contains(&task) && !present {
                no_valid_pixels.push(task.key().to_string());
            }
            tasks.contains(&task)
        };
        let segmentation = self.confusion.metrics();
        let segmentation = if evaluated(Task::Segmentation, segmentation.is_some()) { segmentation } else { None };
        let depth = self.depth.metrics();
        let depth = if evaluated(Task::Depth, depth.is_some()) { depth } else { None };
        let (segmentation_present, depth_present) = (segmentation.is_some(), depth.is_some());
        EvalMetrics {
            segmentation,
            depth,
            loss: (self.loss_batches > 0 && self.loss_pixels > 0).then(|| self.loss_sum / self.loss_batches as f64),
            no_valid_pixels,
            details: EvalDetails {
                confusion: segmentation_present.then(|| self.confusion.clone()),
                depth_errors: depth_present.then(|| self.depth.errors.clone()),
            },
        }
    }
}

/// Evaluate `net` (inference mode) over every batch of `loader`.
pub fn evaluate(net: &HydraNet, device: &Device, loader: &Loader, spec: &EvalSpec, mut progress: impl FnMut(usize, usize)) -> Result<EvalMetrics, DataError> {
    let mut st = EvalState::new(spec);
    let total = loader.batches_per_epoch();
    for (k, batch) in loader.epoch(0, 0).enumerate() {
        st.add(net, device, &batch?, spec);
        progress(k + 1, total);
    }
    Ok(st.metrics(&net.tasks()))
}
