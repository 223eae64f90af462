//! Layers checked against hand-computed values and PyTorch's definitions.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Distribution;
use hydra_model::batch_norm::BatchNormConfig;
use hydra_model::max_pool::{max_pool_5x5, max_pool_5x5_direct};
use hydra_model::resize::resize_bilinear;

mod common;
use common::{vec1, vec4};

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "index {i}: {x} vs {y}");
    }
}

/// `|x − y| ≤ tol · max|b|` everywhere.
fn close_rel(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}, index {i}: {x} vs {y} (scale {scale})");
    }
}

#[test]
fn batch_norm_training_step_follows_pytorch() {
    // One channel, batch of 2 with 2 pixels each: values 1, 3, 5, 11.
    // mean = 5, biased var = (16 + 4 + 0 + 36) / 4 = 14, unbiased = 56 / 3.
    let device = Device::flex().autodiff();
    let bn = BatchNormConfig::new(1).init(&device);
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0, 5.0, 11.0], [2, 1, 1, 2]), &device);
    let y = vec4(bn.forward(x));
    let sd = (14.0f32 + 1e-5).sqrt();
    close(&y, &[-4.0 / sd, -2.0 / sd, 0.0, 6.0 / sd], 1e-6);
    // running = 0.9 · running + 0.1 · batch, with the unbiased variance.
    close(&vec1(bn.running_mean.value_sync()), &[0.5], 1e-6);
    close(&vec1(bn.running_var.value_sync()), &[0.9 + 0.1 * 56.0 / 3.0], 1e-5);
    close(&vec1(bn.num_batches_tracked.value_sync()), &[1.0], 0.0);

    // A second step accumulates.
    let x2 = Tensor::<4>::from_data(TensorData::new(vec![2.0f32, 2.0, 4.0, 4.0], [2, 1, 1, 2]), &device);
    bn.forward(x2);
    close(&vec1(bn.running_mean.value_sync()), &[0.9 * 0.5 + 0.1 * 3.0], 1e-6);
    close(&vec1(bn.running_var.value_sync()), &[0.9 * (0.9 + 0.1 * 56.0 / 3.0) + 0.1 * (4.0 / 3.0)], 1e-5);
    close(&vec1(bn.num_batches_tracked.value_sync()), &[2.0], 0.0);
}

#[test]
fn batch_norm_inference_uses_running_statistics() {
    let device = Device::flex();
    let mut bn = BatchNormConfig::new(2).init(&device);
    bn.running_mean = burn::module::RunningState::new(Tensor::from_floats([1.0, -2.0], &device));
    bn.running_var = burn::module::RunningState::new(Tensor::from_floats([4.0, 0.25], &device));
    bn.gamma = burn::module::Param::from_tensor(Tensor::from_floats([2.0, 1.0], &device));
    bn.beta = burn::module::Param::from_tensor(Tensor::from_floats([0.5, 0.0], &device));
    let x = Tensor::<4>::from_data(TensorData::new(vec![3.0f32, -1.0], [1, 2, 1, 1]), &device);
    let y = vec4(bn.forward(x));
    close(&y, &[2.0 * 2.0 / (4.0f32 + 1e-5).sqrt() + 0.5, 1.0 / (0.25f32 + 1e-5).sqrt()], 1e-6);
}

#[test]
fn frozen_batch_norm_keeps_its_statistics_while_training() {
    struct Freeze;
    impl burn::module::ModuleMapper for Freeze {
        fn map_flag(&mut self, f: burn::module::Param<burn::module::Flag>) -> burn::module::Param<burn::module::Flag> {
            f.with_value(false)
        }
    }
    let device = Device::flex().autodiff();
    let bn = burn::module::Module::map(BatchNormConfig::new(1).init(&device), &mut Freeze);
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0, 5.0, 11.0], [2, 1, 1, 2]), &device);
    let x = x.require_grad();
    let y = bn.forward(x.clone());
    let g = y.clone().sum().backward();
    let y = vec4(y);
    let s = 1.0 / (1.0f32 + 1e-5).sqrt();
    close(&y, &[s, 3.0 * s, 5.0 * s, 11.0 * s], 1e-5);
    close(&vec1(bn.running_mean.value_sync()), &[0.0], 0.0);
    // Frozen, it is still differentiable: dy/dx = γ / √(σ² + ε), dy/dγ = Σ x̂, dy/dβ = count.
    close(&vec4(x.grad(&g).unwrap()), &[s; 4], 1e-6);
    close(&vec1(bn.gamma.val().grad(&g).unwrap()), &[20.0 * s], 1e-4);
    close(&vec1(bn.beta.val().grad(&g).unwrap()), &[4.0], 0.0);
}

