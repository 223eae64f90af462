//! A histogram of absolute depth errors: the share of valid pixels per error interval, with
//! the median and the 90th percentile in the title.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{bold, fmt_number, font, Figure, COLORS};
use crate::error_histogram::ErrorHistogram;

/// The bars of an [`ErrorHistogram`] as a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub title: String,
    pub hist: ErrorHistogram,
    pub bars: usize,
}

impl Figure for Histogram {
    fn size(&self) -> (u32, u32) {
        (800, 450)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let bars = self.hist.bars(self.bars);
        let total = self.hist.total().max(1) as f64;
        let top = bars.last().map(|b| b.hi).unwrap_or(1.0);
        let peak = bars.iter().map(|b| b.count as f64 / total * 100.0).fold(0.0, f64::max).max(1e-9);
        let stat = |q: f64| self.hist.quantile(q).map(fmt_number).unwrap_or_else(|| "-".into());
        let caption = format!("{} (median {} m, 90th percentile {} m)", self.title, stat(0.5), stat(0.9));
        let mut chart = ChartBuilder::on(root)
            .caption(caption, bold(18))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..top, 0f64..peak * 1.08)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("absolute depth error |predicted − true| (m); the last bar holds every larger error")
            .y_desc("valid pixels (%)")
            .label_style(font(13))
            .axis_desc_style(font(14))
            .x_label_formatter(&|v| fmt_number(*v))
            .y_label_formatter(&|v| fmt_number(*v))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        chart.draw_series(bars.iter().map(|b| Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64 / total * 100.0)], COLORS[0].mix(0.85).filled())))?;
        Ok(())
    }
}
