//! Cross-entropy of logits upsampled (bilinear, align_corners = false) to the label size,
//! without the upsampled tensor: the training loss of the segmentation head. The logits at
//! label size are `[B, C, H, W]` (42 MB for 40 classes at 256×256, batch 4); here each image
//! keeps only the width-interpolated planes `[C, h, W]` and one output row of all classes at
//! a time. Every value is computed with the arithmetic, and summed in the order, of
//! [`super::bilinear::bilinear`] then [`super::softmax_ce::cross_entropy`] (backward: of
//! [`super::softmax_ce::cross_entropy_backward`] then [`super::bilinear::bilinear_backward`]),
//! so the results are bit-identical to the unfused operations (tested).

use rayon::prelude::*;

use super::bilinear::Taps;
use super::softmax_ce::softmax_terms;

/// The width pass of every class plane of one image `[C, h, w]` → `[C, h, W]`.
fn widen_classes(taps: &Taps, image: &[f32], [c, h, w]: [usize; 3], ow: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; c * h * ow];
    for (plane, t) in image.chunks_exact(h * w).zip(tmp.chunks_exact_mut(h * ow)) {
        taps.widen(plane, t);
    }
    tmp
}

/// Output row `y` of every class from the width-interpolated planes: `up [C, W]`.
fn blend_classes(taps: &Taps, tmp: &[f32], [h, ow]: [usize; 2], y: usize, up: &mut [f32]) {
    for (plane, row) in tmp.chunks_exact(h * ow).zip(up.chunks_exact_mut(ow)) {
        taps.blend_row(plane, y, row);
    }
}

/// Row maxima over classes of `up [C, W]`, as [`super::softmax_ce::cross_entropy`] takes them.
fn class_max(up: &[f32], c: usize, ow: usize, maxv: &mut [f32]) {
    maxv.fill(f32::NEG_INFINITY);
    for ch in 0..c {
        for (m, &v) in maxv.iter_mut().zip(&up[ch * ow..(ch + 1) * ow]) {
            *m = if v > *m { v } else { *m };
        }
    }
}

fn valid(l: i64, c: usize, ignore: i64) -> bool {
    !(l == ignore || l < 0 || l as usize >= c)
}

