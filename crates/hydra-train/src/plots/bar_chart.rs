//! A horizontal bar chart with one named bar per row (per-class IoU): names on the left,
//! values on a fixed 0–1 axis, each bar's value written at its end.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{bold, font, Figure, COLORS};

/// Named values in [0, 1]; `None` is drawn as "absent" (no bar).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub bars: Vec<(String, Option<f64>)>,
}

/// Height of one bar's row, pixels.
pub const ROW: u32 = 22;
/// Pixels above and below the rows (caption, axis).
const FRAME: u32 = 110;

impl Figure for BarChart {
    fn size(&self) -> (u32, u32) {
        (800, FRAME + ROW * self.bars.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.bars.len().max(1) as i32;
        let names: Vec<String> = self.bars.iter().map(|(k, _)| k.clone()).collect();
        let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, bold(20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size((longest * 8 + 16).clamp(60, 260))
            .build_cartesian_2d(0f64..1.08f64, (0..n - 1).into_segmented())?;
        let label_of = |v: &SegmentValue<i32>| match v {
            // Row 0 at the top.
            SegmentValue::CenterOf(i) if *i >= 0 && *i < n => names.get((n - 1 - i) as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(&self.x_label)
            .x_labels(11)
            .y_labels(n as usize)
            .label_style(font(13))
            .axis_desc_style(font(15))
            .x_label_formatter(&|v| if *v <= 1.0 + 1e-9 { format!("{v:.1}") } else { String::new() })
            .y_label_formatter(&label_of)
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        for (k, (_, value)) in self.bars.iter().enumerate() {
            let row = n - 1 - k as i32;
            match value {
                Some(v) => {
                    let v = v.clamp(0.0, 1.0);
                    let mut bar = Rectangle::new([(0.0, SegmentValue::Exact(row)), (v, SegmentValue::Exact(row + 1))], COLORS[0].filled());
                    bar.set_margin(3, 3, 0, 0);
                    chart.draw_series(std::iter::once(bar))?;
                    chart.draw_series(std::iter::once(Text::new(format!("{v:.3}"), (v + 0.005, SegmentValue::CenterOf(row)), font(12).color(&BLACK))))?;
                }
                None => {
                    chart.draw_series(std::iter::once(Text::new("absent", (0.005, SegmentValue::CenterOf(row)), font(12).color(&RGBColor(128, 128, 128)))))?;
                }
            }
        }
        Ok(())
    }
}
