//! Diagnostic: the training forward on wgpu against burn-flex, piece by piece, on the two
//! frames of the SGD-step fixture. Each piece gets flex's input, so a discrepancy shows where
//! it arises rather than where it ends up: every encoder convolution and BatchNorm (batch
//! statistics, running statistics), the decoder's operations, the heads and the losses.
//!
//! `cargo run --release -p hydra-train --features wgpu --example wgpu_vs_flex -- [B H W]`
//! (default 2 480 640: the centre `H×W` crop of the frames). With `lengths` instead, it sums
//! rows of growing length on both devices, the test that exposed lavapipe's loop limit.
//!
//! How it was used: on Mesa's lavapipe, BatchNorm's batch statistics came out wrong from
//! 76 800 values per channel (then the loop limit, see `reduction_check`), and, below that,
//! 100× less precise than flex's (2.8e-5 on a BatchNorm output), which led to
//! `kernels::batch_norm_train_portable`.

use burn::prelude::*;
use hydra_data::batch::{collate, HostBatch};
use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_model::conv_bn::ConvBn;
use hydra_model::decoder::RefineNetDecoder;
use hydra_model::kernels::{conv2d, conv_add_relu6, relu6};
use hydra_model::resize::resize_bilinear;
use hydra_model::{weights, HydraNet, HydraNetConfig};
use std::path::PathBuf;

fn host<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// max |a − b| / max |b|.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    let s = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / s
}

fn to(t: &Tensor<4>, d: &Device) -> Tensor<4> {
    Tensor::from_data(t.to_data(), d)
}

/// Compares `op` on both devices given flex's `x`; returns flex's result.
fn piece(name: &str, x: &Tensor<4>, op: impl Fn(Tensor<4>) -> (Tensor<4>, Tensor<4>)) -> Tensor<4> {
    let (a, b) = op(x.clone());
    println!("{name:32} {:?} {:.2e}", a.dims(), rel(&host(&b), &host(&a)));
    a
}

fn conv_bn(name: &str, a: &ConvBn, b: &ConvBn, x: &Tensor<4>, gpu: &Device) -> Tensor<4> {
    let ya = conv2d(&a.conv, x.clone());
    let yb = conv2d(&b.conv, to(x, gpu));
    let za = a.bn.forward(ya.clone());
    let zb = b.bn.forward(to(&ya, gpu));
    let stats = |bn: &hydra_model::batch_norm::BatchNorm| (host(&bn.running_mean.value_sync()), host(&bn.running_var.value_sync()));
    let ((ma, va), (mb, vb)) = (stats(&a.bn), stats(&b.bn));
    println!(
        "{name:32} {:?} conv {:.2e} bn {:.2e} running mean {:.2e} var {:.2e}",
        ya.dims(),
        rel(&host(&yb), &host(&ya)),
        rel(&host(&zb), &host(&za)),
        rel(&mb, &ma),
        rel(&vb, &va)
    );
    if a.relu6 { relu6(za) } else { za }
}

fn decoder(a: &RefineNetDecoder, b: &RefineNetDecoder, f: &hydra_model::encoder::EncoderFeatures, gpu: &Device) -> Tensor<4> {
    let g = |t: &Tensor<4>| to(t, gpu);
    let size = |t: &Tensor<4>| [t.dims()[2], t.dims()[3]];
    let top = conv2d(&a.conv8, f.l8.clone());
    let r = piece("decoder conv7 + conv8, relu6", &f.l7, |x| {
        (conv_add_relu6(&a.conv7, x.clone(), top.clone()), conv_add_relu6(&b.conv7, g(&x), g(&top)))
    });
    let r = piece("decoder crp4", &r, |x| (a.crp4.forward(x.clone()), b.crp4.forward(g(&x))));
    let r = piece("decoder conv_adapt4", &r, |x| (conv2d(&a.conv_adapt4, x.clone()), conv2d(&b.conv_adapt4, g(&x))));
    let r = piece("decoder resize to layer6", &r, |x| (resize_bilinear(x.clone(), size(&f.l6)), resize_bilinear(g(&x), size(&f.l6))));
    let r = piece("decoder relu6(conv5 + conv6 + r)", &r, |x| {
        let (c5, c6) = (conv2d(&a.conv5, f.l5.clone()), conv2d(&a.conv6, f.l6.clone()));
        (relu6(c5.clone() + c6.clone() + x.clone()), relu6(g(&c5) + g(&c6) + g(&x)))
    });
    let r = piece("decoder crp3", &r, |x| (a.crp3.forward(x.clone()), b.crp3.forward(g(&x))));
    let r = piece("decoder conv_adapt3", &r, |x| (conv2d(&a.conv_adapt3, x.clone()), conv2d(&b.conv_adapt3, g(&x))));
    let r = piece("decoder resize to layer4", &r, |x| (resize_bilinear(x.clone(), size(&f.l4)), resize_bilinear(g(&x), size(&f.l4))));
    let r = piece("decoder conv4 + r, relu6", &r, |x| (conv_add_relu6(&a.conv4, f.l4.clone(), x.clone()), conv_add_relu6(&b.conv4, g(&f.l4), g(&x))));
    let r = piece("decoder crp2", &r, |x| (a.crp2.forward(x.clone()), b.crp2.forward(g(&x))));
    let r = piece("decoder conv_adapt2", &r, |x| (conv2d(&a.conv_adapt2, x.clone()), conv2d(&b.conv_adapt2, g(&x))));
    let r = piece("decoder resize to layer3", &r, |x| (resize_bilinear(x.clone(), size(&f.l3)), resize_bilinear(g(&x), size(&f.l3))));
    let r = piece("decoder conv3 + r, relu6", &r, |x| (conv_add_relu6(&a.conv3, f.l3.clone(), x.clone()), conv_add_relu6(&b.conv3, g(&f.l3), g(&x))));
    piece("decoder crp1", &r, |x| (a.crp1.forward(x.clone()), b.crp1.forward(g(&x))))
}