/// `Σ −log softmax(upsample(logits))[label]` over valid pixels (f64) and their count:
/// `logits [B, C, h, w]`, `labels [B, H, W]`, `size = [H, W]`.
pub fn upsampled_cross_entropy(logits: &[f32], labels: &[i64], [b, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], ignore: i64) -> (f64, usize) {
    let taps = Taps::new([h, w], [oh, ow]);
    (0..b)
        .into_par_iter()
        .map(|i| {
            let tmp = widen_classes(&taps, &logits[i * c * h * w..(i + 1) * c * h * w], [c, h, w], ow);
            let (mut up, mut maxv, mut se) = (vec![0f32; c * ow], vec![0f32; ow], vec![0f32; ow]);
            let (mut sum, mut count) = (0f64, 0usize);
            for y in 0..oh {
                blend_classes(&taps, &tmp, [h, ow], y, &mut up);
                class_max(&up, c, ow, &mut maxv);
                se.fill(0.0);
                for ch in 0..c {
                    softmax_terms(&up[ch * ow..(ch + 1) * ow], &maxv, &mut se, None);
                }
                for (x, &l) in labels[(i * oh + y) * ow..(i * oh + y + 1) * ow].iter().enumerate() {
                    if !valid(l, c, ignore) {
                        continue;
                    }
                    let lse = maxv[x] as f64 + (se[x] as f64).ln();
                    sum += lse - up[l as usize * ow + x] as f64;
                    count += 1;
                }
            }
            (sum, count)
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Gradient of [`upsampled_cross_entropy`]'s mean (`sum / count`, times `scale`) with
/// respect to `logits [B, C, h, w]`.
#[allow(clippy::too_many_arguments)]
pub fn upsampled_cross_entropy_backward(
    logits: &[f32],
    labels: &[i64],
    [b, c, h, w]: [usize; 4],
    [oh, ow]: [usize; 2],
    ignore: i64,
    count: usize,
    scale: f32,
) -> Vec<f32> {
    let taps = Taps::new([h, w], [oh, ow]);
    let k = scale / count.max(1) as f32;
    let mut out = vec![0f32; b * c * h * w];
    out.par_chunks_mut(c * h * w).enumerate().for_each(|(i, gx)| {
        let tmp = widen_classes(&taps, &logits[i * c * h * w..(i + 1) * c * h * w], [c, h, w], ow);
        let (mut up, mut e) = (vec![0f32; c * ow], vec![0f32; c * ow]);
        let (mut maxv, mut se, mut scaled) = (vec![0f32; ow], vec![0f32; ow], vec![0f32; ow]);
        // Gradient with respect to the width-interpolated planes, `[C, h, W]`.
        let mut gtmp = vec![0f32; c * h * ow];
        for y in 0..oh {
            blend_classes(&taps, &tmp, [h, ow], y, &mut up);
            class_max(&up, c, ow, &mut maxv);
            se.fill(0.0);
            for ch in 0..c {
                softmax_terms(&up[ch * ow..(ch + 1) * ow], &maxv, &mut se, Some(&mut e[ch * ow..(ch + 1) * ow]));
            }
            let lab = &labels[(i * oh + y) * ow..(i * oh + y + 1) * ow];
            for (v, &l) in scaled.iter_mut().zip(lab) {
                *v = if valid(l, c, ignore) { k } else { 0.0 };
            }
            for ch in 0..c {
                for ((d, &s), &v) in e[ch * ow..(ch + 1) * ow].iter_mut().zip(&se).zip(&scaled) {
                    *d = *d / s * v;
                }
            }
            for (x, &l) in lab.iter().enumerate() {
                if scaled[x] != 0.0 {
                    e[l as usize * ow + x] -= k;
                }
            }
            for (plane, g) in gtmp.chunks_exact_mut(h * ow).zip(e.chunks_exact(ow)) {
                taps.spread_row(g, y, plane);
            }
        }
        for (plane, dst) in gtmp.chunks_exact(h * ow).zip(gx.chunks_exact_mut(h * w)) {
            taps.scatter(plane, dst);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{bilinear, softmax_ce};

    fn case(seed: u64, [b, c, h, w]: [usize; 4], [oh, ow]: [usize; 2]) -> (Vec<f32>, Vec<i64>) {
        let mut g = hydra_core::SplitMix64::new(seed);
        let logits: Vec<f32> = (0..b * c * h * w).map(|_| g.below(2001) as f32 / 100.0 - 10.0).collect();
        // Some ignored (255) and out-of-range labels too.
        let labels: Vec<i64> = (0..b * oh * ow).map(|_| match g.below(c as u64 + 3) as i64 { v if v == c as i64 => 255, v if v == c as i64 + 1 => -1, v => v }).collect();
        (logits, labels)
    }

    #[test]
    fn equals_upsampling_then_cross_entropy_bit_for_bit() {
        for &(dims, size) in &[([2, 5, 4, 6], [16, 24]), ([1, 3, 7, 5], [30, 11]), ([3, 2, 1, 1], [4, 4]), ([2, 4, 9, 9], [5, 7])] {
            let [b, c, h, w] = dims;
            let [oh, ow] = size;
            let (logits, labels) = case(7, dims, size);
            let up = bilinear::bilinear(&logits, b * c, [h, w], [oh, ow]);
            let (sum, count) = softmax_ce::cross_entropy(&up, &labels, [b, c, oh * ow], 255);
            let (fsum, fcount) = upsampled_cross_entropy(&logits, &labels, dims, size, 255);
            assert_eq!((fsum.to_bits(), fcount), (sum.to_bits(), count), "{dims:?} → {size:?}");
            assert!(count > 0 && count < b * oh * ow);
            let scale = 0.7;
            let g = softmax_ce::cross_entropy_backward(&up, &labels, [b, c, oh * ow], 255, count, scale);
            let expect = bilinear::bilinear_backward(&g, b * c, [h, w], [oh, ow]);
            let got = upsampled_cross_entropy_backward(&logits, &labels, dims, size, 255, count, scale);
            assert!(got.iter().zip(&expect).all(|(a, e)| a.to_bits() == e.to_bits()), "{dims:?} → {size:?}");
            assert!(got.iter().any(|&v| v != 0.0));
        }
    }
}
