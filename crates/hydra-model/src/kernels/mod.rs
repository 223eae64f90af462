//! Operations with a fast path on the CPU backend: on burn-flex (with or without autodiff)
//! they run hydra's own kernels ([`cpu`], through a Burn backend extension); on any other
//! backend they fall back to portable Burn operations. Both paths compute the same function.

#[macro_use]
mod multiversion;
#[cfg(feature = "flex")]
pub mod conv1x1;
#[cfg(feature = "flex")]
pub mod conv3x3;
pub mod cpu;
pub mod upsampled_ce;
#[cfg(feature = "flex")]
pub mod winograd;
#[cfg(feature = "flex")]
mod flex_ext;

use burn::prelude::*;

static PORTABLE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `true`, every operation takes its portable path (Burn's operations, what the GPU
/// backends run) on burn-flex too, for the whole process: to check on the CPU the arithmetic
/// the GPUs compute (`tests/portable_path.rs`), or to tell a GPU discrepancy from a defect of
/// the portable path. Slower; the default is `false`.
pub fn set_portable_only(on: bool) {
    PORTABLE_ONLY.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`set_portable_only`] is on.
pub fn portable_only() -> bool {
    PORTABLE_ONLY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether `t` lives on burn-flex (directly or under autodiff) as f32, where the custom kernels
/// apply (unless [`set_portable_only`]).
#[cfg(feature = "flex")]
fn on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    use burn::backend::DispatchDevice;
    let d = t.device();
    let flex = match d.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(a) => matches!(**a, DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    };
    flex && t.dtype() == burn::tensor::DType::F32 && !portable_only()
}

/// 5×5 max-pool, stride 1, padding 2 (−∞): `[B, C, H, W]` → `[B, C, H, W]`.
pub fn max_pool_5x5(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::crp_max_pool(x.into_dispatch()));
    }
    crate::max_pool::max_pool_5x5_portable(x)
}

/// Whether `conv` pads every side by exactly `p` (`Valid` is padding 0; `Same` is never
/// taken for a fixed amount).
fn padded_by(conv: &burn::nn::conv::Conv2d, p: usize) -> bool {
    match conv.padding {
        burn::nn::PaddingConfig2d::Explicit(t, l, b, r) => [t, l, b, r] == [p; 4],
        burn::nn::PaddingConfig2d::Valid => p == 0,
        burn::nn::PaddingConfig2d::Same => false,
    }
}

/// A 2-D convolution `[B, Cin, H, W]` → `[B, Cout, H', W']` (PyTorch's `F.conv2d` with
/// this layer's weight, bias, stride, padding and groups), computed the fastest way the case
/// allows: a depthwise 1×1 convolution is a per-channel scale; while training, a dense 1×1
/// convolution is a batched matrix product (its backward is two products, several times faster
/// than burn-flex's generic convolution backward); on burn-flex, dense 1×1 convolutions (forward
/// and backward as per-image matrix products), dense 3×3 convolutions of few input channels
/// (the stem) in inference, depthwise 3×3 convolutions and dense 3×3 stride-1 convolutions (the
/// task heads) run hydra's CPU kernels; anything else is Burn's `conv2d`.
pub fn conv2d(conv: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [cout, cin_g, kh, kw] = conv.weight.dims();
    let [b, cin, h, w] = x.dims();
    let unit = conv.stride == [1, 1] && conv.dilation == [1, 1];
    let bias = |y: Tensor<4>| match &conv.bias {
        Some(bv) => y + bv.val().reshape([1, cout, 1, 1]),
        None => y,
    };
    if [kh, kw] == [1, 1] && unit && padded_by(conv, 0) {
        if conv.groups == cin && cin_g == 1 && cout == cin {
            return bias(x * conv.weight.val().reshape([1, cout, 1, 1]));
        }
        #[cfg(feature = "flex")]
        if conv.groups == 1 && on_flex(&x) {
            use flex_ext::HydraKernels;
            let y = <burn::backend::Dispatch as HydraKernels>::conv1x1(x.into_dispatch(), conv.weight.val().into_dispatch());
            return bias(Tensor::from_dispatch(y));
        }
        if conv.groups == 1 && x.device().is_autodiff() {
            let y = conv.weight.val().reshape([1, cout, cin]).matmul(x.reshape([b, cin, h * w]));
            return bias(y.reshape([b, cout, h, w]));
        }
    }
    #[cfg(feature = "flex")]
    if [kh, kw] == [3, 3] && conv.groups == cin && cin_g == 1 && cout == cin && conv.dilation == [1, 1] && on_flex(&x)
        && padded_by(conv, 1) && conv.stride[0] == conv.stride[1] && conv.stride[0] <= 2
    {
        use flex_ext::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::depthwise3x3(x.into_dispatch(), conv.weight.val().into_dispatch(), conv.stride[0]);
        return bias(Tensor::from_dispatch(y));
    }
    #[cfg(feature = "flex")]
    if [kh, kw] == [3, 3] && conv.groups == 1 && cin <= 4 && conv.dilation == [1, 1] && padded_by(conv, 1) && conv.stride[0] == conv.stride[1]
        && conv.stride[0] <= 2 && !x.device().is_autodiff() && on_flex(&x) && conv3x3::has_fma()
    {
        use flex_ext::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::conv3x3_few_inputs(x.into_dispatch(), conv.weight.val().into_dispatch(), conv.stride[0]);
        return bias(Tensor::from_dispatch(y));
    }
    #[cfg(feature = "flex")]
    if [kh, kw] == [3, 3] && conv.groups == 1 && unit && padded_by(conv, 1) && on_flex(&x) {
        use flex_ext::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::conv3x3(x.into_dispatch(), conv.weight.val().into_dispatch());
        return bias(Tensor::from_dispatch(y));
    }
    conv.forward(x)
}

