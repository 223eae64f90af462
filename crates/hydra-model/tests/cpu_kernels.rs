//! hydra's CPU kernels (burn-flex) against the portable path (what the other backends run)
//! and Burn's own operations, forward and backward; and the fused kernels against their
//! steps one by one, bit for bit.

use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_model::max_pool::max_pool_5x5;
use hydra_model::resize::resize_bilinear;

mod common;
use common::{close, close_rel, vec1, vec4};

/// The CPU kernels (burn-flex) and the portable path (other backends) compute the same
/// function and the same gradient.
#[test]
fn cpu_kernels_equal_the_portable_path_forward_and_backward() {
    use hydra_model::max_pool::max_pool_5x5_portable;
    use hydra_model::resize::resize_bilinear_portable;
    let device = Device::flex().autodiff();
    for (h, w) in [(5, 7), (15, 20), (23, 31)] {
        // Integer values: many ties, so gradient routing is exercised.
        let data = hydra_testkit::random::<4>([2, 3, h, w], Distribution::Uniform(0.0, 4.0), line!() as u64, &Device::flex()).floor();
        let weights = hydra_testkit::random::<4>([2, 3, h, w], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
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
        let data = hydra_testkit::random::<4>([2, 3, hi, wi], Distribution::Normal(0.0, 1.0), line!() as u64, &Device::flex());
        let weights = hydra_testkit::random::<4>([2, 3, ho, wo], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
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
    let w = hydra_testkit::random::<4>([2, 3, 10, 10], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
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
    let data = hydra_testkit::random::<4>([3, 4, 5, 6], Distribution::Normal(1.0, 2.0), line!() as u64, &Device::flex()).into_data();
    let w = hydra_testkit::random::<4>([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
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

/// BatchNorm with ReLU6 fused in (one operation on burn-flex) is the BatchNorm kernel and the
/// ReLU6 kernel one after the other, bit for bit: output, batch statistics and the gradients of
/// x, γ and β; with outputs on both sides of the clamp, exactly at 0 (β = 0 on a constant
/// plane), NaN in one channel, and planes whose length is not a multiple of the lanes.
#[test]
fn batch_norm_with_relu6_fused_equals_the_two_kernels_bit_for_bit() {
    let device = Device::flex().autodiff();
    for (shape, seed) in [([3usize, 4, 5, 7], 1u64), ([2, 3, 16, 16], 2), ([1, 2, 1, 3], 3)] {
        let [b, c, h, w] = shape;
        let mut xv = hydra_testkit::random::<4>(shape, Distribution::Normal(0.5, 3.0), line!() as u64 + seed, &Device::flex()).into_data().try_into_vec::<f32>().unwrap();
        // Channel 1 of the first image constant where it is large enough: its normalised value
        // sits near the mean; channel 0 of the last image gets a NaN (its whole channel is NaN).
        if h * w > 4 {
            for v in &mut xv[(c + 1) * h * w - h * w / 2..(c + 1) * h * w] {
                *v = 0.5;
            }
            xv[((b - 1) * c) * h * w + 3] = f32::NAN;
        }
        let data = TensorData::new(xv, shape);
        let upstream = hydra_testkit::random::<4>(shape, Distribution::Normal(0.0, 1.0), line!() as u64 + seed, &device);
        let gammas: Vec<f32> = (0..c).map(|i| [2.0, 0.7, -1.3, 4.0][i % 4]).collect();
        let betas: Vec<f32> = (0..c).map(|i| [0.0, 1.0, 3.0, -0.5][i % 4]).collect();
        let run = |fused: bool| {
            let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
            let gamma = Tensor::<1>::from_floats(gammas.as_slice(), &device).require_grad();
            let beta = Tensor::<1>::from_floats(betas.as_slice(), &device).require_grad();
            let (y, m, v) = if fused {
                hydra_model::kernels::batch_norm_train_activated(x.clone(), gamma.clone(), beta.clone(), 1e-5, true)
            } else {
                let (y, m, v) = hydra_model::kernels::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
                (hydra_model::kernels::relu6(y), m, v)
            };
            let g = (y.clone() * upstream.clone()).sum().backward();
            let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            [vec4(y), vec1(m), vec1(v), vec4(x.grad(&g).unwrap()), vec1(gamma.grad(&g).unwrap()), vec1(beta.grad(&g).unwrap())].map(bits)
        };
        let (fused, separate) = (run(true), run(false));
        for (i, what) in ["output", "mean", "variance", "x gradient", "γ gradient", "β gradient"].iter().enumerate() {
            assert_eq!(fused[i], separate[i], "{what}, shape {shape:?}");
        }
        // Both clamps and the pass-through region are exercised, and the mask did something.
        let y: Vec<f32> = fused[0].iter().map(|&u| f32::from_bits(u)).collect();
        assert!(y.iter().any(|&v| v == 0.0) && y.iter().any(|&v| v > 0.0 && v < 6.0), "shape {shape:?}");
        if h * w > 4 {
            assert!(y.iter().any(|&v| v == 6.0) && y.iter().any(|v| v.is_nan()), "shape {shape:?}");
        }
    }
}

/// crp1 under autodiff on burn-flex (one operation with its own backward pass) equals its
/// stages one by one through Burn's autodiff (max-pool, multiply, add): output and input
/// gradient bit for bit, the weights' gradient (summed in f64 instead of f32) within 1e-5.
#[test]
fn fused_crp_training_equals_its_stages_under_autodiff() {
    let device = Device::flex().autodiff();
    for (shape, stages) in [([2usize, 5, 9, 11], 4usize), ([1, 3, 4, 3], 4), ([3, 2, 20, 17], 2)] {
        // Quarter steps: ties in every pool window.
        let data = hydra_testkit::random::<4>(shape, Distribution::Uniform(-4.0, 4.0), line!() as u64, &Device::flex()).mul_scalar(4.0).floor().div_scalar(4.0).into_data();
        let wdata = hydra_testkit::random::<2>([stages, shape[1]], Distribution::Normal(0.0, 0.5), line!() as u64, &Device::flex()).into_data();
        let upstream = hydra_testkit::random::<4>(shape, Distribution::Normal(0.0, 1.0), line!() as u64, &device);
        let run = |fused: bool| {
            let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
            let w = Tensor::<2>::from_data(wdata.clone(), &device).require_grad();
            let y = if fused { hydra_model::kernels::crp_depthwise(x.clone(), w.clone()) } else { hydra_model::kernels::crp_depthwise_staged(x.clone(), w.clone()) };
            let g = (y.clone() * upstream.clone()).sum().backward();
            let dw: Vec<f32> = w.grad(&g).unwrap().into_data().try_into_vec().unwrap();
            (vec4(y), vec4(x.grad(&g).unwrap()), dw)
        };
        let (ya, ga, wa) = run(true);
        let (yb, gb, wb) = run(false);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ya), bits(&yb), "output {shape:?}");
        assert_eq!(bits(&ga), bits(&gb), "input gradient {shape:?}");
        close_rel(&wa, &wb, 1e-5, "weight gradient");
        assert!(wa.iter().any(|v| *v != 0.0));
    }
}

#[test]
fn cross_entropy_kernel_equals_the_portable_loss_forward_and_backward() {
    use burn::tensor::Int;
    let device = Device::flex().autodiff();
    let logits = hydra_testkit::random::<4>([2, 5, 6, 7], Distribution::Normal(0.0, 3.0), line!() as u64, &Device::flex()).into_data();
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

#[test]
fn labels_outside_the_classes_count_as_unlabelled_on_every_path() {
    use burn::tensor::Int;
    let device = Device::flex().autodiff();
    let logits = hydra_testkit::random::<4>([2, 5, 6, 7], Distribution::Normal(0.0, 3.0), line!() as u64, &Device::flex()).into_data();
    let clean: Vec<i64> = (0..2 * 6 * 7).map(|i| (i * 3 % 5) as i64).collect();
    let (mut odd, mut ignored) = (clean.clone(), clean.clone());
    for (k, bad) in [(2, 5), (11, 7), (30, -1), (71, 254)] {
        odd[k] = bad;
        ignored[k] = 255;
    }
    let loss = |labels: &[i64], kernel: bool| {
        let x = Tensor::<4>::from_data(logits.clone(), &device).require_grad();
        let t = Tensor::<3, Int>::from_data(TensorData::new(labels.to_vec(), [2, 6, 7]), &device);
        let l = if kernel { hydra_model::kernels::cross_entropy(x.clone(), t, 255) } else { hydra_model::kernels::cross_entropy_portable(x.clone(), t, 255) };
        let g = l.clone().backward();
        (vec1(l), vec4(x.grad(&g).unwrap()))
    };
    for kernel in [true, false] {
        let (a, ga) = loss(&odd, kernel);
        let (b, gb) = loss(&ignored, kernel);
        assert_eq!(a, b, "kernel {kernel}: out-of-range labels are not the ignore label's");
        assert_eq!(ga, gb, "kernel {kernel}");
    }
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
        let data = hydra_testkit::random::<4>([2, cin, h, w], Distribution::Normal(0.0, 1.0), line!() as u64, &Device::flex()).into_data();
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
    let clean: Vec<f32> = hydra_testkit::random::<4>([2, c, h, w], Distribution::Normal(0.0, 1.0), line!() as u64, &Device::flex()).into_data().try_into_vec::<f32>().unwrap();
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
        (5, 5, 3, 1, 5, false, 9, 12),
        (4, 4, 3, 1, 4, true, 70, 60),
    ] {
        let mut cb = ConvBnConfig::new(cin, cout, k).with_stride(stride).with_groups(groups).with_relu6(relu6).init(&device);
        let stats = |seed: u64, lo: f32, hi: f32| {
            Tensor::<1>::from_data(TensorData::new((0..cout).map(|i| lo + (hi - lo) * (((i as u64 * 7919 + seed) % 97) as f32 / 97.0)).collect::<Vec<f32>>(), [cout]), &device)
        };
        cb.bn.gamma = Param::from_tensor(stats(1, 0.5, 30.0));
        cb.bn.beta = Param::from_tensor(stats(2, -1.0, 1.0));
        cb.bn.running_mean = RunningState::new(stats(3, -0.01, 0.01));
        cb.bn.running_var = RunningState::new(stats(4, 1e-5, 1e-3));
        let x = hydra_testkit::random::<4>([2, cin, h, w], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
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
        let x = hydra_testkit::random::<4>([b, cin, h, w], Distribution::Normal(0.0, 2.0), line!() as u64, &device);
        let mut av: Vec<f32> = hydra_testkit::random::<4>([b, cout, h, w], Distribution::Normal(0.0, 4.0), line!() as u64, &device).into_data().try_into_vec::<f32>().unwrap();
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

/// MobileNetV2's inverted residual block fused per band of rows gives exactly what its three
/// layers give one after the other: single blocks (both strides, residual or not, several
/// images, BatchNorm statistics far from the identity so that ReLU6 clamps both ends), and the
/// trained fixture network's outputs with the default fusion against none; with every block
/// fused, within a bound.
#[test]
fn fused_inverted_residual_blocks_equal_their_layers() {
    use burn::module::{Param, RunningState};
    use hydra_model::conv_bn::ConvBn;
    use hydra_model::inverted_residual::InvertedResidualConfig;
    use hydra_model::kernels::{fused_runs, set_fusion, Fusion};
    let device = Device::flex();
    let with = |f: Fusion, run: &dyn Fn() -> Vec<Vec<f32>>| {
        set_fusion(f);
        let before = fused_runs();
        let out = run();
        set_fusion(Fusion::Auto);
        (out, fused_runs() - before)
    };
    let stats = |n: usize, seed: u64, lo: f32, hi: f32| {
        Tensor::<1>::from_data(TensorData::new((0..n).map(|i| lo + (hi - lo) * (((i as u64 * 7919 + seed) % 97) as f32 / 97.0)).collect::<Vec<f32>>(), [n]), &device)
    };
    let perturb = |cb: &mut ConvBn, seed: u64| {
        let c = cb.bn.gamma.dims()[0];
        cb.bn.gamma = Param::from_tensor(stats(c, seed, 0.5, 40.0));
        cb.bn.beta = Param::from_tensor(stats(c, seed + 1, -1.0, 1.0));
        cb.bn.running_mean = RunningState::new(stats(c, seed + 2, -0.01, 0.01));
        cb.bn.running_var = RunningState::new(stats(c, seed + 3, 1e-4, 1e-2));
    };
    for (cin, cout, t, stride, b, h, w) in [(8, 8, 6, 1, 2, 17, 23), (16, 24, 6, 2, 1, 30, 41), (6, 6, 1, 1, 1, 1, 5), (12, 10, 4, 2, 3, 9, 8)] {
        let mut block = InvertedResidualConfig::new(cin, cout, t, stride).init(&device);
        perturb(&mut block.expand, 10);
        perturb(&mut block.depthwise, 20);
        perturb(&mut block.project, 30);
        let x = hydra_testkit::random::<4>([b, cin, h, w], Distribution::Normal(0.0, 1.0), line!() as u64 + h as u64, &device);
        let run = || vec![vec4(block.forward(x.clone()))];
        let ((fused, n_fused), (layers, n_layers)) = (with(Fusion::Always, &run), with(Fusion::Never, &run));
        let case = format!("{cin}->{cout} t {t} s {stride} [{b}, {h}, {w}]");
        assert!(n_fused >= 1 && n_layers == 0, "{case}: fused runs {n_fused} / {n_layers}");
        assert!(fused[0].iter().zip(&layers[0]).all(|(a, b)| a.to_bits() == b.to_bits()), "{case}");
        if t > 1 {
            // The expansion's ReLU6 clamped at both ends somewhere (checked on its own output).
            let e = vec4(block.expand.forward(x.clone()));
            assert!(e.iter().any(|&v| v == 6.0) && e.iter().any(|&v| v == 0.0), "{case}: ReLU6 clamps both ends");
        }
    }
    // The trained network at 480×640: the blocks the default fuses (the expanded tensor large)
    // give its outputs to the bit.
    let (net, _) = hydra_model::weights::load_model(&common::fixtures().join("../trained/synthetic6.bpk"), None, &device).unwrap();
    let outputs = |x: &Tensor<4>| {
        let o = net.forward(x.clone());
        vec![vec4(o.segm.unwrap()), vec4(o.depth.unwrap())]
    };
    let x = hydra_testkit::random::<4>([1, 3, 480, 640], Distribution::Normal(0.0, 1.0), 7, &device);
    let ((auto, n_auto), (layers, _)) = (with(Fusion::Auto, &|| outputs(&x)), with(Fusion::Never, &|| outputs(&x)));
    assert!(n_auto >= 7, "the seven blocks at 60×80 and above fused: {n_auto}");
    for (task, (a, b)) in ["segm", "depth"].iter().zip(auto.iter().zip(&layers)) {
        assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()), "{task} differs with the large blocks fused");
    }
    // Every block fused, the small ones too: where an unfused product of a small plane runs
    // over more than 512 inputs (split by output channels), gemm's sums differ in the last
    // bits; the outputs stay within a few ulps' effect.
    let x = hydra_testkit::random::<4>([1, 3, 96, 128], Distribution::Normal(0.0, 1.0), 8, &device);
    let ((all, n_all), (layers, _)) = (with(Fusion::Always, &|| outputs(&x)), with(Fusion::Never, &|| outputs(&x)));
    assert!(n_all >= 17, "every block of the encoder fused: {n_all}");
    close_rel(&all[0], &layers[0], 1e-4, "segm, every block fused");
    close_rel(&all[1], &layers[1], 1e-4, "depth, every block fused");
}
