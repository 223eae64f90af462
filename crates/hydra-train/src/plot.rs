//! Line plots rendered to PNG without a font library: axes, grid, the curve, and the axis
//! ranges written with a small built-in digit font. The title and series name are stored in
//! the PNG's text metadata and the file name.

use hydra_data::image_io::{encode_rgb_png, RgbImage};

const W: usize = 640;
const H: usize = 360;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const TOP: usize = 20;
const BOTTOM: usize = 40;

/// 5×7 glyphs for the characters numbers need; each row is 5 bits, MSB left.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E],
        ' ' => [0; 7],
        _ => return None,
    })
}

struct Canvas {
    data: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self { data: vec![255; W * H * 3] }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            let i = (y as usize * W + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let x = (x0 + (x1 - x0) * t).round() as i64;
            let y = (y0 + (y1 - y0) * t).round() as i64;
            self.set(x, y, c);
            self.set(x, y + 1, c);
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str) {
        for (k, ch) in s.chars().enumerate() {
            if let Some(g) = glyph(ch) {
                for (r, bits) in g.iter().enumerate() {
                    for col in 0..5 {
                        if bits & (0x10 >> col) != 0 {
                            for dy in 0..2 {
                                for dx in 0..2 {
                                    self.set((x + k * 12 + col * 2 + dx) as i64, (y + r * 2 + dy) as i64, [40, 40, 40]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn fmt(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) { format!("{v:.2e}") } else { format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string() }
}

/// PNG bytes of `points` (x, y) as a line plot titled `title`.
pub fn line_plot(title: &str, x_label: &str, points: &[(f64, f64)]) -> Vec<u8> {
    let mut c = Canvas::new();
    let pts: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let (x0, x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if !(y0.is_finite() && y1.is_finite()) {
        (y0, y1) = (0.0, 1.0);
    }
    if y1 - y0 < 1e-12 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pw = (W - LEFT - RIGHT) as f64;
    let ph = (H - TOP - BOTTOM) as f64;
    let sx = |x: f64| LEFT as f64 + if x1 > x0 { (x - x0) / (x1 - x0) * pw } else { pw / 2.0 };
    let sy = |y: f64| TOP as f64 + (1.0 - (y - y0) / (y1 - y0)) * ph;
    for k in 0..=4 {
        let y = TOP as f64 + ph * k as f64 / 4.0;
        c.line((LEFT as f64, y), (LEFT as f64 + pw, y), [225, 225, 225]);
    }
    c.line((LEFT as f64, TOP as f64), (LEFT as f64, TOP as f64 + ph), [90, 90, 90]);
    c.line((LEFT as f64, TOP as f64 + ph), (LEFT as f64 + pw, TOP as f64 + ph), [90, 90, 90]);
    for w in pts.windows(2) {
        c.line((sx(w[0].0), sy(w[0].1)), (sx(w[1].0), sy(w[1].1)), [31, 119, 180]);
    }
    if pts.len() == 1 {
        let (x, y) = (sx(pts[0].0), sy(pts[0].1));
        for d in -3..=3 {
            c.set(x as i64 + d, y as i64, [31, 119, 180]);
            c.set(x as i64, y as i64 + d, [31, 119, 180]);
        }
    }
    c.text(4, TOP, &fmt(y1));
    c.text(4, H - BOTTOM - 14, &fmt(y0));
    if x0.is_finite() {
        c.text(LEFT, H - BOTTOM + 10, &fmt(x0));
        let s = fmt(x1);
        c.text(W - RIGHT - s.len() * 12, H - BOTTOM + 10, &s);
    }
    let img = RgbImage { width: W, height: H, data: c.data };
    encode_rgb_png(&img, &[("title", title.to_string()), ("x", x_label.to_string()), ("points", pts.len().to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_draws_the_curve_in_its_colour() {
        let png = line_plot("loss", "epoch", &[(1.0, 3.0), (2.0, 2.0), (3.0, 1.5)]);
        let img = hydra_data::image_io::decode_rgb(&png).unwrap();
        assert_eq!((img.width, img.height), (W, H));
        let blue = img.data.chunks(3).filter(|p| p == &[31, 119, 180]).count();
        assert!(blue > 300, "{blue}");
        let text = hydra_data::image_io::png_text(&png).unwrap();
        assert!(text.contains(&("title".to_string(), "loss".to_string())));
    }

    #[test]
    fn number_format() {
        assert_eq!(fmt(0.5), "0.5");
        assert_eq!(fmt(12.0), "12");
        assert_eq!(fmt(1.5e-5), "1.50e-5");
    }
}
