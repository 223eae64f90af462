use burn::prelude::*;
use burn::nn::conv::Conv2dConfig;
use std::time::Instant;

fn time(name: &str, macs: f64, mut f: impl FnMut()) {
    f(); f();
    let mut v = vec![];
    for _ in 0..15 { let t = Instant::now(); f(); v.push(t.elapsed().as_secs_f64()); }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v[0];
    println!("{name:40} {:8.2} ms  {:6.1} GMAC/s", m * 1e3, macs / m / 1e9);
}

fn main() {
    let dev = Device::flex();
    let cases: Vec<(&str, usize, usize, usize, usize, usize, usize, usize)> = vec![
        // name, cin, cout, k, groups, h, w, stride
        ("segm 3x3 256->40 @120x160", 256, 40, 3, 1, 120, 160, 1),
        ("depth 3x3 256->1 @120x160", 256, 1, 3, 1, 120, 160, 1),
        ("1x1 256->40 @120x160", 256, 40, 1, 1, 120, 160, 1),
        ("1x1 2304->40 @120x160", 2304, 40, 1, 1, 120, 160, 1),
        ("crp2 1x1 256->256 @60x80", 256, 256, 1, 1, 60, 80, 1),
        ("conv3 1x1 24->256 @120x160", 24, 256, 1, 1, 120, 160, 1),
        ("l3 expand 1x1 16->96 @240x320", 16, 96, 1, 1, 240, 320, 1),
        ("l2 1x1 32->32 @240x320", 32, 32, 1, 1, 240, 320, 1),
        ("dw 3x3 s2 96 @240x320", 96, 96, 3, 96, 240, 320, 2),
        ("dw 3x3 s1 144 @120x160", 144, 144, 3, 144, 120, 160, 1),
        ("stem 3x3 s2 3->32 @480x640", 3, 32, 3, 1, 480, 640, 2),
        ("l8 1x1 960->320 @15x20", 960, 320, 1, 1, 15, 20, 1),
    ];
    for (name, cin, cout, k, g, h, w, s) in cases {
        let conv = Conv2dConfig::new([cin, cout], [k, k]).with_groups(g).with_stride([s, s])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2)).with_bias(false).init(&dev);
        let x = Tensor::<4>::random([1, cin, h, w], burn::tensor::Distribution::Default, &dev);
        let macs = (cout * cin / g * k * k * (h / s) * (w / s)) as f64;
        time(name, macs, || { let y = hydra_model::kernels::conv2d(&conv, x.clone()); let _ = y.into_data(); });
    }
}
