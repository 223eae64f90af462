//! Inference on images: the network's raw outputs, and the files `hydra predict` writes.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use hydra_data::image_io::{self, Plane, RgbImage};
use hydra_data::normalize::normalize_chw;
use hydra_data::npy;
use hydra_data::palette::Palette;
use hydra_model::resize::resize_bilinear;
use hydra_model::HydraNet;

use crate::colormap::turbo;

/// The network's outputs for one image.
#[derive(Debug, Clone)]
pub struct ImagePrediction {
    /// Input size (height, width).
    pub input_size: [usize; 2],
    /// Output size (height, width) at stride 4.
    pub output_size: [usize; 2],
    /// Raw segmentation logits `[C, h, w]`, if the network segments.
    pub segm_logits: Option<Vec<f32>>,
    /// Number of classes.
    pub num_classes: usize,
    /// Raw depth `[h, w]`, if the network predicts depth.
    pub depth_raw: Option<Vec<f32>>,
    /// Labels at input resolution (argmax of the bilinearly upsampled logits).
    pub labels: Option<Plane<u8>>,
    /// |depth| at input resolution (bilinearly upsampled), metres.
    pub depth: Option<Plane<f32>>,
    /// Raw normals `[3, h, w]`, if the network predicts them.
    pub normal_raw: Option<Vec<f32>>,
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data")
}

/// Normalise `img`, run `model` (inference mode) on `device`, and read back raw and
/// full-resolution outputs.
pub fn predict(model: &HydraNet, device: &Device, img: &RgbImage) -> ImagePrediction {
    let (h, w) = (img.height, img.width);
    let x = Tensor::<4>::from_data(TensorData::new(normalize_chw(&img.data, w, h), [1, 3, h, w]), device);
    let out = model.forward(x);
    let mut output_size = [0, 0];
    let mut num_classes = 0;
    let (segm_logits, labels) = match out.segm {
        Some(s) => {
            let [_, c, oh, ow] = s.dims();
            output_size = [oh, ow];
            num_classes = c;
            let up = resize_bilinear(s.clone(), [h, w]);
            let arg = up.argmax(1).reshape([h * w]);
            let labels: Vec<u8> = arg
                .into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .expect("int data")
                .into_iter()
                .map(|v| v.clamp(0, 255) as u8)
                .collect();
            (Some(host(s)), Some(Plane { width: w, height: h, data: labels }))
        }
        None => (None, None),
    };
    let (depth_raw, depth) = match out.depth {
        Some(d) => {
            let [_, _, oh, ow] = d.dims();
            output_size = [oh, ow];
            let up = resize_bilinear(d.clone(), [h, w]).abs();
            (Some(host(d)), Some(Plane { width: w, height: h, data: host(up) }))
        }
        None => (None, None),
    };
    let normal_raw = out.normal.map(|n| {
        let [_, _, oh, ow] = n.dims();
        output_size = [oh, ow];
        host(n)
    });
    ImagePrediction { input_size: [h, w], output_size, segm_logits, num_classes, depth_raw, labels, depth, normal_raw }
}

/// How predictions are written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Colours of the segmentation classes.
    pub palette: Palette,
    /// `_depth16.png` values = metres × this scale (5000 = NYUv2 convention).
    pub depth16_scale: f32,
    /// Also write the raw `.npy` outputs.
    pub raw: bool,
}

/// The range of depth used for the colour map, in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthRange {
    pub min: f32,
    pub max: f32,
}