/// The one-pass affine (+ ReLU6) kernel of inference-mode BatchNorm computes exactly
/// `fma(x, scale, shift)` (one rounding, as PyTorch's CPU BatchNorm; then ReLU6), NaN
/// included, on every plane size.
#[test]
fn channel_affine_kernel_is_one_fused_multiply_add() {
    let device = Device::flex();
    let mut fused_differs = false;
    for dims in [[2, 3, 5, 7], [1, 40, 1, 1], [3, 2, 64, 70]] {
        let n: usize = dims.iter().product();
        let mut v: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 40.0 + i as f32 * 1e-4).collect();
        v[n / 2] = f32::NAN;
        let c = dims[1];
        let hw = dims[2] * dims[3];
        let scale: Vec<f32> = (0..c).map(|i| 0.3 + i as f32 * 0.7137).collect();
        let shift: Vec<f32> = (0..c).map(|i| 1.5 - i as f32 * 1.0391).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), dims), &device);
        let t = |s: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(s.clone(), [c]), &device);
        for relu6 in [false, true] {
            let ours = vec4(hydra_model::kernels::channel_affine(x.clone(), t(&scale), t(&shift), relu6));
            assert_eq!(ours.len(), n);
            for (i, (a, x)) in ours.iter().zip(&v).enumerate() {
                let ch = i / hw % c;
                let y = x.mul_add(scale[ch], shift[ch]);
                fused_differs |= y != x * scale[ch] + shift[ch];
                let b = if relu6 && !y.is_nan() { y.clamp(0.0, 6.0) } else { y };
                assert!(*a == b || (a.is_nan() && b.is_nan()), "{dims:?} relu6 {relu6} at {i}: {a} vs {b}");
            }
            assert!(ours[n / 2].is_nan(), "NaN must pass through");
        }
    }
    assert!(fused_differs, "the data must tell one rounding from two");
}

/// PyTorch's `upsample_bilinear2d(align_corners=False)` on the host: source coordinates in
/// f32 as PyTorch's CPU kernel computes them (`opmath_t` is float), interpolation in f64.
fn reference_resize(x: &[f32], [b, c, hi, wi]: [usize; 4], [ho, wo]: [usize; 2]) -> Vec<f32> {
    let taps = |n_in: usize, n_out: usize, d: usize| {
        let scale = n_in as f32 / n_out as f32;
        let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let l1 = (src - i0 as f32) as f64;
        (i0, i1, 1.0 - l1, l1)
    };
    let mut out = Vec::with_capacity(b * c * ho * wo);
    for p in 0..b * c {
        let plane = &x[p * hi * wi..(p + 1) * hi * wi];
        for y in 0..ho {
            let (y0, y1, a0, a1) = taps(hi, ho, y);
            for xo in 0..wo {
                let (x0, x1, b0, b1) = taps(wi, wo, xo);
                let v = |yy: usize, xx: usize| plane[yy * wi + xx] as f64;
                out.push((a0 * (b0 * v(y0, x0) + b1 * v(y0, x1)) + a1 * (b0 * v(y1, x0) + b1 * v(y1, x1))) as f32);
            }
        }
    }
    out
}

#[test]
fn bilinear_resize_matches_pytorch_semantics() {
    let device = Device::flex();
    for (hi, wi, ho, wo) in [(15, 20, 30, 40), (30, 40, 60, 80), (60, 80, 120, 160), (12, 9, 47, 31), (40, 40, 13, 17), (7, 5, 7, 5), (93, 307, 370, 1226)] {
        let x = Tensor::<4>::random([2, 3, hi, wi], Distribution::Normal(0.0, 1.0), &device);
        let host = vec4(x.clone());
        let ours = vec4(resize_bilinear(x.clone(), [ho, wo]));
        let expected = reference_resize(&host, [2, 3, hi, wi], [ho, wo]);
        let err = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 2e-6, "{hi}x{wi} -> {ho}x{wo}: max err {err}");
        if ho == 2 * hi && wo == 2 * wi {
            // Burn's own interpolate agrees at the decoder's 2× steps (it departs from PyTorch
            // by up to 1.6e-4 at non-integer ratios such as 93 → 370, and its backward is
            // missing on CubeCL backends: two reasons hydra has its own resize).
            let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size([ho, wo]);
            let burn = vec4(interpolate(x, opts));
            let err = ours.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-5, "{hi}x{wi} -> {ho}x{wo}: burn differs by {err}");
        }
    }
}

