//! Task losses on network outputs upsampled (bilinear) to the label size, as the reference
//! training does. Every loss averages over valid pixels only and is exactly zero, never NaN,
//! when a batch has no valid pixel for its task.

use burn::prelude::*;
use hydra_model::{HydraNet, Task};
use burn::tensor::Int;
use hydra_model::resize::resize_bilinear;

/// Depth loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthLoss {
    /// Mean |prediction − target| over pixels with a measurement.
    L1,
    /// Reverse Huber as in the authors' library (DenseTorch `InvHuberLoss`): prediction
    /// through ReLU, `c = 0.2 · max |e|` over measured pixels, `|e|` where `|e| ≤ c`, else
    /// `(e² + c²) / 2c`, averaged over all pixels (unmeasured ones contribute 0).
    BerHu,
}

/// `x: [B, C, h, w]` → `[B, C, H, W]` where `size = [H, W]` (no-op when equal).
pub fn to_label_size(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    resize_bilinear(x, size)
}

fn safe_mean(sum: Tensor<1>, count: Tensor<1>) -> Tensor<1> {
    sum / count.clamp_min(1.0)
}

/// Cross-entropy over `logits: [B, C, H, W]` and `labels: [B, H, W]`, pixels labelled
/// `ignore` excluded: `−Σ log softmax(logits)[label] / #valid` (0 when nothing is valid).
pub fn cross_entropy(logits: Tensor<4>, labels: Tensor<3, Int>, ignore: i64) -> Tensor<1> {
    hydra_model::kernels::cross_entropy(logits, labels, ignore)
}

/// Depth loss of `pred: [B, 1, H, W]` against `target: [B, H, W]` (0 = no measurement).
pub fn depth_loss(pred: Tensor<4>, target: Tensor<3>, kind: DepthLoss) -> Tensor<1> {
    let pred = pred.squeeze_dim::<3>(1);
    let valid = target.clone().greater_elem(0.0).float();
    match kind {
        DepthLoss::L1 => safe_mean(((pred - target).abs() * valid.clone()).sum(), valid.sum()),
        DepthLoss::BerHu => {
            let n = valid.dims().iter().product::<usize>() as f64;
            let diff = (burn::tensor::activation::relu(pred) - target) * valid;
            let err = diff.clone().abs();
            let c = err.clone().max().mul_scalar(0.2);
            // Where c = 0 every error is 0: the loss is 0 (the authors' code gives NaN there).
            let c_safe = c.clone().clamp_min(1e-12);
            let quad = (diff.powf_scalar(2.0) + c_safe.clone().powf_scalar(2.0).unsqueeze::<3>()) / c_safe.clone().mul_scalar(2.0).unsqueeze::<3>();
            let small = err.clone().lower_equal(c.unsqueeze::<3>());
            let per_pixel = err.mask_where(small.bool_not(), quad);
            per_pixel.sum().div_scalar(n)
        }
    }
}

/// Cosine loss `1 − cos(pred, target)` of normals `[B, 3, H, W]`, averaged over pixels whose
/// target is non-zero.
pub fn normal_loss(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let valid = target.clone().powf_scalar(2.0).sum_dim(1).greater_elem(1e-12).float(); // [B,1,H,W]
    let norm = pred.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-8);
    let cos = (pred / norm * target).sum_dim(1);
    safe_mean(((cos.neg() + 1.0) * valid.clone()).sum(), valid.sum())
}

/// The per-task losses of one batch, in task order (zero for a task the batch lacks).
pub fn task_losses(net: &HydraNet, batch: hydra_data::batch::Batch, tasks: &[Task], ignore: i64, depth: DepthLoss) -> Vec<Tensor<1>> {
    BatchLosses { batch, tasks, ignore, depth, replica_scale: None }.all(net)
}

/// One batch on the training device and how its task losses are computed: from one forward
/// pass ([`BatchLosses::all`]), or from the shared representation, one head at a time (the
/// per-task passes of the multi-task gradient methods).
#[derive(Debug, Clone)]
pub struct BatchLosses<'a> {
    pub batch: hydra_data::batch::Batch,
    /// The configured tasks, in task order.
    pub tasks: &'a [Task],
    pub ignore: i64,
    pub depth: DepthLoss,
    /// Data parallelism: each task's loss times this rank's factor, so that the ranks'
    /// average is the whole batch's loss (`Trainer::replica_scale`); `None` in one process.
    pub replica_scale: Option<Vec<f64>>,
}

