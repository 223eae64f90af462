use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_model::HydraNetConfig;
use std::time::Instant;
#[test]
fn prof() {
    let d = Device::flex();
    let net = HydraNetConfig::new(40).init(&d);
    let x = Tensor::<4>::random([1, 3, 480, 640], Distribution::Normal(0.0, 1.0), &d);
    let sync = |t: &Tensor<4>| { let _ = t.clone().slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>(); };
    for _ in 0..2 {
        let t0 = Instant::now();
        let mut y = net.encoder.stem.forward(x.clone()); sync(&y);
        eprint!("stem {:.0} ", t0.elapsed().as_secs_f64()*1e3);
        for (i, st) in net.encoder.stages.iter().enumerate() {
            let t = Instant::now(); for b in st { y = b.forward(y); } sync(&y);
            eprint!("L{} {:.0} ", i + 2, t.elapsed().as_secs_f64()*1e3);
        }
        let f = net.encoder.forward(x.clone());
        let t = Instant::now(); let dec = net.decoder.forward(f.clone()); sync(&dec); eprint!("| dec {:.0} ", t.elapsed().as_secs_f64()*1e3);
        let t = Instant::now(); let r = net.decoder.crp1.forward(f.l3.clone().slice([0..1,0..24,0..120,0..160]).repeat_dim(1, 11).slice([0..1, 0..256, 0..120, 0..160])); sync(&r); eprint!("crp1 {:.0} ", t.elapsed().as_secs_f64()*1e3);
        let t = Instant::now(); let s = net.segm.as_ref().unwrap().forward(dec.clone()); sync(&s); eprint!("segm head {:.0} ", t.elapsed().as_secs_f64()*1e3);
        let t = Instant::now(); let s = net.depth.as_ref().unwrap().forward(dec.clone()); sync(&s); eprint!("depth head {:.0} ", t.elapsed().as_secs_f64()*1e3);
        let t = Instant::now(); let o = net.forward(x.clone()); sync(o.segm.as_ref().unwrap()); eprintln!("| total {:.0}", t.elapsed().as_secs_f64()*1e3);
    }
}
