//! A line chart: a title, axis names with units, a legend, several series on one pair of axes.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{bold, fmt_number, font, Figure, COLORS};

/// One named curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// (x, y); non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// Whether each point is marked (for sparse series such as validations).
    pub markers: bool,
}

impl Series {
    /// A curve without markers.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, markers: false }
    }

    /// A curve with a marker at each point.
    pub fn marked(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, markers: true }
    }

    fn finite(&self) -> Vec<(f64, f64)> {
        self.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()
    }
}

/// Series over shared axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// `(lo, hi)` of `values` with 5 % padding; a flat or empty range is widened.
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 * hi.abs().max(1.0) {
        let d = (hi.abs() * 0.05).max(0.5);
        return (lo - d, hi + d);
    }
    let p = if pad { (hi - lo) * 0.05 } else { 0.0 };
    (lo - p, hi + p)
}

impl Figure for LineChart {
    fn size(&self) -> (u32, u32) {
        (800, 450)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let series: Vec<(usize, &Series, Vec<(f64, f64)>)> = self.series.iter().enumerate().map(|(k, s)| (k, s, s.finite())).filter(|(_, _, p)| !p.is_empty()).collect();
        let (x0, x1) = padded_range(series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.0)), false);
        let (y0, y1) = padded_range(series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.1)), true);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, bold(20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(font(13))
            .axis_desc_style(font(15))
            .x_label_formatter(&|v| fmt_number(*v))
            .y_label_formatter(&|v| fmt_number(*v))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        for (k, s, pts) in &series {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3)));
            if s.markers || pts.len() == 1 {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .label_font(font(13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        Ok(())
    }
}
