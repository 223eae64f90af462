//! Convolutions on tensors (PyTorch's `F.conv2d` with a layer's parameters): each case takes
//! hydra's CPU kernel where one exists on burn-flex (dense 1×1, depthwise 3×3, dense 3×3 of
//! the heads and of the stem, and the fused epilogues: `relu6(conv(x) + a)`, the task head,
//! inference-mode BatchNorm) and Burn's operations elsewhere.

use burn::prelude::*;

#[cfg(feature = "flex")]
use crate::on_flex;
use crate::relu6::relu6;

/// Whether `conv` pads every side by exactly `p` (`Valid` is padding 0; `Same` is never
/// taken for a fixed amount).
pub(crate) fn padded_by(conv: &burn::nn::conv::Conv2d, p: usize) -> bool {
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
            use crate::flex::HydraKernels;
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
        use crate::flex::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::depthwise3x3(x.into_dispatch(), conv.weight.val().into_dispatch(), conv.stride[0]);
        return bias(Tensor::from_dispatch(y));
    }
    #[cfg(feature = "flex")]
    if [kh, kw] == [3, 3] && conv.groups == 1 && cin <= 4 && conv.dilation == [1, 1] && padded_by(conv, 1) && conv.stride[0] == conv.stride[1]
        && conv.stride[0] <= 2 && !x.device().is_autodiff() && on_flex(&x) && crate::cpu::conv3x3_few_inputs::has_fma()
    {
        use crate::flex::HydraKernels;
        let y = <burn::backend::Dispatch as HydraKernels>::conv3x3_few_inputs(x.into_dispatch(), conv.weight.val().into_dispatch(), conv.stride[0]);
        return bias(Tensor::from_dispatch(y));
    }
    #[cfg(feature = "flex")]
    if [kh, kw] == [3, 3] && conv.groups == 1 && unit && padded_by(conv, 1) && on_flex(&x) {
        use crate::flex::HydraKernels;
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
            use crate::flex::HydraKernels;
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
                use crate::flex::HydraKernels;
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

/// A convolution without bias followed by `y · scale[c] + shift[c]` and ReLU6 if `relu6`
/// (inference-mode BatchNorm), as one pass over the output where a fused CPU kernel exists
/// (burn-flex without autodiff: dense 1×1 and depthwise 3×3 convolutions). Gives the input
/// back as `Err` otherwise, for the caller to run the two steps.
pub fn conv_affine(conv: &burn::nn::conv::Conv2d, x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>, relu6: bool) -> Result<Tensor<4>, Tensor<4>> {
    #[cfg(feature = "flex")]
    {
        use crate::flex::HydraKernels;
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
