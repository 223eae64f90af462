//! Where an inference at 480×640 spends its time: the whole network and each stage
//! (encoder, stem, decoder, crp1, heads) run on their own, the third-fastest of 12 runs, in
//! ms, on burn-flex. For profiling work on the CPU kernels; `hydra bench` is the benchmark.
//!
//! `cargo run --release -p hydra-model --example stage_times [bf16]`

use burn::prelude::*;
use hydra_model::HydraNetConfig;
use std::time::Instant;

/// The third-fastest of 12 runs of `f`, in ms.
fn best<T>(mut f: impl FnMut() -> T) -> f64 {
    let mut v = vec![];
    for _ in 0..12 {
        let t = Instant::now();
        let r = f();
        v.push(t.elapsed().as_secs_f64());
        drop(r);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[2] * 1e3
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("bf16") {
        hydra_model::kernels::set_precision(hydra_model::kernels::Precision::Bf16).expect("a CPU with a bf16 path");
    }
    let dev = Device::flex();
    let net = HydraNetConfig::new(40).init(&dev);
    let x = Tensor::<4>::random([1, 3, 480, 640], burn::tensor::Distribution::Default, &dev);
    let total = best(|| net.forward(x.clone()));
    let enc = best(|| net.encoder.forward(x.clone()));
    let f = net.encoder.forward(x.clone());
    let dec = best(|| net.decoder.forward(f.clone()));
    let d = net.decoder.forward(f.clone());
    let segm = best(|| net.segm.as_ref().unwrap().forward(d.clone()));
    let depth = best(|| net.depth.as_ref().unwrap().forward(d.clone()));
    let crp1 = best(|| net.decoder.crp1.forward(d.clone()));
    let stem = best(|| net.encoder.stem.forward(x.clone()));
    println!("total {total:.1} ms: encoder {enc:.1} (stem {stem:.1}), decoder {dec:.1} (crp1 {crp1:.1}), segm {segm:.1}, depth {depth:.1}");
    // Each encoder stage on its own (layer1 is the stem; layer2..8 the inverted residual stages).
    let mut xs = net.encoder.stem.forward(x.clone());
    let mut layers = vec![format!("layer1 {stem:.1}")];
    for (i, stage) in net.encoder.stages.iter().enumerate() {
        let input = xs.clone();
        let t = best(|| stage.iter().fold(input.clone(), |x, b| b.forward(x)));
        layers.push(format!("layer{} {t:.1}", i + 2));
        xs = stage.iter().fold(xs, |x, b| b.forward(x));
    }
    println!("encoder: {}", layers.join(", "));
    // The decoder's stride-8 → stride-4 step on its own: crp2, conv_adapt2, the upsample to
    // stride 4, conv3 with the add and ReLU6.
    let dn = &net.decoder;
    let [_, w, h4, w4] = d.dims();
    let r8 = Tensor::<4>::random([1, w, h4 / 2, w4 / 2], burn::tensor::Distribution::Default, &dev);
    let crp2 = best(|| dn.crp2.forward(r8.clone()));
    let adapt2 = best(|| hydra_model::kernels::conv2d(&dn.conv_adapt2, r8.clone()));
    let up = best(|| hydra_model::resize::resize_bilinear(r8.clone(), [h4, w4]));
    let l3 = f.l3.clone();
    let conv3 = best(|| hydra_model::kernels::conv_add_relu6(&dn.conv3, l3.clone(), d.clone()));
    let r16 = Tensor::<4>::random([1, w, h4 / 4, w4 / 4], burn::tensor::Distribution::Default, &dev);
    let crp3 = best(|| dn.crp3.forward(r16.clone()));
    let pool8 = best(|| hydra_model::max_pool::max_pool_5x5(r8.clone()));
    let add8 = best(|| r8.clone() + r16.clone().repeat_dim(2, 2).repeat_dim(3, 2));
    let rep8 = best(|| r16.clone().repeat_dim(2, 2).repeat_dim(3, 2));
    println!("stride 8: max_pool {pool8:.2}, add {:.2}", add8 - rep8);
    println!("stride 8 → 4: crp2 {crp2:.1}, conv_adapt2 {adapt2:.1}, upsample {up:.1}, conv3+add+relu6 {conv3:.1}; crp3 {crp3:.1}");
}
