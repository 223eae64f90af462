//! Joint augmentation of RGB, labels, depth and normals, deterministic from
//! (seed, epoch, sample index): random scale, random crop with padding, horizontal flip, and
//! photometric jitter on RGB only. Labels, depth and normals are resized with nearest
//! neighbour, so depth is never interpolated across missing pixels; padding is the mean
//! colour for RGB, the ignore label for labels, 0 (no measurement) for depth.

use hydra_core::SplitMix64;

use crate::image_io::{Plane, RgbImage};
use crate::normalize::mean_rgb;
use crate::sample::Sample;

/// What augmentation does.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentSpec {
    /// Random scale factor range; `[1, 1]` disables.
    pub scale: [f64; 2],
    /// Random crop (height, width), padding when the image is smaller; `None` disables.
    pub crop: Option<[usize; 2]>,
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
    /// Brightness, contrast and saturation factors drawn from [1 − j, 1 + j]; 0 disables.
    pub jitter: f64,
}

/// The generator for sample `index` in `epoch` of a run seeded `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> SplitMix64 {
    let mut g = SplitMix64::stream(seed ^ 0xA11C_E5ED_0000_0001, epoch);
    SplitMix64::stream(g.next_u64(), index)
}

/// Nearest-neighbour source index (pixel centres aligned, as PyTorch's `nearest-exact`).
fn nearest_index(dst: usize, n_in: usize, n_out: usize) -> usize {
    (((dst as f64 + 0.5) * n_in as f64 / n_out as f64) as usize).min(n_in - 1)
}

