//! Per-layer convolution throughput on burn-flex: hydra's convolution paths
//! (`kernels::conv2d`) against Burn's generic `conv2d`, alternating in one process so that
//! both see the same machine state; the fastest of 15 runs each, in GMAC/s.
//!
//! `cargo run --release -p hydra-model --example layer_times`

use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use std::time::Instant;

fn main() {
    let dev = Device::flex();
    // name, cin, cout, kernel, groups, h, w, stride: HydraNet's layers at 480×640.
    let cases: Vec<(&str, usize, usize, usize, usize, usize, usize, usize)> = vec![
        ("segm 3x3 256->40 @120x160", 256, 40, 3, 1, 120, 160, 1),
        ("depth 3x3 256->1 @120x160", 256, 1, 3, 1, 120, 160, 1),
        ("crp2 1x1 256->256 @60x80", 256, 256, 1, 1, 60, 80, 1),
        ("conv3 1x1 24->256 @120x160", 24, 256, 1, 1, 120, 160, 1),
        ("l3 expand 1x1 16->96 @240x320", 16, 96, 1, 1, 240, 320, 1),
        ("l2 1x1 32->32 @240x320", 32, 32, 1, 1, 240, 320, 1),
        ("l8 1x1 960->320 @15x20", 960, 320, 1, 1, 15, 20, 1),
        ("dw 3x3 s2 96 @240x320", 96, 96, 3, 96, 240, 320, 2),
        ("dw 3x3 s1 144 @120x160", 144, 144, 3, 144, 120, 160, 1),
        ("stem 3x3 s2 3->32 @480x640", 3, 32, 3, 1, 480, 640, 2),
    ];
    println!("{:32} {:>16} {:>16}", "layer", "hydra", "burn conv2d");
    for (name, cin, cout, k, g, h, w, s) in cases {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_groups(g)
            .with_stride([s, s])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .with_bias(false)
            .init(&dev);
        let x = Tensor::<4>::random([1, cin, h, w], burn::tensor::Distribution::Default, &dev);
        let macs = (cout * cin / g * k * k * h.div_ceil(s) * w.div_ceil(s)) as f64;
        let mut best = [f64::MAX; 2];
        for rep in 0..17 {
            for (i, best) in best.iter_mut().enumerate() {
                let t = Instant::now();
                let y = if i == 0 { hydra_model::kernels::conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
                drop(y.into_data());
                if rep >= 2 {
                    *best = best.min(t.elapsed().as_secs_f64());
                }
            }
        }
        let show = |t: f64| format!("{:6.2} ms {:5.1}", t * 1e3, macs / t / 1e9);
        println!("{name:32} {:>16} {:>16}", show(best[0]), show(best[1]));
    }
}
