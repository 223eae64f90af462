//! Whether the training device computes training's long reductions right, checked before
//! the first step at each batch shape.
//!
//! The longest sums in training run over every output position of a layer: BatchNorm's batch
//! statistics and its γ/β gradients (`B · h · w` values per channel) and the convolutions'
//! weight gradients (`B · h · w` products per weight), largest at the encoder's finest level,
//! stride 2: 153 600 values at batch 2 × 480×640. On burn-flex hydra's kernels compute them;
//! on the other backends Burn's portable kernels do, and a driver can get them wrong without
//! any error. Measured: Mesa's lavapipe (software Vulkan) ends every shader loop after 65 535
//! iterations, so its long sums stop part-way (rows of 131 072 values summed to 65 469, 65 452,
//! 0 and 0 instead of 65 470 each; the stem's weight gradient at 480×640 came out at 28 % of
//! its value); a training step there moved the stem's weights as if by a different gradient.
//! Such a device is refused with the reason instead of training on wrong numbers.
//!
//! The check runs, on inputs of ones of each shape the batch gives, the BatchNorm hydra trains
//! with (forward and backward: the mean must be 1, the variance 0 and β's gradient of the
//! summed output `B · h · w`) and the backward of each stride-2-level convolution of the
//! encoder (each weight's gradient of the summed output = the number of output positions whose
//! window puts that tap inside the image), all exact in f32 up to 2^24 values. Reductions at
//! coarser levels are at most a quarter as long; they are not checked.

use std::collections::HashSet;

use burn::nn::conv::Conv2d;
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use hydra_model::encoder::MobileNetV2;

/// A device computed one of training's long reductions wrongly.
#[derive(Debug, thiserror::Error)]
#[error(
    "the training device computes long sums wrongly: {what} for a [B, C, h, w] = {shape:?} input came out {got} instead \
     of {want}, so training on batches of {} × {}×{} would go wrong silently. Known cause: Mesa's lavapipe (software \
     Vulkan) ends every shader loop after 65 535 iterations. Train with a smaller batch size or crop, or with --backend flex",
    batch[0], batch[1], batch[2]
)]
pub struct InexactReduction {
    /// What was wrong.
    pub what: String,
    /// The input shape that showed it.
    pub shape: [usize; 4],
    /// The batch `[B, H, W]` it came from.
    pub batch: [usize; 3],
    /// The worst value.
    pub got: f64,
    /// What it should be.
    pub want: f64,
}

/// What training-mode BatchNorm computes for an input of ones, per channel: the mean, the
/// biased variance, and β's gradient when the sum of the outputs is backpropagated.
#[derive(Debug, Clone)]
pub struct OnesStatistics {
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    pub beta_grad: Vec<f32>,
}

/// One probe: what it computes, on which input shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Probe {
    BatchNorm([usize; 4]),
    /// The convolution of encoder layer `index` on `input`.
    Conv { index: usize, input: [usize; 4] },
}

/// Remembers the batch shapes checked and the probes passed, so that each runs once per
/// process and a training step at a known shape costs one lookup.
#[derive(Debug, Default)]
pub struct ReductionCheck {
    batches: HashSet<[usize; 3]>,
    passed: HashSet<Probe>,
}

impl ReductionCheck {
    /// Check on `device` (an autodiff device) the long reductions of a training step of the
    /// network with `encoder` on a batch `[B, H, W]`, those not checked before.
    pub fn check(&mut self, encoder: &MobileNetV2, device: &Device, batch: [usize; 3]) -> Result<(), InexactReduction> {
        if self.batches.contains(&batch) {
            return Ok(());
        }
        self.check_batch_norm(encoder.batch_norm_input_shapes(batch), batch, |shape| statistics_of_ones(device, shape))?;
        let layers = encoder.layers(batch);
        let finest = layers[0].output[2];
        for (index, l) in layers.iter().enumerate().filter(|(_, l)| l.output[2] == finest) {
            let probe = Probe::Conv { index, input: l.input };
            if self.passed.contains(&probe) {
                continue;
            }
            let got = weight_gradient_of_ones(&l.layer.conv, device, l.input);
            let want = expected_weight_gradient(&l.layer.conv, l.input);
            let what = format!("the weight gradient of convolution {} (output positions per weight)", l.name);
            let positions = (l.output[0] * l.output[2] * l.output[3]) as f64;
            compare(&what, &got, &want, Summed { count: positions, per_value: 1.0 }, l.input, batch)?;
            self.passed.insert(probe);
        }
        self.batches.insert(batch);
        Ok(())
    }