/// `relu6(conv(x) + a)` for a convolution without bias: the decoder's lateral 1×1
/// convolution joining the upsampled path. On burn-flex in inference, for a dense 1×1
/// convolution, the sum and the clamp are applied to each output row while it is in cache
/// (bit for bit the separate operations, two passes and a tensor fewer); elsewhere the
/// operations one by one.
pub fn conv_add_relu6(conv: &burn::nn::conv::Conv2d, x: Tensor<4>, a: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    {
        let [_, _, kh, kw] = conv.weight.dims();
        let plain = [kh, kw] == [1, 1] && conv.groups == 1 && conv.bias.is_none() && conv.stride == [1, 1] && conv.dilation == [1, 1]
            && padded_by(conv, 0);
        let [b, _, h, w] = x.dims();
        if plain && a.dims() == [b, conv.weight.dims()[0], h, w] && on_flex(&x) && on_flex(&a) && !x.device().is_autodiff() {
            use flex_ext::HydraKernels;
            let y = <burn::backend::Dispatch as HydraKernels>::conv1x1_add_relu6(x.into_dispatch(), conv.weight.val().into_dispatch(), a.into_dispatch());
            return Tensor::from_dispatch(y);
        }
    }
    relu6(conv2d(conv, x) + a)
}

/// A task head, `out(relu6(pre(x)))` with `pre` a depthwise 1×1 convolution without bias and
/// `out` a 3×3 convolution (stride 1, padding 1) with bias: `[B, C, H, W]` → `[B, Cout, H, W]`.
/// On burn-flex in inference, one pass writes `relu6(x · pre[c])` straight into the padded
/// buffer the 3×3 kernel reads (bit for bit the separate steps, two passes and two tensors
/// fewer); elsewhere the steps one by one.
pub fn task_head(pre: &burn::nn::conv::Conv2d, out: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    {
        let [c, cin_g, pkh, pkw] = pre.weight.dims();
        let [_, ocin, kh, kw] = out.weight.dims();
        let pre_ok = pre.groups == c && cin_g == 1 && [pkh, pkw] == [1, 1] && pre.bias.is_none() && pre.stride == [1, 1]
            && padded_by(pre, 0);
        let out_ok = out.groups == 1 && ocin == c && [kh, kw] == [3, 3] && out.stride == [1, 1] && out.dilation == [1, 1] && padded_by(out, 1);
        if let (true, true, Some(bias)) = (pre_ok, out_ok, &out.bias) {
            if x.dims()[1] == c && on_flex(&x) && !x.device().is_autodiff() {
                use flex_ext::HydraKernels;
                let y = <burn::backend::Dispatch as HydraKernels>::task_head(
                    x.into_dispatch(),
                    pre.weight.val().reshape([c]).into_dispatch(),
                    out.weight.val().into_dispatch(),
                    bias.val().into_dispatch(),
                );
                return Tensor::from_dispatch(y);
            }
        }
    }
    conv2d(out, relu6(conv2d(pre, x)))
}

/// ReLU6, `min(max(x, 0), 6)`, with PyTorch's gradient (passes where 0 < x < 6).
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::relu6(x.into_dispatch()));
    }
    burn::tensor::activation::relu6(x)
}