impl BatchLosses<'_> {
    /// Every task's loss `[1]` (task order) from one forward pass of `net`.
    pub fn all(&self, net: &HydraNet) -> Vec<Tensor<1>> {
        let features = self.representation(net);
        (0..self.tasks.len()).map(|t| self.head_loss(net, features.clone(), t)).collect()
    }

    /// The shared representation: the decoder's output `[B, decoder_width, ⌈H/4⌉', ⌈W/4⌉']`
    /// for the batch's images `[B, 3, H, W]`, the input of every task head. Everything before
    /// it (encoder and decoder) is shared by all tasks; each head reads it alone.
    pub fn representation(&self, net: &HydraNet) -> Tensor<4> {
        net.decoder.forward(net.encoder.forward(self.batch.images.clone()))
    }

    /// The loss `[1]` of task `t` (an index into `tasks`) from the representation `features`
    /// `[B, decoder_width, h, w]`: its head, then its loss at the label size (zero when the
    /// batch has no target for it).
    pub fn head_loss(&self, net: &HydraNet, features: Tensor<4>, t: usize) -> Tensor<1> {
        let task = self.tasks[t];
        let device = self.batch.images.device();
        let [_, _, h, w] = self.batch.images.dims();
        let pred = net.head(task).expect("network has every configured task").forward(features);
        let zero = || pred.clone().sum().mul_scalar(0.0);
        let b = &self.batch;
        let loss = match task {
            Task::Segmentation => match b.labels.clone() {
                Some(l) => hydra_model::kernels::upsampled_cross_entropy(pred, l, self.ignore),
                None => zero(),
            },
            Task::Depth => match b.depth.clone() {
                Some(d) => depth_loss(to_label_size(pred, [h, w]), d, self.depth),
                None => zero(),
            },
            Task::Normals => match b.normals.clone() {
                Some(n) => normal_loss(to_label_size(pred, [h, w]), n),
                None => zero(),
            },
        }
        .to_device(&device);
        match self.replica_scale.as_ref().map(|s| s[t]) {
            Some(f) if f != 1.0 => loss.mul_scalar(f),
            _ => loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    #[test]
    fn cross_entropy_hand_values() {
        let d = Device::flex();
        // 2 classes, 3 pixels: logits (0, ln 3) → p(1) = 0.75; (0, 0) → 0.5; third ignored.
        let l3 = (3f32).ln();
        let logits = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 0.0, 5.0, l3, 0.0, -5.0], [1, 2, 1, 3]), &d);
        let labels = Tensor::<3, Int>::from_data(TensorData::new(vec![1i64, 0, 255], [1, 1, 3]), &d);
        let expected = -(0.75f32.ln() + 0.5f32.ln()) / 2.0;
        assert!((scalar(cross_entropy(logits, labels, 255)) - expected).abs() < 1e-6);
    }

    #[test]
    fn losses_are_zero_not_nan_without_valid_pixels() {
        let d = Device::flex();
        let logits = Tensor::<4>::ones([2, 3, 2, 2], &d);
        let labels = Tensor::<3, Int>::full([2, 2, 2], 255, &d);
        assert_eq!(scalar(cross_entropy(logits, labels, 255)), 0.0);
        let pred = Tensor::<4>::ones([2, 1, 2, 2], &d);
        let none = Tensor::<3>::zeros([2, 2, 2], &d);
        assert_eq!(scalar(depth_loss(pred.clone(), none.clone(), DepthLoss::L1)), 0.0);
        assert_eq!(scalar(depth_loss(pred, none, DepthLoss::BerHu)), 0.0);
        let n = Tensor::<4>::ones([1, 3, 2, 2], &d);
        assert_eq!(scalar(normal_loss(n, Tensor::zeros([1, 3, 2, 2], &d))), 0.0);
    }

    #[test]
    fn masked_l1_hand_values() {
        let d = Device::flex();
        let pred = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]), &d);
        let target = Tensor::<3>::from_data(TensorData::new(vec![1.5f32, 0.0, 1.0, 4.0], [1, 2, 2]), &d);
        // |1 − 1.5| + |3 − 1| + |4 − 4| over 3 valid pixels.
        assert!((scalar(depth_loss(pred, target, DepthLoss::L1)) - 2.5 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn berhu_hand_values() {
        let d = Device::flex();
        // errors (after ReLU): |0 − 1| = 1 (pred −2 → 0), |2 − 1| = 1... use distinct values:
        // pred 1.1, 2, 6, 9 vs target 1, 1, 1, 0 (last unmeasured).
        let pred = Tensor::<4>::from_data(TensorData::new(vec![1.1f32, 2.0, 6.0, 9.0], [1, 1, 2, 2]), &d);
        let target = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0], [1, 2, 2]), &d);
        // e = 0.1, 1, 5; c = 1; |e| ≤ c for 0.1 and 1; (25 + 1) / 2 = 13 for 5; mean over 4 pixels.
        let expected = (0.1 + 1.0 + 13.0) / 4.0;
        assert!((scalar(depth_loss(pred, target, DepthLoss::BerHu)) - expected).abs() < 1e-5);
    }

    #[test]
    fn cosine_loss_hand_values() {
        let d = Device::flex();
        // Pixel 0: same direction (scaled) → 0; pixel 1: opposite → 2; pixel 2: unknown.
        let pred = Tensor::<4>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -3.0, 0.0], [1, 3, 1, 3]), &d);
        let target = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [1, 3, 1, 3]), &d);
        assert!((scalar(normal_loss(pred, target)) - 1.0).abs() < 1e-6);
        // Alone, the scaled prediction in the target's direction costs nothing: the loss sees
        // directions only (a mutant dividing by the norm differently went unnoticed above,
        // where its two errors cancelled).
        let pred = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 2.0, 0.0], [1, 3, 1, 1]), &d);
        let target = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 1.0, 0.0], [1, 3, 1, 1]), &d);
        assert!(scalar(normal_loss(pred, target)).abs() < 1e-6);
    }
}