    /// How many distinct probes have passed.
    pub fn probes_passed(&self) -> usize {
        self.passed.len()
    }

    /// The BatchNorm part of [`Self::check`], with the statistics computed by `run`.
    pub fn check_batch_norm(
        &mut self,
        shapes: Vec<[usize; 4]>,
        batch: [usize; 3],
        mut run: impl FnMut([usize; 4]) -> OnesStatistics,
    ) -> Result<(), InexactReduction> {
        for shape in shapes {
            if self.passed.contains(&Probe::BatchNorm(shape)) {
                continue;
            }
            let n = (shape[0] * shape[2] * shape[3]) as f64;
            let s = run(shape);
            let c = shape[1];
            let (means, sums) = (Summed { count: n, per_value: 1.0 / n }, Summed { count: n, per_value: 1.0 });
            compare("BatchNorm's batch mean", &s.mean, &vec![1.0; c], means, shape, batch)?;
            compare("BatchNorm's batch variance", &s.variance, &vec![0.0; c], means, shape, batch)?;
            compare("BatchNorm's gradient of β (values per channel)", &s.beta_grad, &vec![n as f32; c], sums, shape, batch)?;
            self.passed.insert(Probe::BatchNorm(shape));
        }
        Ok(())
    }
}

/// What a compared quantity sums: `count` values, each worth `per_value` in its units (1 for
/// a sum of ones, 1 / count for a mean).
#[derive(Debug, Clone, Copy)]
struct Summed {
    count: f64,
    per_value: f64,
}

/// `got` must equal `want` up to half a summed value (one rounding per 2^22 values beyond
/// 2^24): a sum that dropped even one value fails.
fn compare(what: &str, got: &[f32], want: &[f32], summed: Summed, shape: [usize; 4], batch: [usize; 3]) -> Result<(), InexactReduction> {
    let slack = (summed.count / 4_194_304.0).max(0.5);
    let mut worst: Option<(f64, f64, f64)> = None; // (deviation in values, got, want)
    for (i, w) in want.iter().enumerate() {
        let g = got.get(i).map_or(f64::NAN, |&g| g as f64);
        let w = *w as f64;
        let deviation = if g.is_nan() { f64::INFINITY } else { (g - w).abs() / summed.per_value };
        if worst.is_none_or(|(d, _, _)| deviation > d) {
            worst = Some((deviation, g, w));
        }
    }
    match worst {
        Some((d, got, want)) if d > slack => Err(InexactReduction { what: what.into(), shape, batch, got, want }),
        _ => Ok(()),
    }
}

/// Training-mode BatchNorm (γ = 1, β = 0) forward and backward on ones of `shape` on `device`
/// (an autodiff device), through the same kernels as the network's layers.
pub fn statistics_of_ones(device: &Device, shape: [usize; 4]) -> OnesStatistics {
    let c = shape[1];
    let gamma = Tensor::<1>::ones([c], device).require_grad();
    let beta = Tensor::<1>::zeros([c], device).require_grad();
    let (y, mean, variance) = hydra_model::kernels::batch_norm_train(ones(device, shape), gamma, beta.clone(), 1e-5);
    let grads = y.sum().backward();
    let beta_grad = beta.grad(&grads).map(host).unwrap_or_default();
    OnesStatistics { mean: host(mean), variance: host(variance), beta_grad }
}