/// `a · b + c` elementwise, `[N]`: rounded once (a fused multiply-add, as PyTorch's CPU
/// kernels compute BatchNorm's shift `β − μ·α`) on burn-flex outside autodiff; `a * b + c`
/// elsewhere.
pub fn mul_add(a: Tensor<1>, b: Tensor<1>, c: Tensor<1>) -> Tensor<1> {
    #[cfg(feature = "flex")]
    if on_flex(&a) && !a.device().is_autodiff() {
        let device = a.device();
        let v = |t: &Tensor<1>| t.clone().into_data().try_to_vec::<f32>();
        if let (Ok(av), Ok(bv), Ok(cv)) = (v(&a), v(&b), v(&c)) {
            let y: Vec<f32> = av.iter().zip(&bv).zip(&cv).map(|((a, b), c)| a.mul_add(*b, *c)).collect();
            return Tensor::from_data(burn::tensor::TensorData::new(y, [av.len()]), &device);
        }
    }
    a * b + c
}

/// `x · scale[c] + shift[c]`, then ReLU6 if `relu6`, as one pass on burn-flex:
/// `x [B, C, H, W]`, `scale`, `shift` `[C]` → `[B, C, H, W]`. Differentiable on any backend.
pub fn channel_affine(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>, relu6: bool) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) && scale.dtype() == burn::tensor::DType::F32 {
        use flex_ext::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::channel_affine(x.into_dispatch(), scale.into_dispatch(), shift.into_dispatch(), relu6);
        return Tensor::from_dispatch(y);
    }
    let c = scale.dims()[0];
    let y = x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1]);
    if relu6 { self::relu6(y) } else { y }
}

/// A convolution without bias followed by `y · scale[c] + shift[c]` and ReLU6 if `relu6`
/// (inference-mode BatchNorm), as one pass over the output where a fused CPU kernel exists
/// (burn-flex without autodiff: dense 1×1 and depthwise 3×3 convolutions). Gives the input
/// back as `Err` otherwise, for the caller to run the two steps.
pub fn conv_affine(conv: &burn::nn::conv::Conv2d, x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>, relu6: bool) -> Result<Tensor<4>, Tensor<4>> {
    #[cfg(feature = "flex")]
    {
        use flex_ext::HydraKernels;
        let [cout, cin_g, kh, kw] = conv.weight.dims();
        let cin = x.dims()[1];
        let plain = conv.bias.is_none() && conv.dilation == [1, 1] && on_flex(&x) && !x.device().is_autodiff() && scale.dtype() == burn::tensor::DType::F32;
        if plain && [kh, kw] == [1, 1] && conv.groups == 1 && conv.stride == [1, 1] && padded_by(conv, 0) {
            let y = <burn::backend::Dispatch as HydraKernels>::conv1x1_affine(x.into_dispatch(), conv.weight.val().into_dispatch(), scale.into_dispatch(), shift.into_dispatch(), relu6);
            return Ok(Tensor::from_dispatch(y));
        }
        if plain && [kh, kw] == [3, 3] && conv.groups == cin && cin_g == 1 && cout == cin && padded_by(conv, 1) && conv.stride[0] == conv.stride[1] && conv.stride[0] <= 2 {
            let y = <burn::backend::Dispatch as HydraKernels>::depthwise3x3_affine(x.into_dispatch(), conv.weight.val().into_dispatch(), conv.stride[0], scale.into_dispatch(), shift.into_dispatch(), relu6);
            return Ok(Tensor::from_dispatch(y));
        }
    }
    let _ = (conv, &scale, &shift, relu6);
    Err(x)
}

/// Depthwise Chained Residual Pooling (no bias): `x [B, C, H, W]`, `w [stages, C]` →
/// `[B, C, H, W]` with `top = x; per stage: top = maxpool5(top) · w[s]; x = x + top`. Fused
/// per channel plane on burn-flex; the same operations one by one elsewhere.
pub fn crp_depthwise(x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) && w.dtype() == burn::tensor::DType::F32 {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::crp_depthwise(x.into_dispatch(), w.into_dispatch()));
    }
    let [stages, c] = w.dims();
    let mut acc = x.clone();
    let mut top = x;
    for i in 0..stages {
        top = max_pool_5x5(top) * w.clone().slice([i..i + 1, 0..c]).reshape([1, c, 1, 1]);
        acc = acc + top.clone();
    }
    acc
}