#[test]
fn bilinear_upsampling_by_two_hand_values() {
    // PyTorch: F.interpolate([[1, 3]], size=4, bilinear, align_corners=False) = [1, 1.5, 2.5, 3].
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0], [1, 1, 1, 2]), &device);
    close(&vec4(resize_bilinear(x, [1, 4])), &[1.0, 1.5, 2.5, 3.0], 0.0);
}

#[test]
fn bilinear_resize_backward_spreads_gradient_by_the_weights() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0], [1, 1, 1, 2]), &device).require_grad();
    let y = resize_bilinear(x.clone(), [1, 4]);
    let w = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 10.0, 100.0, 1000.0], [1, 1, 1, 4]), &device);
    let g = (y * w).sum().backward();
    // d/dx0 = 1·1 + 10·0.75 + 100·0.25 + 0 = 33.5; d/dx1 = 10·0.25 + 100·0.75 + 1000 = 1077.5
    close(&vec4(x.grad(&g).unwrap()), &[33.5, 1077.5], 1e-4);
}

#[test]
fn separable_max_pool_equals_the_direct_5x5_pool() {
    let device = Device::flex();
    for (h, w) in [(1, 1), (3, 4), (17, 23), (60, 80)] {
        let x = Tensor::<4>::random([2, 4, h, w], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(vec4(max_pool_5x5(x.clone())), vec4(max_pool_5x5_direct(x)), "{h}x{w}");
    }
}

/// The CPU kernels (burn-flex) and the portable path (other backends) compute the same
/// function and the same gradient.
#[test]
fn cpu_kernels_equal_the_portable_path_forward_and_backward() {
    use hydra_model::max_pool::max_pool_5x5_portable;
    use hydra_model::resize::resize_bilinear_portable;
    let device = Device::flex().autodiff();
    for (h, w) in [(5, 7), (15, 20), (23, 31)] {
        // Integer values: many ties, so gradient routing is exercised.
        let data = Tensor::<4>::random([2, 3, h, w], Distribution::Uniform(0.0, 4.0), &Device::flex()).floor();
        let weights = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<4>) -> Tensor<4>| {
            let x = Tensor::<4>::from_data(data.clone().into_data(), &device).require_grad();
            let y = f(x.clone());
            let g = (y.clone() * weights.clone()).sum().backward();
            (vec4(y), vec4(x.grad(&g).unwrap()))
        };
        let (ya, ga) = run(max_pool_5x5);
        let (yb, gb) = run(max_pool_5x5_portable);
        assert_eq!(ya, yb, "max-pool forward {h}x{w}");
        // Same routing (same non-zero positions); sums of several routed gradients may differ in
        // the last bit because the two paths add them in another order.
        assert_eq!(ga.iter().map(|v| *v != 0.0).collect::<Vec<_>>(), gb.iter().map(|v| *v != 0.0).collect::<Vec<_>>(), "{h}x{w}");
        close(&ga, &gb, 1e-5);
    }
    for (hi, wi, ho, wo) in [(15, 20, 30, 40), (12, 9, 47, 31), (40, 40, 13, 17)] {
        let data = Tensor::<4>::random([2, 3, hi, wi], Distribution::Normal(0.0, 1.0), &Device::flex());
        let weights = Tensor::<4>::random([2, 3, ho, wo], Distribution::Normal(0.0, 1.0), &device);
        let run = |portable: bool| {
            let x = Tensor::<4>::from_data(data.clone().into_data(), &device).require_grad();
            let y = if portable { resize_bilinear_portable(x.clone(), [ho, wo]) } else { resize_bilinear(x.clone(), [ho, wo]) };
            let g = (y.clone() * weights.clone()).sum().backward();
            (vec4(y), vec4(x.grad(&g).unwrap()))
        };
        let (ya, ga) = run(false);
        let (yb, gb) = run(true);
        close(&ya, &yb, 1e-6);
        close(&ga, &gb, 1e-5);
    }
}

