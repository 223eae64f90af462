//! A square heat map of a row-normalised matrix (the confusion matrix): rows are ground
//! truth, columns predictions, both named; white (0) to dark blue (1), values written in the
//! cells when they fit.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{bold, font, Figure};

/// A matrix with named rows and columns (the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub names: Vec<String>,
    /// Row-major `[n, n]`, each value in [0, 1].
    pub values: Vec<f64>,
}

/// The colour of `v` in [0, 1]: white to matplotlib's darkest "Blues" (8, 48, 107).
pub fn cell_color(v: f64) -> RGBColor {
    let t = v.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

impl HeatMap {
    /// The row-normalised confusion matrix: each row divided by its sum (rows without
    /// ground truth stay 0).
    pub fn confusion(title: &str, names: &[String], counts: &[u64]) -> Self {
        let n = names.len();
        let mut values = vec![0.0; n * n];
        for r in 0..n {
            let sum: u64 = counts[r * n..(r + 1) * n].iter().sum();
            if sum > 0 {
                for c in 0..n {
                    values[r * n + c] = counts[r * n + c] as f64 / sum as f64;
                }
            }
        }
        Self { title: title.into(), x_label: "predicted class".into(), y_label: "true class".into(), names: names.to_vec(), values }
    }

    /// Side of one cell, pixels.
    pub fn cell(&self) -> u32 {
        (640 / self.names.len().max(1) as u32).clamp(14, 64)
    }

    fn label_area(&self) -> u32 {
        let longest = self.names.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32;
        (longest * 8 + 24).clamp(50, 220)
    }
}

impl Figure for HeatMap {
    fn size(&self) -> (u32, u32) {
        let side = self.cell() * self.names.len().max(1) as u32;
        let labels = self.label_area();
        (side + labels + 40, side + labels + 70)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.names.len().max(1) as i32;
        let rotate = n > 6;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, bold(18))
            .margin(12)
            .x_label_area_size(self.label_area())
            .y_label_area_size(self.label_area())
            // `into_segmented` of `0..k` has k + 1 segments.
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())?;
        let name = |i: i32| self.names.get(i as usize).cloned().unwrap_or_default();
        let x_name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) if *i < n => name(*i),
            _ => String::new(),
        };
        let y_name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) if *i < n => name(n - 1 - *i),
            _ => String::new(),
        };
        let x_style = if rotate { font(12).transform(FontTransform::Rotate90).into_text_style(root) } else { font(12).into_text_style(root) };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(n as usize)
            .y_labels(n as usize)
            .x_label_style(x_style)
            .y_label_style(font(12))
            .axis_desc_style(font(15))
            .x_label_formatter(&x_name)
            .y_label_formatter(&y_name)
            .draw()?;
        let show_values = self.cell() >= 34;
        for r in 0..n {
            for c in 0..n {
                let v = self.values.get((r * n + c) as usize).copied().unwrap_or(0.0);
                let y = n - 1 - r;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(SegmentValue::Exact(c), SegmentValue::Exact(y)), (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1))],
                    cell_color(v).filled(),
                )))?;
                if show_values && v > 0.0 {
                    let color = if v > 0.5 { WHITE } else { BLACK };
                    let style = font(11).color(&color).pos(Pos::new(HPos::Center, VPos::Center));
                    chart.draw_series(std::iter::once(Text::new(format!("{:.0}", v * 100.0), (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y)), style)))?;
                }
            }
        }
        Ok(())
    }
}