/// BatchNorm with batch statistics: `(output, batch mean, biased batch variance)`, the
/// statistics detached. `x: [B, C, H, W]`, `gamma`, `beta`: `[C]`.
pub fn batch_norm_train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    #[cfg(feature = "flex")]
    if on_flex(&x) && gamma.dtype() == burn::tensor::DType::F32 {
        use flex_ext::HydraKernels;
        let (y, m, v) = <burn::backend::Dispatch as HydraKernels>::batch_norm_train(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), epsilon);
        return (Tensor::from_dispatch(y), Tensor::from_dispatch(m), Tensor::from_dispatch(v));
    }
    batch_norm_train_portable(x, gamma, beta, epsilon)
}

/// [`batch_norm_train`] from Burn operations (any backend), with no reduction longer than one
/// image row or column, forward or backward. Burn's own `batch_norm_train` sums all
/// `B · H · W` values of a channel in one reduction, forward and backward; on the CubeCL
/// backends that can be one f32 running sum per channel (measured on wgpu: 2.8e-5 error on a
/// BatchNorm's output at 2 × 120×160, amplified by the training network to 1.8e-3 in the
/// depth loss), and Mesa's lavapipe cuts every shader loop off after 65 535 iterations
/// (channels of 153 600 values summed to 0). Here each channel is summed along the width, then
/// the height, then the batch (1.6e-7 on the same BatchNorm), and per-channel values are spread
/// over `[1, C, H, 1]`, so that the gradients' reductions run along the width and the batch
/// (of that broadcast) and the height (of the repeat).
pub fn batch_norm_train_portable(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let channel_sum = |t: Tensor<4>| t.sum_dim(3).sum_dim(2).sum_dim(0); // [1, C, 1, 1]
    let over_rows = |t: Tensor<4>| t.repeat_dim(2, h); // [1, C, 1, 1] → [1, C, H, 1]
    let mean = channel_sum(x.clone()).div_scalar(n);
    let centered = x - over_rows(mean.clone());
    let variance = channel_sum(centered.clone().powi_scalar(2)).div_scalar(n);
    let scale = variance.clone().add_scalar(epsilon).sqrt().recip() * gamma.reshape([1, c, 1, 1]);
    let output = centered * over_rows(scale) + over_rows(beta.reshape([1, c, 1, 1]));
    (output, mean.reshape([c]).detach(), variance.reshape([c]).detach())
}

/// Mean cross-entropy of `logits: [B, C, H, W]` against `labels: [B, H, W]` over pixels not
/// labelled `ignore` (0, not NaN, when none is valid): `[1]`.
pub fn cross_entropy(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    #[cfg(feature = "flex")]
    if on_flex(&logits) {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::cross_entropy(logits.into_dispatch(), labels.into_dispatch(), ignore));
    }
    cross_entropy_portable(logits, labels, ignore)
}

/// [`cross_entropy`] of `logits [B, C, h, w]` upsampled (bilinear, align_corners = false)
/// to the size of `labels [B, H, W]`, as the reference training computes its loss: `[1]`.
/// On burn-flex, without ever holding the upsampled logits (bit-identical to the two steps).
pub fn upsampled_cross_entropy(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    let [_, _, h, w] = logits.dims();
    let [_, oh, ow] = labels.dims();
    if [h, w] == [oh, ow] {
        return cross_entropy(logits, labels, ignore);
    }
    #[cfg(feature = "flex")]
    if on_flex(&logits) {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::upsampled_cross_entropy(logits.into_dispatch(), labels.into_dispatch(), ignore));
    }
    cross_entropy(resize_bilinear(logits, [oh, ow]), labels, ignore)
}

/// [`cross_entropy`] from Burn operations (any backend).
pub fn cross_entropy_portable(logits: Tensor<4>, labels: Tensor<3, burn::tensor::Int>, ignore: i64) -> Tensor<1> {
    let valid = labels.clone().not_equal_elem(ignore);
    let safe = labels.mask_fill(valid.clone().bool_not(), 0).unsqueeze_dim::<4>(1);
    let logp = burn::tensor::activation::log_softmax(logits, 1).gather(1, safe).squeeze_dim::<3>(1);
    let w = valid.float();
    -(logp * w.clone()).sum() / w.sum().clamp_min(1.0)
}

/// Bilinear resize with `align_corners = false`: `[B, C, H, W]` → `[B, C, oh, ow]`.
pub fn resize_bilinear(x: Tensor<4>, [oh, ow]: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == [oh, ow] {
        return x;
    }
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        use flex_ext::HydraKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as HydraKernels>::bilinear_resize(x.into_dispatch(), oh, ow));
    }
    crate::resize::resize_bilinear_portable(x, [oh, ow])
}