#[test]
fn relu6_kernel_equals_burn_relu6_forward_and_backward() {
    let device = Device::flex().autodiff();
    // Values exactly at 0 and 6 too: PyTorch passes no gradient there.
    let mut v: Vec<f32> = (0..600).map(|i| (i as f32 - 150.0) / 30.0).collect();
    v[10] = 0.0;
    v[20] = 6.0;
    let data = TensorData::new(v, [2, 3, 10, 10]);
    let w = Tensor::<4>::random([2, 3, 10, 10], Distribution::Normal(0.0, 1.0), &device);
    let run = |kernel: bool| {
        let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
        let y = if kernel { hydra_model::kernels::relu6(x.clone()) } else { burn::tensor::activation::relu6(x.clone()) };
        let g = (y.clone() * w.clone()).sum().backward();
        (vec4(y), vec4(x.grad(&g).unwrap()))
    };
    let (ya, ga) = run(true);
    let (yb, _) = run(false);
    assert_eq!(ya, yb);
    let wv = vec4(w.clone());
    let xv = data.clone().try_into_vec::<f32>().unwrap();
    for i in 0..600 {
        let expect = if xv[i] > 0.0 && xv[i] < 6.0 { wv[i] } else { 0.0 };
        assert_eq!(ga[i], expect, "gradient at x = {}", xv[i]);
    }
}

#[test]
fn batch_norm_kernel_equals_burn_batch_norm_forward_and_backward() {
    let device = Device::flex().autodiff();
    let data = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(1.0, 2.0), &Device::flex()).into_data();
    let w = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &device);
    let run = |kernel: bool| {
        let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
        let gamma = Tensor::<1>::from_floats([0.5, 1.0, 1.5, 2.0], &device).require_grad();
        let beta = Tensor::<1>::from_floats([0.1, -0.2, 0.3, 0.0], &device).require_grad();
        let (y, m, v) = if kernel {
            hydra_model::kernels::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
        } else {
            let r = burn::tensor::module::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            (r.output, r.mean, r.variance)
        };
        let g = (y.clone() * w.clone()).sum().backward();
        (vec4(y), vec1(m), vec1(v), vec4(x.grad(&g).unwrap()), vec1(gamma.grad(&g).unwrap()), vec1(beta.grad(&g).unwrap()))
    };
    let a = run(true);
    let b = run(false);
    close(&a.0, &b.0, 1e-5);
    close(&a.1, &b.1, 1e-5);
    close(&a.2, &b.2, 1e-4);
    close(&a.3, &b.3, 1e-4);
    close(&a.4, &b.4, 1e-4);
    close(&a.5, &b.5, 1e-4);
}

#[test]
fn cross_entropy_kernel_equals_the_portable_loss_forward_and_backward() {
    use burn::tensor::Int;
    let device = Device::flex().autodiff();
    let logits = Tensor::<4>::random([2, 5, 6, 7], Distribution::Normal(0.0, 3.0), &Device::flex()).into_data();
    let mut labels: Vec<i64> = (0..2 * 6 * 7).map(|i| (i * 7 % 5) as i64).collect();
    labels[3] = 255;
    labels[40] = 255;
    let labels = Tensor::<3, Int>::from_data(TensorData::new(labels, [2, 6, 7]), &device);
    let run = |kernel: bool| {
        let x = Tensor::<4>::from_data(logits.clone(), &device).require_grad();
        let l = if kernel { hydra_model::kernels::cross_entropy(x.clone(), labels.clone(), 255) } else { hydra_model::kernels::cross_entropy_portable(x.clone(), labels.clone(), 255) };
        let g = l.clone().mul_scalar(3.0).backward();
        (vec1(l), vec4(x.grad(&g).unwrap()))
    };
    let (la, ga) = run(true);
    let (lb, gb) = run(false);
    close(&la, &lb, 1e-5);
    close(&ga, &gb, 1e-6);
    // Nothing valid: zero loss and zero gradient, not NaN.
    let x = Tensor::<4>::from_data(logits.clone(), &device).require_grad();
    let none = Tensor::<3, Int>::full([2, 6, 7], 255, &device);
    let l = hydra_model::kernels::cross_entropy(x.clone(), none, 255);
    assert_eq!(vec1(l.clone()), vec![0.0]);
    let g = l.backward();
    assert!(vec4(x.grad(&g).unwrap()).iter().all(|v| *v == 0.0));
}