/// The files of one image, as (final path, bytes), and the depth range.
pub fn render(pred: &ImagePrediction, stem: &str, dir: &Path, opts: &WriteOptions) -> (Vec<(PathBuf, Vec<u8>)>, Option<DepthRange>) {
    let mut files = Vec::new();
    let mut range = None;
    if let Some(labels) = &pred.labels {
        let palette = opts.palette.clone().extended_to(pred.num_classes);
        let data = labels.data.iter().flat_map(|&l| palette.color(l as usize)).collect();
        let img = RgbImage { width: labels.width, height: labels.height, data };
        files.push((dir.join(format!("{stem}_segm.png")), image_io::encode_rgb_png(&img, &[("classes", pred.num_classes.to_string())])));
    }
    if let Some(depth) = &pred.depth {
        let finite = depth.data.iter().copied().filter(|v| v.is_finite());
        let (min, max) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (min, max) = if min.is_finite() { (min, max) } else { (0.0, 0.0) };
        range = Some(DepthRange { min, max });
        let span = (max - min).max(1e-6);
        let data = depth.data.iter().flat_map(|&v| turbo((v - min) / span)).collect();
        let img = RgbImage { width: depth.width, height: depth.height, data };
        let text = [
            ("depth_min_m", format!("{min}")),
            ("depth_max_m", format!("{max}")),
            ("colormap", "turbo (near = blue, far = red)".to_string()),
        ];
        files.push((dir.join(format!("{stem}_depth.png")), image_io::encode_rgb_png(&img, &text)));
        let scale = opts.depth16_scale;
        let d16 = Plane {
            width: depth.width,
            height: depth.height,
            data: depth.data.iter().map(|&v| (v * scale).round().clamp(0.0, 65535.0) as u16).collect(),
        };
        let text = [("depth_scale", format!("{scale}")), ("unit", "metres = value / depth_scale".to_string())];
        files.push((dir.join(format!("{stem}_depth16.png")), image_io::encode_gray16_png(&d16, &text)));
    }
    if let Some(n) = &pred.normal_raw {
        let [h, w] = pred.output_size;
        let mut data = Vec::with_capacity(h * w * 3);
        for i in 0..h * w {
            let v = [n[i], n[h * w + i], n[2 * h * w + i]];
            let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-6);
            data.extend(v.map(|c| (((c / len) + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8));
        }
        files.push((dir.join(format!("{stem}_normal.png")), image_io::encode_rgb_png(&RgbImage { width: w, height: h, data }, &[])));
    }
    if opts.raw {
        let [h, w] = pred.output_size;
        if let Some(s) = &pred.segm_logits {
            files.push((dir.join(format!("{stem}_segm.npy")), npy::to_bytes_f32(&[pred.num_classes, h, w], s)));
        }
        if let Some(d) = &pred.depth_raw {
            files.push((dir.join(format!("{stem}_depth.npy")), npy::to_bytes_f32(&[h, w], d)));
        }
        if let Some(n) = &pred.normal_raw {
            files.push((dir.join(format!("{stem}_normal.npy")), npy::to_bytes_f32(&[3, h, w], n)));
        }
    }
    (files, range)
}

/// The names `render` gives the files of an image with file stem `stem`.
pub fn output_names(stem: &str) -> Vec<String> {
    ["segm.png", "depth.png", "depth16.png", "normal.png", "segm.npy", "depth.npy", "normal.npy"].iter().map(|s| format!("{stem}_{s}")).collect()
}

/// Write a group of files so that either all appear or none: each goes to a temporary file
/// first; only when all are written are they renamed into place. Like every writer of
/// hydra's, it replaces regular files only (`fsio::destination`) and none of `inputs`.
pub fn write_group(files: &[(PathBuf, Vec<u8>)], inputs: &hydra_model::fsio::Inputs) -> Result<(), (PathBuf, std::io::Error)> {
    use hydra_model::fsio;
    use std::io::Write;
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, PathBuf)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        let r = (|| {
            inputs.check(path)?;
            let dest = fsio::destination(path)?;
            let (tmp, mut f) = fsio::create_temp(&dest)?;
            temps.push((tmp, dest));
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = r {
            cleanup(&temps);
            return Err((path.clone(), e));
        }
    }
    for (i, (path, _)) in files.iter().enumerate() {
        let (tmp, dest) = &temps[i];
        if let Err(e) = fsio::commit(tmp, dest) {
            cleanup(&temps[i + 1..]);
            return Err((path.clone(), e));
        }
    }
    Ok(())
}
