//! Layer-by-layer parity with PyTorch: runs each module of a checkpoint's network on the input
//! PyTorch recorded for it and writes hydra's output beside PyTorch's, so that every layer's
//! own float32 difference shows, without the amplification of the layers before it.
//! `scripts/layer_parity.py` records the inputs, runs this and prints the table:
//!
//! `cargo build --release -p hydra-model --example layer_parity && python scripts/layer_parity.py CKPT IMAGE DIR`
//!
//! Here: `layer_parity DIR CKPT`, with `DIR/names.txt` (module names, PyTorch's keys) and
//! `DIR/{name}.in.npy` (float32); writes `DIR/{name}.rs.bin` (raw little-endian float32) and
//! `DIR/net_{segm,depth}.rs.bin`, the whole network on `DIR/input.npy`.
use burn::prelude::*;
use burn::tensor::TensorData;
use std::path::Path;

/// A little-endian float32 C-order `.npy` file: (shape, values).
fn read_npy(p: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(p).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let s = &h[h.find("'shape': (").unwrap() + 10..];
    let s = &s[..s.find(')').unwrap()];
    let shape: Vec<usize> = s.split(',').filter(|t| !t.trim().is_empty()).map(|t| t.trim().parse().unwrap()).collect();
    let data = b[10 + hl..].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (shape, data)
}

/// The tensor's values as raw little-endian float32.
fn write_raw(p: &Path, t: Tensor<4>) {
    let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
    let mut b = Vec::with_capacity(v.len() * 4);
    for x in v { b.extend_from_slice(&x.to_le_bytes()); }
    std::fs::write(p, b).unwrap();
}

fn main() {
    let dev = Device::flex();
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, ckpt] = args.as_slice() else {
        eprintln!("usage: layer_parity DIR CKPT");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let (net, _) = hydra_model::weights::load_model(Path::new(ckpt), None, &dev).unwrap();
    let names = std::fs::read_to_string(dir.join("names.txt")).unwrap();
    for name in names.lines() {
        let (shape, data) = read_npy(&dir.join(format!("{name}.in.npy")));
        let x = Tensor::<4>::from_data(TensorData::new(data, shape), &dev);
        let p: Vec<&str> = name.split('.').collect();
        let d = &net.decoder;
        let y = match p.as_slice() {
            ["layer1"] => net.encoder.stem.forward(x),
            [l, j] if l.starts_with("layer") && *l != "layer1" => net.encoder.stages[l[5..].parse::<usize>().unwrap() - 2][j.parse::<usize>().unwrap()].forward(x),
            [l, j, "output", k] => {
                let b = &net.encoder.stages[l[5..].parse::<usize>().unwrap() - 2][j.parse::<usize>().unwrap()];
                [&b.expand, &b.depthwise, &b.project][k.parse::<usize>().unwrap()].forward(x)
            }
            ["conv3"] => hydra_model::kernels::conv2d(&d.conv3, x),
            ["conv4"] => hydra_model::kernels::conv2d(&d.conv4, x),
            ["conv5"] => hydra_model::kernels::conv2d(&d.conv5, x),
            ["conv6"] => hydra_model::kernels::conv2d(&d.conv6, x),
            ["conv7"] => hydra_model::kernels::conv2d(&d.conv7, x),
            ["conv8"] => hydra_model::kernels::conv2d(&d.conv8, x),
            ["conv_adapt2"] => hydra_model::kernels::conv2d(&d.conv_adapt2, x),
            ["conv_adapt3"] => hydra_model::kernels::conv2d(&d.conv_adapt3, x),
            ["conv_adapt4"] => hydra_model::kernels::conv2d(&d.conv_adapt4, x),
            ["crp1"] => d.crp1.forward(x),
            ["crp2"] => d.crp2.forward(x),
            ["crp3"] => d.crp3.forward(x),
            ["crp4"] => d.crp4.forward(x),
            ["pre_segm"] => hydra_model::kernels::conv2d(&net.segm.as_ref().unwrap().pre, x),
            ["segm"] => hydra_model::kernels::conv2d(&net.segm.as_ref().unwrap().out, x),
            ["pre_depth"] => hydra_model::kernels::conv2d(&net.depth.as_ref().unwrap().pre, x),
            ["depth"] => hydra_model::kernels::conv2d(&net.depth.as_ref().unwrap().out, x),
            _ => continue,
        };
        write_raw(&dir.join(format!("{name}.rs.bin")), y);
    }
    // Whole network on PyTorch's input.
    let (shape, data) = read_npy(&dir.join("input.npy"));
    let out = net.forward(Tensor::<4>::from_data(TensorData::new(data, shape), &dev));
    write_raw(&dir.join("net_segm.rs.bin"), out.segm.unwrap());
    write_raw(&dir.join("net_depth.rs.bin"), out.depth.unwrap());
}
