//! Colour maps for depth images.

/// Google's Turbo colour map, by its published polynomial approximation (Mikhailov 2019).
/// `t` in [0, 1] → RGB.
pub fn turbo(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) as f64;
    let r = [0.135_721_38, 4.615_392_6, -42.660_322_66, 132.131_082_9, -152.942_393_96, 59.286_379_43];
    let g = [0.091_402_61, 2.194_188_39, 4.842_966_58, -14.185_033_33, 4.277_298_57, 2.829_566_04];
    let b = [0.106_673_3, 12.641_946_08, -60.582_048_36, 110.362_767_71, -89.903_109_13, 27.348_249_81];
    let poly = |c: &[f64; 6]| {
        let v = c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))));
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [poly(&r), poly(&g), poly(&b)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbo_runs_from_dark_blue_to_dark_red() {
        let lo = turbo(0.1);
        let hi = turbo(0.9);
        assert!(lo[2] > lo[0], "{lo:?}");
        assert!(hi[0] > hi[2], "{hi:?}");
        // Mid-range is bright green-ish.
        let mid = turbo(0.5);
        assert!(mid[1] > 150, "{mid:?}");
    }
}
