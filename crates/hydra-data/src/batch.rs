//! Batches: samples collated on the host, then uploaded as Burn tensors.

use burn::prelude::*;
use burn::tensor::Int;

use crate::normalize::lut;
use crate::sample::Sample;

/// A batch on the host, all samples padded to one size.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Batch size.
    pub len: usize,
    /// Height and width of every sample.
    pub size: [usize; 2],
    /// ImageNet-normalised images `[B, 3, H, W]`.
    pub images: Vec<f32>,
    /// Labels `[B, H, W]`, the ignore value where unlabelled; `None` when no sample has labels.
    pub labels: Option<Vec<i64>>,
    /// Depth in metres `[B, H, W]`, 0 = no measurement; `None` when no sample has depth.
    pub depth: Option<Vec<f32>>,
    /// Normals `[B, 3, H, W]`, zero = unknown; `None` when no sample has normals.
    pub normals: Option<Vec<f32>>,
    /// Per sample: which annotations it has (segmentation, depth, normals).
    pub has_label: Vec<bool>,
    pub has_depth: Vec<bool>,
    pub has_normal: Vec<bool>,
    /// Per sample: dataset index and name.
    pub indices: Vec<usize>,
    pub names: Vec<String>,
    /// Per sample: the size before padding.
    pub valid_size: Vec<[usize; 2]>,
}

/// Collate `(index, sample, valid size)` triples, padding to the largest size (mean colour,
/// ignore label, no depth) so that samples of different sizes can share a batch.
pub fn collate(samples: Vec<(usize, Sample, [usize; 2])>, ignore: u8) -> HostBatch {
    let b = samples.len();
    let h = samples.iter().map(|(_, s, _)| s.rgb.height).max().unwrap_or(0);
    let w = samples.iter().map(|(_, s, _)| s.rgb.width).max().unwrap_or(0);
    let any_label = samples.iter().any(|(_, s, _)| s.label.is_some());
    let any_depth = samples.iter().any(|(_, s, _)| s.depth.is_some());
    let any_normal = samples.iter().any(|(_, s, _)| s.normal.is_some());
    let t = lut();
    let pad = crate::normalize::mean_rgb();
    let mut images = vec![0f32; b * 3 * h * w];
    let mut labels = any_label.then(|| vec![ignore as i64; b * h * w]);
    let mut depth = any_depth.then(|| vec![0f32; b * h * w]);
    let mut normals = any_normal.then(|| vec![0f32; b * 3 * h * w]);
    let mut out = HostBatch {
        len: b,
        size: [h, w],
        images: Vec::new(),
        labels: None,
        depth: None,
        normals: None,
        has_label: Vec::new(),
        has_depth: Vec::new(),
        has_normal: Vec::new(),
        indices: Vec::new(),
        names: Vec::new(),
        valid_size: Vec::new(),
    };
    for (i, (index, s, valid)) in samples.into_iter().enumerate() {
        let (sh, sw) = (s.rgb.height, s.rgb.width);
        for c in 0..3 {
            let plane = &mut images[(i * 3 + c) * h * w..(i * 3 + c + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let v = if y < sh && x < sw { s.rgb.data[(y * sw + x) * 3 + c] } else { pad[c] };
                    plane[y * w + x] = t[c][v as usize];
                }
            }
        }
        if let (Some(dst), Some(l)) = (labels.as_mut(), &s.label) {
            for y in 0..sh {
                for x in 0..sw {
                    dst[i * h * w + y * w + x] = l.data[y * sw + x] as i64;
                }
            }
        }
        if let (Some(dst), Some(d)) = (depth.as_mut(), &s.depth) {
            for y in 0..sh {
                dst[i * h * w + y * w..i * h * w + y * w + sw].copy_from_slice(&d.data[y * sw..(y + 1) * sw]);
            }
        }
        if let (Some(dst), Some(n)) = (normals.as_mut(), &s.normal) {
            for c in 0..3 {
                for y in 0..sh {
                    let o = (i * 3 + c) * h * w + y * w;
                    dst[o..o + sw].copy_from_slice(&n[c * sh * sw + y * sw..c * sh * sw + (y + 1) * sw]);
                }
            }
        }
        out.has_label.push(s.label.is_some());
        out.has_depth.push(s.depth.is_some());
        out.has_normal.push(s.normal.is_some());
        out.indices.push(index);
        out.names.push(s.name);
        out.valid_size.push(valid);
    }
    out.images = images;
    out.labels = labels;
    out.depth = depth;
    out.normals = normals;
    out
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, 3, H, W]` normalised images.
    pub images: Tensor<4>,
    /// `[B, H, W]` class indices (ignore value where unlabelled).
    pub labels: Option<Tensor<3, Int>>,
    /// `[B, H, W]` metres, 0 = no measurement.
    pub depth: Option<Tensor<3>>,
    /// `[B, 3, H, W]` unit normals, zero = unknown.
    pub normals: Option<Tensor<4>>,
}

impl HostBatch {
    /// Upload to `device`.
    pub fn to_device(&self, device: &Device) -> Batch {
        let [h, w] = self.size;
        let b = self.len;
        Batch {
            images: Tensor::from_data(TensorData::new(self.images.clone(), [b, 3, h, w]), device),
            labels: self.labels.as_ref().map(|l| Tensor::from_data(TensorData::new(l.clone(), [b, h, w]), device)),
            depth: self.depth.as_ref().map(|d| Tensor::from_data(TensorData::new(d.clone(), [b, h, w]), device)),
            normals: self.normals.as_ref().map(|n| Tensor::from_data(TensorData::new(n.clone(), [b, 3, h, w]), device)),
        }
    }
}
