//! The dense 1×1 convolution in f32 against bf16 on each bf16 path this CPU has, on the
//! encoder's and decoder's shapes at 480×640 (batch 1), alternating, median of repeats:
//! `cargo run --release -p hydra-model --example bf16_times`.

use std::time::Instant;

use hydra_model::kernels::cpu::conv1x1::conv1x1;
use hydra_model::kernels::cpu::bf16::Bf16Weights;
use hydra_model::kernels::cpu::conv1x1_bf16::conv1x1_bf16;
use hydra_model::kernels::precision::bf16_paths;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::var("PEAK").is_ok() {
        return block_peak();
    }
    let paths: Vec<_> = bf16_paths().unwrap_or_default().into_iter().flat_map(|p| [(p, Bf16Weights::Rounded), (p, Bf16Weights::Split)]).collect();
    // (Cin, Cout, H·W): expansion and projection at 240×320, 120×160, 60×80, 30×40, 15×20; the
    // decoder's 1×1 at 120×160.
    let shapes = [(16, 96, 76800), (96, 24, 19200), (24, 144, 19200), (144, 24, 19200), (32, 192, 4800), (192, 32, 4800), (64, 384, 1200), (384, 64, 1200), (160, 960, 300), (960, 160, 300), (256, 256, 19200)];
    let (mut t32, mut tb) = (0.0, vec![0.0; paths.len()]);
    for &(cin, cout, hw) in &shapes {
        let x: Vec<f32> = (0..cin * hw).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let w: Vec<f32> = (0..cout * cin).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
        let (mut a, mut b) = (Vec::new(), vec![Vec::new(); paths.len()]);
        for _ in 0..15 {
            let t = Instant::now();
            std::hint::black_box(conv1x1(&x, &w, [1, cin, hw], cout, None, None));
            a.push(t.elapsed().as_secs_f64());
            for (k, &(p, wb)) in paths.iter().enumerate() {
                let t = Instant::now();
                std::hint::black_box(conv1x1_bf16(&x, &w, [1, cin, hw], cout, None, None, p, wb));
                b[k].push(t.elapsed().as_secs_f64());
            }
        }
        let m32 = median(a);
        t32 += m32;
        let mut line = format!("{cin:>4}→{cout:<4} hw {hw:>6}: f32 {:7.3} ms", m32 * 1e3);
        for (k, p) in paths.iter().enumerate() {
            let m = median(b[k].clone());
            tb[k] += m;
            line += &format!("  {} {:?} {:7.3} ms ({:.2}×)", p.0.name(), p.1, m * 1e3, m32 / m);
        }
        println!("{line}");
    }
    let mut line = format!("sum: f32 {:.2} ms", t32 * 1e3);
    for (k, p) in paths.iter().enumerate() {
        line += &format!("  {} {:?} {:.2} ms ({:.2}×)", p.0.name(), p.1, tb[k] * 1e3, t32 / tb[k]);
    }
    println!("{line}");
}

#[allow(dead_code)]
fn block_peak() {
    use hydra_model::kernels::cpu::amx;
    let (kp, np) = (256usize, 256usize);
    let a = vec![0x3f80u16; 32 * kp];
    let b = vec![0x3f80_3f80u32; kp / 2 * np];
    let mut c = vec![0f32; 32 * 32];
    hydra_model::kernels::precision::bf16_paths().unwrap();
    unsafe { amx::configure() };
    let n = 20000;
    let t = Instant::now();
    for i in 0..n {
        unsafe { amx::block(a.as_ptr(), None, b.as_ptr().add((i % 8) * 32 * kp / 2), kp / 32, c.as_mut_ptr(), 128) };
    }
    let s = t.elapsed().as_secs_f64();
    unsafe { amx::release() };
    let macs = (n * 32 * 32 * kp) as f64;
    println!("amx block: {:.1} GMAC/s on one thread ({:.0} ns per block of {} k)", macs / s / 1e9, s / n as f64 * 1e9, kp);
}