/// Resize a planar multi-channel buffer `[c, h, w]` with nearest neighbour.
pub fn resize_nearest<T: Copy>(data: &[T], channels: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<T> {
    let xs: Vec<usize> = (0..ow).map(|x| nearest_index(x, w, ow)).collect();
    let mut out = Vec::with_capacity(channels * oh * ow);
    for c in 0..channels {
        for y in 0..oh {
            let row = &data[c * h * w + nearest_index(y, h, oh) * w..];
            out.extend(xs.iter().map(|&x| row[x]));
        }
    }
    out
}

/// Resize RGB bilinearly (pixel centres aligned, no antialiasing).
pub fn resize_rgb(img: &RgbImage, [oh, ow]: [usize; 2]) -> RgbImage {
    let (h, w) = (img.height, img.width);
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|d| {
                let src = (((d as f64 + 0.5) * n_in as f64 / n_out as f64) - 0.5).max(0.0);
                let i0 = (src as usize).min(n_in - 1);
                (i0, (i0 + 1).min(n_in - 1), (src - i0 as f64) as f32)
            })
            .collect()
    };
    let ty = taps(h, oh);
    let tx = taps(w, ow);
    let mut data = Vec::with_capacity(oh * ow * 3);
    for &(y0, y1, fy) in &ty {
        for &(x0, x1, fx) in &tx {
            for c in 0..3 {
                let p = |y: usize, x: usize| img.data[(y * w + x) * 3 + c] as f32;
                let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
                let bottom = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
                data.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    RgbImage { width: ow, height: oh, data }
}

/// Resize a whole sample to `size`.
pub fn resize_sample(s: Sample, size: [usize; 2]) -> Sample {
    let [h, w] = s.size();
    if [h, w] == size {
        return s;
    }
    let [oh, ow] = size;
    Sample {
        name: s.name,
        rgb: resize_rgb(&s.rgb, size),
        label: s.label.map(|l| Plane { width: ow, height: oh, data: resize_nearest(&l.data, 1, [h, w], size) }),
        depth: s.depth.map(|d| Plane { width: ow, height: oh, data: resize_nearest(&d.data, 1, [h, w], size) }),
        normal: s.normal.map(|n| resize_nearest(&n, 3, [h, w], size)),
    }
}

/// Place the sample at `(top, left)` in a canvas of `size`, cropping what falls outside and
/// padding the rest (mean colour, ignore label, no depth, zero normal).
pub fn place(s: Sample, size: [usize; 2], top: isize, left: isize, ignore: u8) -> Sample {
    let [h, w] = s.size();
    let [oh, ow] = size;
    let map = |y: usize, x: usize| -> Option<usize> {
        let sy = y as isize - top;
        let sx = x as isize - left;
        (sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w).then(|| sy as usize * w + sx as usize)
    };
    let mean = mean_rgb();
    let mut rgb = Vec::with_capacity(oh * ow * 3);
    for y in 0..oh {
        for x in 0..ow {
            match map(y, x) {
                Some(i) => rgb.extend_from_slice(&s.rgb.data[i * 3..i * 3 + 3]),
                None => rgb.extend_from_slice(&mean),
            }
        }
    }
    let plane = |data: &[u8], fill: u8| -> Vec<u8> { (0..oh * ow).map(|i| map(i / ow, i % ow).map_or(fill, |j| data[j])).collect() };
    let planef = |data: &[f32], c: usize| -> Vec<f32> {
        let mut out = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            out.extend((0..oh * ow).map(|i| map(i / ow, i % ow).map_or(0.0, |j| data[ch * h * w + j])));
        }
        out
    };
    Sample {
        name: s.name,
        rgb: RgbImage { width: ow, height: oh, data: rgb },
        label: s.label.map(|l| Plane { width: ow, height: oh, data: plane(&l.data, ignore) }),
        depth: s.depth.map(|d| Plane { width: ow, height: oh, data: planef(&d.data, 1) }),
        normal: s.normal.map(|n| planef(&n, 3)),
    }
}

/// Mirror left-right (the x component of normals changes sign).
pub fn flip(s: Sample) -> Sample {
    let [h, w] = s.size();
    let mirror = |c: usize, data: &mut [f32]| {
        for ch in 0..c {
            for y in 0..h {
                data[ch * h * w + y * w..ch * h * w + (y + 1) * w].reverse();
            }
        }
    };
    let mut rgb = s.rgb;
    for y in 0..h {
        let row = &mut rgb.data[y * w * 3..(y + 1) * w * 3];
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
    let label = s.label.map(|mut l| {
        for y in 0..h {
            l.data[y * w..(y + 1) * w].reverse();
        }
        l
    });
    let depth = s.depth.map(|mut d| {
        mirror(1, &mut d.data);
        d
    });
    let normal = s.normal.map(|mut n| {
        mirror(3, &mut n);
        for v in &mut n[..h * w] {
            *v = -*v;
        }
        n
    });
    Sample { name: s.name, rgb, label, depth, normal }
}

/// Brightness, contrast, saturation jitter with the given factors.
pub fn jitter(mut img: RgbImage, brightness: f32, contrast: f32, saturation: f32) -> RgbImage {
    let gray = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let n = img.width * img.height;
    let mut px: Vec<f32> = img.data.iter().map(|&v| v as f32 * brightness).collect();
    let mean_gray = px.chunks_exact(3).map(gray).sum::<f32>() / n.max(1) as f32;
    for p in px.chunks_exact_mut(3) {
        let g = gray(p);
        for c in p.iter_mut() {
            *c = g + (*c - g) * saturation;
            *c = mean_gray + (*c - mean_gray) * contrast;
        }
    }
    for (d, v) in img.data.iter_mut().zip(px) {
        *d = v.round().clamp(0.0, 255.0) as u8;
    }
    img
}

/// Apply `spec` to a training sample, drawing from `rng` in a fixed order.
pub fn augment(s: Sample, spec: &AugmentSpec, rng: &mut SplitMix64, ignore: u8) -> Sample {
    let scale = rng.range(spec.scale[0], spec.scale[1].max(spec.scale[0]));
    let [h, w] = s.size();
    let size = [((h as f64 * scale).round() as usize).max(1), ((w as f64 * scale).round() as usize).max(1)];
    let mut s = resize_sample(s, size);
    if let Some([ch, cw]) = spec.crop {
        let [h, w] = s.size();
        // Offsets: negative when the image is larger than the crop (a crop), positive when it is
        // smaller (the image is placed at a random position in the padded canvas).
        let off = |n: usize, c: usize, rng: &mut SplitMix64| -> isize {
            if n >= c { -(rng.below((n - c + 1) as u64) as isize) } else { rng.below((c - n + 1) as u64) as isize }
        };
        let top = off(h, ch, rng);
        let left = off(w, cw, rng);
        s = place(s, [ch, cw], top, left, ignore);
    }
    if spec.flip && rng.uniform() < 0.5 {
        s = flip(s);
    }
    if spec.jitter > 0.0 {
        let j = spec.jitter;
        let b = rng.range(1.0 - j, 1.0 + j) as f32;
        let c = rng.range(1.0 - j, 1.0 + j) as f32;
        let sa = rng.range(1.0 - j, 1.0 + j) as f32;
        s.rgb = jitter(s.rgb, b, c, sa);
    }
    s
}

/// Pad to a multiple of `m` (bottom and right) for evaluation; returns the original size,
/// the region metrics cover (padding carries the ignore label and no depth anyway).
pub fn pad_to_multiple(s: Sample, m: usize, ignore: u8) -> (Sample, [usize; 2]) {
    let [h, w] = s.size();
    let up = |n: usize| n.div_ceil(m.max(1)) * m.max(1);
    let size = [up(h), up(w)];
    if size == [h, w] {
        return (s, [h, w]);
    }
    (place(s, size, 0, 0, ignore), [h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8×8 blocks, each with its own colour, label and depth (some blocks without depth).
    fn blocky(h: usize, w: usize) -> Sample {
        let block = |y: usize, x: usize| (y / 8) * 7 + (x / 8);
        let mut rgb = Vec::new();
        let mut label = Vec::new();
        let mut depth = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let b = block(y, x);
                rgb.extend_from_slice(&[(b * 37 % 256) as u8, (b * 91 % 256) as u8, (b * 13 % 256) as u8]);
                label.push((b % 20) as u8);
                depth.push(if b % 5 == 0 { 0.0 } else { 1.0 + b as f32 * 0.25 });
            }
        }
        Sample {
            name: "blocky".into(),
            rgb: RgbImage { width: w, height: h, data: rgb },
            label: Some(Plane { width: w, height: h, data: label }),
            depth: Some(Plane { width: w, height: h, data: depth }),
            normal: None,
        }
    }

    fn spec() -> AugmentSpec {
        AugmentSpec { scale: [0.5, 2.0], crop: Some([40, 48]), flip: true, jitter: 0.0 }
    }

    #[test]
    fn same_seed_epoch_index_gives_identical_samples() {
        let a = augment(blocky(56, 64), &spec(), &mut sample_rng(1, 2, 3), 255);
        let b = augment(blocky(56, 64), &spec(), &mut sample_rng(1, 2, 3), 255);
        let c = augment(blocky(56, 64), &spec(), &mut sample_rng(1, 3, 3), 255);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.size(), [40, 48]);
    }

    #[test]
    fn labels_and_depth_stay_aligned_with_rgb() {
        let reference = blocky(56, 64);
        // Map every block colour to its label and depth.
        let mut by_colour = std::collections::HashMap::new();
        for i in 0..56 * 64 {
            let c = [reference.rgb.data[i * 3], reference.rgb.data[i * 3 + 1], reference.rgb.data[i * 3 + 2]];
            by_colour.insert(c, (reference.label.as_ref().unwrap().data[i], reference.depth.as_ref().unwrap().data[i]));
        }
        let depths: Vec<f32> = reference.depth.as_ref().unwrap().data.clone();
        for seed in 0..30 {
            let s = augment(blocky(56, 64), &spec(), &mut sample_rng(seed, 0, 0), 255);
            let label = &s.label.as_ref().unwrap().data;
            let depth = &s.depth.as_ref().unwrap().data;
            let mut matched = 0;
            for i in 0..label.len() {
                let c = [s.rgb.data[i * 3], s.rgb.data[i * 3 + 1], s.rgb.data[i * 3 + 2]];
                if label[i] == 255 {
                    assert_eq!(c, mean_rgb(), "padding is the mean colour");
                    assert_eq!(depth[i], 0.0, "padding has no depth");
                    continue;
                }
                // Depth is never interpolated: every value is one of the input's.
                assert!(depths.contains(&depth[i]), "depth {} was invented", depth[i]);
                if let Some(&(l, d)) = by_colour.get(&c) {
                    // Interior pixels (exact block colour) keep their label and depth.
                    if l == label[i] {
                        matched += 1;
                        assert_eq!(d, depth[i]);
                    }
                }
            }
            assert!(matched as f64 > 0.6 * label.iter().filter(|&&l| l != 255).count() as f64, "seed {seed}: {matched}");
        }
    }

    #[test]
    fn flip_negates_normal_x_and_mirrors() {
        let mut s = blocky(8, 16);
        s.normal = Some((0..3 * 8 * 16).map(|i| i as f32).collect());
        let f = flip(s.clone());
        assert_eq!(f.label.as_ref().unwrap().data[0], s.label.as_ref().unwrap().data[15]);
        assert_eq!(f.normal.as_ref().unwrap()[0], -(s.normal.as_ref().unwrap()[15]));
        assert_eq!(f.normal.as_ref().unwrap()[128], s.normal.as_ref().unwrap()[128 + 15]);
        assert_eq!(flip(f), s);
    }

    #[test]
    fn padding_for_evaluation_keeps_the_image_at_the_origin() {
        let (p, orig) = pad_to_multiple(blocky(50, 60), 32, 255);
        assert_eq!(orig, [50, 60]);
        assert_eq!(p.size(), [64, 64]);
        let l = &p.label.as_ref().unwrap().data;
        assert_eq!(l[49 * 64 + 59], blocky(50, 60).label.unwrap().data[49 * 60 + 59]);
        assert_eq!(l[50 * 64], 255);
        assert_eq!(l[60], 255);
    }

    #[test]
    fn jitter_changes_rgb_only_and_identity_is_exact() {
        let s = blocky(16, 16);
        assert_eq!(jitter(s.rgb.clone(), 1.0, 1.0, 1.0), s.rgb);
        let j = AugmentSpec { scale: [1.0, 1.0], crop: None, flip: false, jitter: 0.4 };
        let a = augment(s.clone(), &j, &mut sample_rng(5, 0, 0), 255);
        assert_ne!(a.rgb, s.rgb);
        assert_eq!(a.label, s.label);
        assert_eq!(a.depth, s.depth);
    }
}
