//! The official-layout PyTorch checkpoint gives PyTorch's outputs (fixtures made by PyTorch).
//!
//! Tolerance: the bar, max |err| ≤ 1e-4 × max |ref| for both heads, and the argmax
//! of the logits agreeing on every pixel but a near-tie or two. hydra reaches it by computing
//! what PyTorch's CPU kernels compute, in their order, wherever that order is known: inference
//! BatchNorm as `fma(x, α, fma(−μ, α, β))`, the depthwise 3×3 taps row by row in one fused
//! multiply-add chain from zero, the stem's 27 taps in (ky, kx, c) order, and the 1×1
//! convolutions on planes of 30×40 and more as one fused chain over the input channels. These
//! are bit-identical to PyTorch (oneDNN) layer by layer; what remains comes from the 1×1
//! convolutions on the 15×20 planes and with 576 or 960 inputs, and from the 3×3 heads, where
//! oneDNN blocks the sum in another way. For scale: PyTorch on one thread instead of two is
//! 3.4e-5 / 5.4e-5 from its own fixture, its native kernels instead of oneDNN 3.8e-4 / 6.1e-4
//! (`scripts/parity_budget.py`); a real defect (align_corners, BatchNorm variance, a swapped
//! key) gives 1e-2 or more.

mod common;

use burn::tensor::Device;
use common::{fixtures, max_errors};
use hydra_data::{image_io, npy};
use hydra_model::weights::{self, KeyLayout, WeightFormat};
use hydra_train::predict::predict;

#[test]
fn legacy_checkpoint_reproduces_pytorch_outputs_on_a_real_frame() {
    let device = Device::flex();
    let (model, file) = weights::load_model(&fixtures().join("pytorch/hydranet40_s0.ckpt"), None, &device).unwrap();
    assert_eq!(file.format, WeightFormat::TorchLegacy);
    assert_eq!(file.layout, KeyLayout::Reference);
    assert_eq!(file.container, "state_dict");
    assert_eq!(file.state.len(), 343, "343 entries with num_batches_tracked");
    assert_eq!(model.config().num_classes, 40);

    let img = image_io::read_rgb(&fixtures().join("samples/nyud/000464.png")).unwrap();
    check(&predict(&model, &device, &img));
    // With BatchNorm folded into the convolutions (`hydra bench --fold-bn`) the outputs stay
    // within PyTorch's float32 distance from float64 (3.4e-4 / 5.5e-4, scripts/parity_budget.py).
    let folded = predict(&model.fold_batch_norm(), &device, &img);
    let segm_ref = npy::read(&fixtures().join("pytorch/hydranet40_s0_000464_segm.npy")).unwrap().to_f32();
    let (err, scale) = max_errors(folded.segm_logits.as_ref().unwrap(), &segm_ref);
    eprintln!("folded: segm ratio {:e}", err / scale);
    assert!(err <= 5e-4 * scale);
}

fn check(pred: &hydra_train::predict::ImagePrediction) {
    assert_eq!(pred.output_size, [120, 160]);

    let segm_ref = npy::read(&fixtures().join("pytorch/hydranet40_s0_000464_segm.npy")).unwrap();
    assert_eq!(segm_ref.shape, vec![40, 120, 160]);
    let ours = pred.segm_logits.as_ref().unwrap();
    let reference = segm_ref.to_f32();
    let (err, scale) = max_errors(ours, &reference);
    eprintln!("segm: max abs err {err:e}, max |ref| {scale}, ratio {:e}", err / scale);
    assert!(err <= SEGM_BOUND * scale, "segm err {err} > {SEGM_BOUND} × {scale}");
    let agree = argmax_agreement(ours, &reference, 40, 120 * 160);
    eprintln!("segm: argmax agrees on {:.4} % of pixels", agree * 100.0);
    assert!(agree >= 0.9999, "argmax agreement {agree}");

    let depth_ref = npy::read(&fixtures().join("pytorch/hydranet40_s0_000464_depth.npy")).unwrap();
    assert_eq!(depth_ref.shape, vec![120, 160]);
    let (err, scale) = max_errors(pred.depth_raw.as_ref().unwrap(), &depth_ref.to_f32());
    eprintln!("depth: max abs err {err:e}, max |ref| {scale}, ratio {:e}", err / scale);
    assert!(err <= DEPTH_BOUND * scale, "depth err {err} > {DEPTH_BOUND} × {scale}");
}

/// The parity bar, for both heads.
const SEGM_BOUND: f32 = 1e-4;
const DEPTH_BOUND: f32 = 1e-4;

fn argmax_agreement(a: &[f32], b: &[f32], c: usize, hw: usize) -> f64 {
    let argmax = |v: &[f32], i: usize| (0..c).max_by(|&x, &y| v[x * hw + i].total_cmp(&v[y * hw + i])).unwrap();
    (0..hw).filter(|&i| argmax(a, i) == argmax(b, i)).count() as f64 / hw as f64
}