/// hydra's convolution paths (depthwise 1×1 as a scale, dense 1×1 as a matrix product while
/// training, the depthwise 3×3 CPU kernel, the dense 3×3 kernel of the heads) equal Burn's
/// `conv2d`, forward and backward.
#[test]
fn convolution_paths_equal_burn_conv2d_forward_and_backward() {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    let device = Device::flex().autodiff();
    for (cin, cout, k, stride, groups, bias, h, w) in [
        (8, 8, 1, 1, 8, false, 9, 11),   // depthwise 1×1
        (6, 10, 1, 1, 1, false, 7, 13),  // dense 1×1
        (6, 10, 1, 1, 1, true, 5, 5),    // dense 1×1 with bias
        (5, 7, 1, 1, 1, false, 70, 80),  // dense 1×1, several column chunks and gradient partials
        (8, 8, 3, 1, 8, false, 9, 11),   // depthwise 3×3
        (8, 8, 3, 2, 8, false, 9, 12),   // depthwise 3×3, stride 2, odd and even sizes
        (8, 8, 3, 2, 8, false, 10, 7),
        (4, 5, 3, 1, 1, true, 6, 6),     // dense 3×3: matrix products per tap
        (16, 40, 3, 1, 1, true, 20, 70), // dense 3×3, more than one column chunk
        (16, 1, 3, 1, 1, true, 20, 70),  // dense 3×3, one output: direct accumulation
        (3, 2, 3, 1, 1, false, 1, 5),    // dense 3×3, a single row
        (3, 8, 3, 2, 1, false, 9, 12),   // dense 3×3 stride 2 (the stem): Burn's own
    ] {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_bias(bias)
            .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .with_initializer(burn::nn::Initializer::Normal { mean: 0.0, std: 0.5 })
            .init(&device);
        let data = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data();
        let run = |ours: bool| {
            let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
            let y = if ours { hydra_model::kernels::conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
            let wts = Tensor::<4>::from_data(TensorData::new((0..y.dims().iter().product::<usize>()).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect::<Vec<_>>(), y.dims()), &device);
            let g = (y.clone() * wts).sum().backward();
            let gw = conv.weight.val().grad(&g).unwrap();
            (vec4(y), vec4(x.grad(&g).unwrap()), vec4(gw))
        };
        let (ya, gxa, gwa) = run(true);
        let (yb, gxb, gwb) = run(false);
        let case = format!("cin {cin} cout {cout} k {k} s {stride} g {groups}");
        assert_eq!(ya.len(), yb.len(), "{case}");
        // Relative to the largest magnitude: the weight gradient sums 2·20·70 products in
        // another order, whose f32 rounding is about √n·ε ≈ 3e-6 (n·ε ≈ 2e-4 at worst); a
        // misplaced tap or channel would be off by O(1).
        close_rel(&ya, &yb, 1e-5, &format!("output, {case}"));
        close_rel(&gxa, &gxb, 1e-5, &format!("input gradient, {case}"));
        close_rel(&gwa, &gwb, 1e-5, &format!("weight gradient, {case}"));
    }
}

/// The fused depthwise CRP (`crp1`) gives exactly what its stages give one by one (Burn's
/// 5×5 max-pool, multiply, add), NaN planes included; under autodiff too, with gradients.
#[test]
fn fused_depthwise_crp_equals_its_stages() {
    use hydra_model::crp::CrpConfig;
    use hydra_model::max_pool::max_pool_5x5_portable;
    let (c, h, w) = (6, 17, 23);
    let clean: Vec<f32> = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data().try_into_vec::<f32>().unwrap();
    let mut with_nan = clean.clone();
    with_nan[(c + 3) * h * w + 40] = f32::NAN; // a plane of the second image: it must spread through the pools
    for (device, v) in [(Device::flex(), with_nan), (Device::flex().autodiff(), clean)] {
        let crp = CrpConfig::new(c).with_depthwise(true).with_seed(3).init(&device);
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [2, c, h, w]), &device);
        let x = if device.is_autodiff() { x.require_grad() } else { x };
        let stages = |x: Tensor<4>| {
            let (mut acc, mut top) = (x.clone(), x);
            for conv in &crp.convs {
                top = max_pool_5x5_portable(top) * conv.weight.val().reshape([1, c, 1, 1]);
                acc = acc + top.clone();
            }
            acc
        };
        let fused = crp.forward(x.clone());
        let expect = stages(x.clone());
        let (a, b) = (vec4(fused.clone()), vec4(expect.clone()));
        let nan_count = a.iter().filter(|v| v.is_nan()).count();
        let expect_nan = v.iter().any(|v| v.is_nan());
        assert!(if expect_nan { nan_count >= 25 } else { nan_count == 0 }, "the NaN spreads over its windows ({nan_count})");
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!(p == q || (p.is_nan() && q.is_nan()), "{i}: {p} vs {q}");
        }
        if device.is_autodiff() {
            let g1 = fused.sum().backward();
            let g2 = expect.sum().backward();
            let (ga, gb) = (vec4(x.grad(&g1).unwrap()), vec4(x.grad(&g2).unwrap()));
            close(&ga, &gb, 1e-5);
            for conv in &crp.convs {
                let (wa, wb) = (vec4(conv.weight.val().grad(&g1).unwrap()), vec4(conv.weight.val().grad(&g2).unwrap()));
                close(&wa, &wb, 1e-3);
            }
        }
    }
}