/// The gradient of `sum(conv(ones))` with respect to `conv`'s weight, flattened, on `device`
/// (an autodiff device), through the kernels the network uses.
pub fn weight_gradient_of_ones(conv: &Conv2d, device: &Device, input: [usize; 4]) -> Vec<f32> {
    let weight = Tensor::<4>::from_data(conv.weight.val().into_data(), device).require_grad();
    let conv = Conv2d { weight: Param::from_tensor(weight.clone()), bias: None, ..conv.clone() };
    let y = hydra_model::kernels::conv2d(&conv, ones(device, input));
    let grads = y.sum().backward();
    weight.grad(&grads).map(|g| host(g.reshape([-1]))).unwrap_or_default()
}

/// What [`weight_gradient_of_ones`] must give: for the tap `(ky, kx)` of every weight, `B` ×
/// the number of output rows whose tap row falls inside the image × the same for columns.
pub fn expected_weight_gradient(conv: &Conv2d, [b, _, h, w]: [usize; 4]) -> Vec<f32> {
    let [cout, cin_g, kh, kw] = conv.weight.dims();
    let (pad_top, pad_left) = match conv.padding {
        PaddingConfig2d::Explicit(top, left, _, _) => (top, left),
        _ => (kh / 2, kw / 2),
    };
    let inside = |k: usize, pad: usize, size: usize, stride: usize| {
        let out = size.div_ceil(stride);
        (0..out).filter(|o| (o * stride + k).checked_sub(pad).is_some_and(|i| i < size)).count()
    };
    let mut taps = Vec::with_capacity(kh * kw);
    for ky in 0..kh {
        for kx in 0..kw {
            taps.push((b * inside(ky, pad_top, h, conv.stride[0]) * inside(kx, pad_left, w, conv.stride[1])) as f32);
        }
    }
    taps.iter().copied().cycle().take(cout * cin_g * kh * kw).collect()
}

