//! The run folder's plots, drawn with plotters (text in the embedded DejaVu Sans): line charts
//! of losses, learning rates, task weights and validation metrics over training; per-class IoU
//! bars, the row-normalised confusion matrix and the depth-error histogram of the latest
//! validation. Each figure is written as PNG and SVG.

mod bar_chart;
pub mod font;
mod heat_map;
mod histogram;
mod line_chart;
mod run_plots;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use bar_chart::BarChart;
pub use heat_map::{cell_color, HeatMap};
pub use histogram::Histogram;
pub use line_chart::{LineChart, Series};
pub use run_plots::{line_charts, validation_figures, validation_record, RunPlots};

/// Something drawn on a canvas of a fixed size.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draw on `root` (already white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// One of the figure kinds, for lists of figures.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyFigure {
    Line(LineChart),
    Bars(BarChart),
    Heat(HeatMap),
    Hist(Histogram),
}

impl Figure for AnyFigure {
    fn size(&self) -> (u32, u32) {
        match self {
            Self::Line(f) => f.size(),
            Self::Bars(f) => f.size(),
            Self::Heat(f) => f.size(),
            Self::Hist(f) => f.size(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        match self {
            Self::Line(f) => f.draw(root),
            Self::Bars(f) => f.draw(root),
            Self::Heat(f) => f.draw(root),
            Self::Hist(f) => f.draw(root),
        }
    }
}

/// The series colours, in order (matplotlib's tab10).
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A font of the plots' family at `size` pixels.
pub fn font(size: u32) -> FontDesc<'static> {
    font::register();
    FontDesc::new(FontFamily::Name(font::FAMILY), size as f64, FontStyle::Normal)
}

/// The plots' bold font at `size` pixels.
pub fn bold(size: u32) -> FontDesc<'static> {
    font::register();
    FontDesc::new(FontFamily::Name(font::FAMILY), size as f64, FontStyle::Bold)
}

/// Draw `fig` into an RGB buffer `[H·W·3]`.
pub fn rgb<F: Figure>(fig: &F) -> Result<hydra_data::image_io::RgbImage, String> {
    let (w, h) = fig.size();
    let mut data = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut data, (w, h)).into_drawing_area();
        fig.draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(hydra_data::image_io::RgbImage { width: w as usize, height: h as usize, data })
}

/// PNG bytes of `fig`, with `title` in the PNG's text.
pub fn png<F: Figure>(fig: &F, title: &str) -> Result<Vec<u8>, String> {
    Ok(hydra_data::image_io::encode_rgb_png(&rgb(fig)?, &[("title", title.to_string()), ("software", "hydra (plotters)".to_string())]))
}

/// SVG text of `fig`.
pub fn svg<F: Figure>(fig: &F) -> Result<String, String> {
    let (w, h) = fig.size();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        fig.draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Write `dir/name.png` and `dir/name.svg` atomically.
pub fn write<F: Figure>(dir: &std::path::Path, name: &str, title: &str, fig: &F) -> std::io::Result<()> {
    let bad = |e: String| std::io::Error::other(format!("plot {name}: {e}"));
    let png = png(fig, title).map_err(bad)?;
    let svg = svg(fig).map_err(bad)?;
    hydra_model::fsio::write_atomic(&dir.join(format!("{name}.png")), &png).map_err(|(_, e)| e)?;
    hydra_model::fsio::write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes()).map_err(|(_, e)| e)
}

/// A number for an axis or a label: 4 significant figures, scientific when very small or large.
pub fn fmt_number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}