fn layers(batch: [usize; 3]) {
    let [n, h, w] = batch;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let flex = Device::flex().autodiff();
    let gpu = Device::wgpu(Default::default()).autodiff();
    let file = weights::read(&fixtures.join("pytorch/hydranet40_s0.ckpt")).unwrap();
    let load = |d: &Device| -> HydraNet { file.apply(HydraNetConfig::new(40).init(d), weights::LoadScope::Full).unwrap().0 };
    let (na, nb) = (load(&flex), load(&gpu));
    let dir = std::env::temp_dir().join("hydra-wgpu-vs-flex");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("list.txt"), "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n").unwrap();
    let spec = SourceSpec::List { root: fixtures.join("samples/nyud"), list: dir.join("list.txt"), depth_scale: 5000.0, label_palette: None };
    let (ds, _) = open(&spec, &OpenOptions::default()).unwrap();
    let sample = |i: usize| {
        let (top, left) = ((h as isize - 480) / 2, (w as isize - 640) / 2);
        (i, hydra_data::augment::place(ds.get(i % 2).unwrap(), [h, w], top, left, 255), [h, w])
    };
    let host_batch: HostBatch = collate((0..n).map(sample).collect(), 255);
    let (ba, bb) = (host_batch.to_device(&flex), host_batch.to_device(&gpu));

    let mut x = conv_bn("layer1", &na.encoder.stem, &nb.encoder.stem, &ba.images, &gpu);
    for (s, (sa, sb)) in na.encoder.stages.iter().zip(&nb.encoder.stages).enumerate() {
        for (j, (a, b)) in sa.iter().zip(sb).enumerate() {
            let p = format!("layer{}.{j}", s + 2);
            let y = conv_bn(&format!("{p} expand"), &a.expand, &b.expand, &x, &gpu);
            let y = conv_bn(&format!("{p} depthwise"), &a.depthwise, &b.depthwise, &y, &gpu);
            let y = conv_bn(&format!("{p} project"), &a.project, &b.project, &y, &gpu);
            x = if a.residual { x + y } else { y };
        }
    }
    let (fa, fb) = (na.encoder.forward(ba.images.clone()), nb.encoder.forward(bb.images.clone()));
    println!("whole encoder, each on its own: layer3 {:.2e}, layer8 {:.2e}", rel(&host(&fb.l3), &host(&fa.l3)), rel(&host(&fb.l8), &host(&fa.l8)));
    let d = decoder(&na.decoder, &nb.decoder, &fa, &gpu);
    for (name, ha, hb) in [("segm", &na.segm, &nb.segm), ("depth", &na.depth, &nb.depth)] {
        let (ha, hb) = (ha.as_ref().unwrap(), hb.as_ref().unwrap());
        let y = piece(&format!("head {name}"), &d, |x| (ha.forward(x.clone()), hb.forward(to(&x, &gpu))));
        let (la, lb) = if name == "depth" {
            let loss = |p: Tensor<4>, t: Tensor<3>| hydra_train::loss::depth_loss(resize_bilinear(p, [h, w]), t, hydra_train::loss::DepthLoss::L1);
            (loss(y.clone(), ba.depth.clone().unwrap()), loss(to(&y, &gpu), bb.depth.clone().unwrap()))
        } else {
            let loss = |p: Tensor<4>, l| hydra_model::kernels::upsampled_cross_entropy(p, l, 255);
            (loss(y.clone(), ba.labels.clone().unwrap()), loss(to(&y, &gpu), bb.labels.clone().unwrap()))
        };
        println!("  {name} loss on flex's prediction: flex {} wgpu {}", la.into_scalar::<f32>(), lb.into_scalar::<f32>());
    }
}

/// Rows of `l` values summed on both devices: a driver with a loop limit drops values.
fn lengths() {
    let flex = Device::flex();
    let gpu = Device::wgpu(Default::default());
    for l in [32_768usize, 65_536, 70_000, 131_072, 614_400] {
        let v: Vec<f32> = (0..4 * l).map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 1000.0).collect();
        let sums = |d: &Device| host(&Tensor::<2>::from_data(TensorData::new(v.clone(), [4, l]), d).sum_dim(1));
        println!("4 rows of {l:7}: wgpu {:?} flex {:?}", sums(&gpu), sums(&flex));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("lengths") {
        return lengths();
    }
    let num = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    layers([num(0, 2), num(1, 480), num(2, 640)]);
}