/// Inference-mode ConvBn with the BatchNorm (and ReLU6) applied inside the convolution's
/// kernel gives exactly what the convolution followed by the separate BatchNorm pass gives:
/// dense 1×1, depthwise 3×3 at strides 1 and 2, with and without ReLU6.
#[test]
fn fused_conv_batch_norm_equals_the_two_passes() {
    use burn::module::{Param, RunningState};
    use hydra_model::conv_bn::ConvBnConfig;
    let device = Device::flex();
    for (cin, cout, k, stride, groups, relu6, h, w) in [
        (6, 10, 1, 1, 1, true, 7, 130),
        (40, 24, 1, 1, 1, false, 33, 40),
        (8, 8, 3, 1, 8, true, 9, 11),
        (8, 8, 3, 2, 8, true, 10, 7),
        (5, 5, 3, 2, 5, false, 9, 12),
    ] {
        let mut cb = ConvBnConfig::new(cin, cout, k).with_stride(stride).with_groups(groups).with_relu6(relu6).init(&device);
        let stats = |seed: u64, lo: f32, hi: f32| {
            Tensor::<1>::from_data(TensorData::new((0..cout).map(|i| lo + (hi - lo) * (((i as u64 * 7919 + seed) % 97) as f32 / 97.0)).collect::<Vec<f32>>(), [cout]), &device)
        };
        cb.bn.gamma = Param::from_tensor(stats(1, 0.5, 30.0));
        cb.bn.beta = Param::from_tensor(stats(2, -1.0, 1.0));
        cb.bn.running_mean = RunningState::new(stats(3, -0.01, 0.01));
        cb.bn.running_var = RunningState::new(stats(4, 1e-5, 1e-3));
        let x = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &device);
        let fused = vec4(cb.forward(x.clone()));
        let separate = vec4(cb.bn.forward_inference(hydra_model::kernels::conv2d(&cb.conv, x), relu6));
        let case = format!("cin {cin} cout {cout} k {k} s {stride} relu6 {relu6}");
        assert_eq!(fused.len(), separate.len(), "{case}");
        assert!(fused.iter().zip(&separate).all(|(a, b)| a.to_bits() == b.to_bits()), "{case}");
        if relu6 {
            assert!(fused.iter().any(|&v| v == 6.0) && fused.iter().any(|&v| v == 0.0), "ReLU6 clamps both ends: {case}");
        }
    }
}

/// The decoder's lateral 1×1 convolution joining the upsampled path, `relu6(conv(x) + a)`,
/// fused into the convolution's kernel in inference, gives exactly the separate operations
/// (NaN included), with several column chunks and images.
#[test]
fn fused_conv_add_relu6_equals_the_separate_operations() {
    use burn::nn::conv::Conv2dConfig;
    let device = Device::flex();
    for (cin, cout, b, h, w) in [(24, 16, 1, 30, 40), (5, 7, 2, 3, 4)] {
        let conv = Conv2dConfig::new([cin, cout], [1, 1]).with_bias(false).init(&device);
        let x = Tensor::<4>::random([b, cin, h, w], Distribution::Normal(0.0, 2.0), &device);
        let mut av: Vec<f32> = Tensor::<4>::random([b, cout, h, w], Distribution::Normal(0.0, 4.0), &device).into_data().try_into_vec::<f32>().unwrap();
        av[3] = f32::NAN;
        let a = Tensor::<4>::from_data(TensorData::new(av, [b, cout, h, w]), &device);
        let fused = vec4(hydra_model::kernels::conv_add_relu6(&conv, x.clone(), a.clone()));
        let separate = vec4(burn::tensor::activation::relu6(hydra_model::kernels::conv2d(&conv, x) + a));
        assert_eq!(fused.len(), separate.len());
        for (i, (p, q)) in fused.iter().zip(&separate).enumerate() {
            assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()), "{i}: {p} vs {q}");
        }
        assert!(fused[3].is_nan(), "NaN passes through");
        assert!(fused.iter().any(|&v| v == 6.0) && fused.iter().any(|&v| v == 0.0), "both clamps are exercised");
    }
}