/// A buffer of ones from the host rather than `Tensor::ones`, which a fusing backend could
/// generate inside the reduction instead of reading it as a layer's activation is read.
fn ones(device: &Device, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(vec![1f32; shape.iter().product()], shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(shape: [usize; 4]) -> OnesStatistics {
        let n = (shape[0] * shape[2] * shape[3]) as f32;
        OnesStatistics { mean: vec![1.0; shape[1]], variance: vec![0.0; shape[1]], beta_grad: vec![n; shape[1]] }
    }

    /// Sums as lavapipe's came out: one shader invocation sums 4 channels one after the other,
    /// 4 values per loop iteration, and stops after 65 535 iterations (measured: 4 rows of
    /// 131 072 values summed to 65 469, 65 452, 0 and 0 instead of 65 470 each).
    fn truncated(shape: [usize; 4]) -> OnesStatistics {
        let n = shape[0] * shape[2] * shape[3];
        let summed: Vec<f32> = (0..shape[1]).map(|c| (65_535 * 4usize).saturating_sub(c % 4 * n).min(n) as f32).collect();
        OnesStatistics { mean: summed.iter().map(|s| s / n as f32).collect(), variance: vec![0.0; shape[1]], beta_grad: summed }
    }

    #[test]
    fn burn_flex_passes() {
        // The portable path, what GPUs run, is checked on flex in tests/portable_path.rs.
        let device = Device::flex().autodiff();
        let net = hydra_model::HydraNetConfig::new(40).init(&device);
        let mut check = ReductionCheck::default();
        check.check(&net.encoder, &device, [2, 47, 30]).unwrap();
        assert_eq!(check.probes_passed(), 18 + 5, "18 BatchNorm shapes, 5 convolutions at stride 2 (stem, layer2.0.*, layer3.0.expand)");
    }

    #[test]
    fn expected_weight_gradients_count_taps_inside_the_image() {
        let device = Device::flex();
        let net = hydra_model::HydraNetConfig::new(40).init(&device);
        let stem = &net.encoder.stem.conv; // 3×3, stride 2, padding 1
        // 5×4 input → 3×2 output; rows: tap 0 reads row −1 for output row 0 → 2 of 3 rows;
        // taps 1, 2 → 3 rows, except tap 2 at output row 2 reads row 5 (outside) → 2.
        let g = expected_weight_gradient(stem, [2, 3, 5, 4]);
        assert_eq!(g.len(), 32 * 3 * 9);
        let rows = [2, 3, 2];
        let cols = [1, 2, 2]; // output cols 0, 1 read input cols (−1, 1), (0, 2), (1, 3)
        for (t, v) in g[..9].iter().enumerate() {
            assert_eq!(*v, (2 * rows[t / 3] * cols[t % 3]) as f32, "tap {t}");
        }
        assert_eq!(g[9..18], g[..9]);
        // On flex the computed gradient is exactly that.
        assert_eq!(weight_gradient_of_ones(stem, &device.autodiff(), [2, 3, 5, 4]), g);
    }

    #[test]
    fn a_truncating_device_is_refused_at_the_first_long_layer_only() {
        let net = hydra_model::HydraNetConfig::new(40).init(&Device::flex());
        // Batch 2 × 480×640: the stem's BatchNorm sums 153 600 values per channel.
        let mut check = ReductionCheck::default();
        let e = check.check_batch_norm(net.encoder.batch_norm_input_shapes([2, 480, 640]), [2, 480, 640], truncated).unwrap_err();
        assert_eq!(e.shape, [2, 32, 240, 320]);
        assert_eq!((e.what.as_str(), e.got, e.want), ("BatchNorm's batch mean", 0.0, 1.0), "channels 2 and 3 of each 4 summed nothing");
        let msg = e.to_string();
        assert!(msg.contains("[2, 32, 240, 320]") && msg.contains("2 × 480×640") && msg.contains("--backend flex"), "{msg}");
        // Batch 1 × 240×320: at most 4 × 19 200 values per invocation, within the driver's limit.
        check.check_batch_norm(net.encoder.batch_norm_input_shapes([1, 240, 320]), [1, 240, 320], truncated).unwrap();
    }

    #[test]
    fn each_shape_is_checked_once_and_one_value_off_is_caught() {
        let shapes = vec![[1, 8, 4, 4], [1, 8, 4, 4], [1, 16, 2, 2]];
        let mut runs = 0;
        let mut check = ReductionCheck::default();
        for _ in 0..2 {
            check
                .check_batch_norm(shapes.clone(), [1, 8, 8], |s| {
                    runs += 1;
                    exact(s)
                })
                .unwrap();
        }
        assert_eq!(runs, 2);
        // One value of 16 left out of a sum: β's gradient 15, the mean 15/16.
        let mut off = exact([1, 8, 4, 4]);
        off.beta_grad[5] = 15.0;
        let e = ReductionCheck::default().check_batch_norm(vec![[1, 8, 4, 4]], [1, 8, 8], |_| off.clone()).unwrap_err();
        assert_eq!((e.got, e.want), (15.0, 16.0));
        let mut off = exact([1, 8, 4, 4]);
        off.mean[0] = 15.0 / 16.0;
        let e = ReductionCheck::default().check_batch_norm(vec![[1, 8, 4, 4]], [1, 8, 8], |_| off.clone()).unwrap_err();
        assert_eq!(e.what, "BatchNorm's batch mean");
        let mut off = exact([1, 8, 4, 4]);
        off.variance[0] = 1.0 / 16.0;
        let e = ReductionCheck::default().check_batch_norm(vec![[1, 8, 4, 4]], [1, 8, 8], |_| off.clone()).unwrap_err();
        assert_eq!(e.what, "BatchNorm's batch variance");
    }
}
