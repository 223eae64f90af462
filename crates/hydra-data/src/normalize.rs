//! ImageNet normalisation: `x / 255`, then `(x − mean) / std` per RGB channel.

/// ImageNet channel means (RGB).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Per channel, the normalised value of each 8-bit level, computed in f64 and rounded to f32
/// once (as the reference preprocessing does).
pub fn lut() -> [[f32; 256]; 3] {
    let mut t = [[0f32; 256]; 3];
    for c in 0..3 {
        for v in 0..256 {
            t[c][v] = ((v as f64 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]) as f32;
        }
    }
    t
}

/// Interleaved RGB `[H·W·3]` → planar normalised `[3, H, W]`.
pub fn normalize_chw(rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
    let t = lut();
    let n = width * height;
    assert_eq!(rgb.len(), n * 3);
    let mut out = vec![0f32; 3 * n];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        out[i] = t[0][px[0] as usize];
        out[n + i] = t[1][px[1] as usize];
        out[2 * n + i] = t[2][px[2] as usize];
    }
    out
}

/// The 8-bit colour whose normalised value is closest to zero per channel (the mean colour),
/// used to pad images so that padding is neutral after normalisation.
pub fn mean_rgb() -> [u8; 3] {
    [0, 1, 2].map(|c| (IMAGENET_MEAN[c] * 255.0).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let v = normalize_chw(&[0, 0, 0, 255, 255, 255], 2, 1);
        assert!((v[0] - (-0.485 / 0.229) as f32).abs() < 1e-6);
        assert!((v[1] - ((1.0 - 0.485) / 0.229) as f32).abs() < 1e-6);
        assert!((v[3] - ((1.0 - 0.456) / 0.224) as f32).abs() < 1e-6); // planar: [R0 R1 G0 G1 B0 B1]
        assert!((v[5] - ((1.0 - 0.406) / 0.225) as f32).abs() < 1e-6);
    }

    #[test]
    fn mean_colour_normalises_near_zero() {
        let m = mean_rgb();
        let v = normalize_chw(&m, 1, 1);
        assert!(v.iter().all(|x| x.abs() < 0.01), "{v:?}");
    }
}
