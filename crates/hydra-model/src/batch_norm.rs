//! BatchNorm with PyTorch's semantics.
//!
//! Burn's `BatchNorm` stores the biased batch variance in its running variance; PyTorch (and so
//! every official checkpoint) stores the unbiased one. This layer follows PyTorch exactly:
//! normalise with the biased batch variance, update `running_var` with the unbiased one,
//! `running = (1 - momentum) * running + momentum * batch`, and count `num_batches_tracked`.

use burn::module::{Flag, Module, Param, RunningState};
use burn::prelude::*;

use crate::state::{join, RawTensor, ReferenceKeys, StateDict, StateLoader};

/// Configuration of [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Number of channels.
    pub num_features: usize,
    /// Added to the variance before the square root.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the current batch in the running statistics (PyTorch convention).
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNormConfig {
    /// A layer with gamma 1, beta 0, running mean 0, running variance 1.
    pub fn init(&self, device: &Device) -> BatchNorm {
        let c = self.num_features;
        BatchNorm {
            gamma: Param::from_tensor(Tensor::ones([c], device)),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            num_batches_tracked: RunningState::new(Tensor::zeros([1], device)),
            training: Param::from_bool(true),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// Batch normalisation over `[B, C, H, W]` with PyTorch semantics.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale (PyTorch `weight`), `[C]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift (PyTorch `bias`), `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Running mean, `[C]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running unbiased variance, `[C]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Number of training batches seen, `[1]` (PyTorch keeps it as an int64 scalar).
    pub num_batches_tracked: RunningState<Tensor<1>>,
    /// Off when the statistics are frozen (fine-tuning with frozen BatchNorm).
    pub training: Param<Flag>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// Epsilon.
    pub epsilon: f64,
}

impl BatchNorm {
    /// Normalise `x: [B, C, H, W]` → `[B, C, H, W]`.
    ///
    /// On an autodiff device with the layer not frozen, batch statistics are used and the
    /// running statistics updated; otherwise the running statistics are used.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_activated(x, false)
    }

    /// [`BatchNorm::forward`], then ReLU6 if `relu6` (with batch statistics, on burn-flex one
    /// operation: [`crate::kernels::batch_norm_train_activated`]).
    pub fn forward_activated(&self, x: Tensor<4>, relu6: bool) -> Tensor<4> {
        if x.device().is_autodiff() && self.training.is_enabled() {
            self.forward_train(x, relu6)
        } else {
            self.forward_inference(x, relu6)
        }
    }

    /// Normalisation with the running statistics, then ReLU6 if `relu6`, in one pass over
    /// `x: [B, C, H, W]`. PyTorch's inference formula: `y = x · α + (β − μ · α)` with
    /// `α = γ / √(σ² + ε)`. Differentiable with respect to `x`, γ and β (a frozen BatchNorm
    /// inside a training network).
    pub fn forward_inference(&self, x: Tensor<4>, relu6: bool) -> Tensor<4> {
        let (alpha, shift) = self.inference_affine(&x.device());
        crate::kernels::channel_affine(x, alpha, shift, relu6)
    }

    /// `(α, β − μ · α)` per channel, `α = γ · (1 / √(σ² + ε))`: inference-mode BatchNorm as
    /// `x · α + (β − μ · α)`, each product-and-sum rounded once on the CPU, as PyTorch's CPU
    /// kernel computes it (bit-identical there).
    pub fn inference_affine(&self, device: &Device) -> (Tensor<1>, Tensor<1>) {
        let mean = self.running_mean.value().to_device(device);
        let inv_std = self.running_var.value().to_device(device).add_scalar(self.epsilon).sqrt().recip();
        let alpha = inv_std * self.gamma.val();
        let shift = crate::kernels::mul_add(mean.neg(), alpha.clone(), self.beta.val());
        (alpha, shift)
    }

    fn forward_train(&self, x: Tensor<4>, relu6: bool) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        // SyncBatchNorm: the statistics are over every replica's part of the batch.
        let n = (b * h * w * crate::kernels::sync_bn::replicas()) as f64;
        let device = x.device();
        let (output, batch_mean, batch_var) = crate::kernels::batch_norm_train_activated(x, self.gamma.val(), self.beta.val(), self.epsilon, relu6);
        // PyTorch: running_var uses the unbiased estimate n / (n - 1) * biased.
        let unbiased = if n > 1.0 { batch_var.mul_scalar(n / (n - 1.0)) } else { batch_var };
        let m = self.momentum;
        let mean = self.running_mean.value_sync().to_device(&device).mul_scalar(1.0 - m).add(batch_mean.detach().mul_scalar(m));
        let var = self.running_var.value_sync().to_device(&device).mul_scalar(1.0 - m).add(unbiased.mul_scalar(m));
        let count = self.num_batches_tracked.value_sync().to_device(&device).add_scalar(1.0);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        self.num_batches_tracked.update(count.detach());
        output
    }

    /// The running statistics `[running_mean, running_var, num_batches_tracked]`, each `[C]`
    /// (`[1]` for the count), with any pending update of this thread applied.
    pub fn running_statistics(&self) -> [Tensor<1>; 3] {
        [self.running_mean.value_sync(), self.running_var.value_sync(), self.num_batches_tracked.value_sync()]
    }

    /// Put back running statistics taken by [`BatchNorm::running_statistics`]: a forward pass
    /// run again on the same batch (the per-task passes of a multi-task gradient method) then
    /// leaves them as one pass did.
    pub fn restore_running_statistics(&self, [mean, var, count]: [Tensor<1>; 3]) {
        self.running_mean.update(mean);
        self.running_var.update(var);
        self.num_batches_tracked.update(count);
    }

    /// Number of channels.
    pub fn num_features(&self) -> usize {
        self.gamma.dims()[0]
    }
}

impl ReferenceKeys for BatchNorm {
    fn export_state(&self, prefix: &str, out: &mut StateDict) {
        out.insert(join(prefix, "weight"), RawTensor::from_tensor(self.gamma.val()));
        out.insert(join(prefix, "bias"), RawTensor::from_tensor(self.beta.val()));
        out.insert(join(prefix, "running_mean"), RawTensor::from_tensor(self.running_mean.value_sync()));
        out.insert(join(prefix, "running_var"), RawTensor::from_tensor(self.running_var.value_sync()));
        let count = RawTensor::from_tensor(self.num_batches_tracked.value_sync()).to_f32()[0];
        out.insert(join(prefix, "num_batches_tracked"), RawTensor::i64(vec![], vec![count.round() as i64]));
    }

    fn import_state(mut self, prefix: &str, loader: &mut StateLoader<'_>) -> Self {
        self.gamma = loader.param(&join(prefix, "weight"), self.gamma);
        self.beta = loader.param(&join(prefix, "bias"), self.beta);
        self.running_mean = loader.running(&join(prefix, "running_mean"), self.running_mean);
        self.running_var = loader.running(&join(prefix, "running_var"), self.running_var);
        // Optional: PyTorch before 0.4.1 did not write it, and it never changes the outputs.
        if let Some(t) = loader.optional(&join(prefix, "num_batches_tracked")) {
            let v = t.to_f32().first().copied().unwrap_or(0.0);
            let device = self.num_batches_tracked.value().device();
            self.num_batches_tracked = RunningState::new(Tensor::from_floats([v], &device));
        }
        self
    }
}
