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
}
