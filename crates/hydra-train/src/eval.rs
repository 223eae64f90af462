//! Evaluation over a split: metrics accumulated over every pixel of every sample. A task
//! without a single valid pixel in the split gets no metrics (see [`EvalMetrics`]), and the
//! loss of a split where no pixel of any task counted is `None`, not a perfect 0.

use burn::prelude::*;
use hydra_data::batch::HostBatch;
use hydra_data::loader::Loader;
use hydra_data::DataError;
use hydra_model::{HydraNet, Task};

use crate::loss::{cross_entropy, depth_loss, to_label_size, DepthLoss};
use crate::error_histogram::ErrorHistogram;
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
    /// Per batch added: its loss and its depth sums (the f64 values whose totals depend on
    /// the order of additions; [`EvalState::combine_shards`] adds them in batch order).
    batch_sums: Vec<[f64; 6]>,
}

impl EvalState {
    /// Empty accumulators.
    pub fn new(spec: &EvalSpec) -> Self {
        Self { confusion: ConfusionMatrix::new(spec.num_classes), depth: DepthAccumulator::default(), loss_sum: 0.0, loss_batches: 0, loss_pixels: 0, keep: 0, samples: Vec::new(), batch_sums: Vec::new() }
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
        // This batch's depth sums, added to the split's as one subtotal per batch.
        let mut depth_acc = DepthAccumulator::default();
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
                depth_acc.add(&p, &g, [vh, vw], &spec.depth);
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
        self.depth.merge(&depth_acc);
        let [a, b, c, d, e] = depth_acc.sums();
        self.batch_sums.push([loss, a, b, c, d, e]);
        self.loss_sum += loss;
        self.loss_batches += 1;
    }

    /// The state of the whole split from each rank's state of its shard: this rank added the
    /// batches `first..first + added` of `total`, and `sum` sums a buffer element-wise over
    /// the ranks. Counts are summed; the f64 sums are rebuilt by adding every batch's
    /// subtotal in batch order, as one process adds them, so the metrics are bit-identical
    /// to one process's. Samples kept for panels stay this rank's.
    pub fn combine_shards(mut self, first: usize, total: usize, sum: impl Fn(&mut [f64])) -> Self {
        let classes = self.confusion.counts.len();
        let bins = ErrorHistogram::default_bins();
        let mut counts: Vec<f64> = vec![self.loss_batches as f64, self.loss_pixels as f64];
        counts.extend(self.depth.counts().iter().map(|&c| c as f64));
        counts.extend(self.confusion.counts.iter().map(|&c| c as f64));
        let mut hist = self.depth.errors.counts.clone();
        hist.resize(bins, 0);
        counts.extend(hist.iter().map(|&c| c as f64));
        sum(&mut counts);
        let mut rows = vec![0.0; total * 6];
        for (i, r) in self.batch_sums.iter().enumerate() {
            rows[(first + i) * 6..(first + i + 1) * 6].copy_from_slice(r);
        }
        sum(&mut rows);
        let int = |v: f64| v as u64;
        self.loss_batches = int(counts[0]) as usize;
        self.loss_pixels = int(counts[1]);
        let depth_counts = [int(counts[2]), int(counts[3]), int(counts[4]), int(counts[5])];
        for (c, v) in self.confusion.counts.iter_mut().zip(&counts[6..6 + classes]) {
            *c = int(*v);
        }
        let mut errors = ErrorHistogram { counts: counts[6 + classes..].iter().map(|&v| int(v)).collect() };
        while errors.counts.last() == Some(&0) {
            errors.counts.pop();
        }
        let (mut loss_sum, mut depth_sums) = (0.0, [0.0; 5]);
        self.batch_sums = rows.chunks(6).map(|r| <[f64; 6]>::try_from(r).expect("six")).collect();
        for r in &self.batch_sums {
            loss_sum += r[0];
            for (s, v) in depth_sums.iter_mut().zip(&r[1..]) {
                *s += v;
            }
        }
        self.loss_sum = loss_sum;
        self.depth = DepthAccumulator::from_parts(depth_sums, depth_counts, errors);
        self
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn spec() -> EvalSpec {
        EvalSpec { num_classes: 3, ignore: 255, depth: DepthEval { max_depth: 10.0, eigen_crop: false }, depth_loss: DepthLoss::L1 }
    }

    /// A state that added batches of these losses and depth sums, as `add` accumulates them.
    fn state(values: &[f64]) -> EvalState {
        let mut st = EvalState::new(&spec());
        for &v in values {
            let batch = DepthAccumulator::from_parts([v, -v, 2.0 * v, v, v], [1, 1, 0, 0], ErrorHistogram::default());
            st.depth.merge(&batch);
            st.confusion.counts[(v.to_bits() % 9) as usize] += 1;
            st.batch_sums.push([v, v, -v, 2.0 * v, v, v]);
            st.loss_sum += v;
            st.loss_batches += 1;
            st.loss_pixels += 1;
        }
        st
    }

    #[test]
    fn combined_shards_add_the_batches_in_one_process_order() {
        // Sums whose value depends on the order of the additions.
        let values = [1e16, 1.0, 1.0, -1e16, 3.0, 0.1, 0.7];
        let whole = state(&values);
        let (a, b) = (state(&values[..3]), state(&values[3..]));
        // Rank 1's buffers, recorded as it combines; rank 0's sum adds them.
        let recorded = RefCell::new(Vec::new());
        let b = b.combine_shards(3, values.len(), |v| recorded.borrow_mut().push(v.to_vec()));
        let calls = RefCell::new(0);
        let add_other = |v: &mut [f64]| {
            let k = *calls.borrow();
            *calls.borrow_mut() += 1;
            for (x, y) in v.iter_mut().zip(&recorded.borrow()[k]) {
                *x += y;
            }
        };
        let a = a.combine_shards(0, values.len(), add_other);
        let naive = state(&values[..3]).loss_sum + state(&values[3..]).loss_sum;
        assert_ne!(naive, whole.loss_sum, "the values are order-sensitive");
        assert_eq!(a.loss_sum.to_bits(), whole.loss_sum.to_bits());
        assert_eq!(a.depth, whole.depth);
        assert_eq!(a.confusion.counts, whole.confusion.counts);
        assert_eq!((a.loss_batches, a.loss_pixels), (whole.loss_batches, whole.loss_pixels));
        assert_eq!(a.metrics(&[Task::Segmentation, Task::Depth]), whole.metrics(&[Task::Segmentation, Task::Depth]));
        // Rank 1 alone (its sum did not add rank 0's part) holds only its own batches.
        assert_eq!(b.loss_batches, 4);
    }
}
