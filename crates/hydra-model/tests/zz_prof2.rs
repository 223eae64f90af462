use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;
#[test]
fn prof2() {
    let d = Device::flex();
    let x = Tensor::<4>::random([1, 256, 120, 160], Distribution::Normal(0.0, 1.0), &d);
    let v = x.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for _ in 0..3 {
        let t = Instant::now(); let (o, _) = hydra_model::kernels::cpu::max_pool5(&v, 256, 120, 160, false); eprint!("kernel {:.1} ms ", t.elapsed().as_secs_f64()*1e3); std::hint::black_box(o);
        let t = Instant::now(); let (o, _) = hydra_model::kernels::cpu::max_pool5(&v, 256, 120, 160, true); eprint!("kernel+arg {:.1} ms ", t.elapsed().as_secs_f64()*1e3); std::hint::black_box(o);
        let t = Instant::now(); let y = hydra_model::max_pool::max_pool_5x5(x.clone()); let _ = y.slice([0..1,0..1,0..1,0..1]).into_scalar::<f32>(); eprint!("tensor {:.1} ms ", t.elapsed().as_secs_f64()*1e3);
        let c = burn::nn::conv::Conv2dConfig::new([256, 256], [1, 1]).with_groups(256).with_bias(false).init(&d);
        let t = Instant::now(); let y = c.forward(x.clone()); let _ = y.slice([0..1,0..1,0..1,0..1]).into_scalar::<f32>(); eprint!("dw1x1 {:.1} ms ", t.elapsed().as_secs_f64()*1e3);
        let t = Instant::now(); let y = x.clone() + x.clone(); let _ = y.slice([0..1,0..1,0..1,0..1]).into_scalar::<f32>(); eprintln!("add {:.1} ms ", t.elapsed().as_secs_f64()*1e3);
    }
}
