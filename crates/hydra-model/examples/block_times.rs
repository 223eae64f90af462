//! Each inverted residual block of HydraNet's encoder at 480×640, fused (`InvertedResidual::
//! forward`, one kernel per band of rows) against its three layers run one after the other
//! (`ConvBn::forward` each, the unfused path), alternating in one process; the fastest of 15
//! runs each, in ms, with the trained weights of `fixtures/trained/synthetic6.bpk` (so that the
//! activations have a trained network's magnitudes). For profiling work on the CPU kernels;
//! `hydra bench` is the benchmark.
//!
//! `cargo run --release -p hydra-model --example block_times`

use burn::prelude::*;
use std::time::Instant;

fn main() {
    let dev = Device::flex();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/trained/synthetic6.bpk");
    let (net, _) = hydra_model::weights::load_model(&path, None, &dev).expect("the trained fixture");
    let enc = net.encoder;
    let x = Tensor::<4>::random([1, 3, 480, 640], burn::tensor::Distribution::Default, &dev);
    let mut x = enc.stem.forward(x);
    let (mut fused_total, mut plain_total) = (0.0, 0.0);
    println!("{:34} {:>9} {:>9} {:>6}", "block", "fused", "layers", "ratio");
    for (si, stage) in enc.stages.iter().enumerate() {
        for (bi, block) in stage.iter().enumerate() {
            let mut best = [f64::MAX; 2];
            for rep in 0..17 {
                for (i, best) in best.iter_mut().enumerate() {
                    let t = Instant::now();
                    let y = if i == 0 {
                        block.forward(x.clone())
                    } else {
                        let y = block.project.forward(block.depthwise.forward(block.expand.forward(x.clone())));
                        if block.residual { x.clone() + y } else { y }
                    };
                    drop(y.into_data());
                    if rep >= 2 {
                        *best = best.min(t.elapsed().as_secs_f64());
                    }
                }
            }
            let [_, cin, h, w] = x.dims();
            let [mid, ..] = block.expand.conv.weight.dims();
            let name = format!("stage {si} block {bi}: {cin}->{mid} @{h}x{w} s{}", block.depthwise.conv.stride[0]);
            println!("{name:34} {:8.2}  {:8.2}  {:5.2}", best[0] * 1e3, best[1] * 1e3, best[1] / best[0]);
            fused_total += best[0];
            plain_total += best[1];
            x = block.forward(x);
        }
    }
    println!("{:34} {:8.2}  {:8.2}  {:5.2}", "all blocks", fused_total * 1e3, plain_total * 1e3, plain_total / fused_total);
}
