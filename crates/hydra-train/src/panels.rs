//! Prediction panels: for a few fixed validation images, one row each of
//! RGB | true segmentation | predicted segmentation | true depth | predicted depth |
//! absolute depth error, in `hydra predict`'s colour maps (the dataset palette; Turbo for
//! depth, near = blue), with column titles and a legend of class colours and depth scales.
//! One PNG per validation in `RUN/panels/`.

use std::path::{Path, PathBuf};

use hydra_data::batch::HostBatch;
use hydra_data::image_io::{encode_rgb_png, RgbImage};
use hydra_data::normalize::{IMAGENET_MEAN, IMAGENET_STD};
use hydra_data::palette::Palette;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::colormap::turbo;
use crate::observer::{Observer, ValidationEvent};
use crate::plots::{bold, font};
use crate::train::TrainError;

/// One validation image with what the network predicted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSample {
    pub name: String,
    /// Height and width (the sample's own, without the batch's padding).
    pub size: [usize; 2],
    /// Interleaved RGB `[H·W·3]`.
    pub rgb: Vec<u8>,
    /// True and predicted labels `[H·W]`, when segmentation is evaluated on this sample.
    pub labels: Option<(Vec<i64>, Vec<i64>)>,
    /// True (0 = unmeasured) and predicted depth `[H·W]`, metres, when depth is evaluated.
    pub depth: Option<(Vec<f32>, Vec<f32>)>,
}

impl PanelSample {
    /// Sample `i` of `batch`, with its labels and depth `[B, H, W]` (true, predicted) when given.
    pub fn from_batch(batch: &HostBatch, i: usize, labels: Option<(&[i64], &[i64])>, depth: Option<(&[f32], &[f32])>) -> Self {
        let [h, w] = batch.size;
        let [vh, vw] = batch.valid_size[i];
        let crop = |plane: &[f32]| -> Vec<f32> { (0..vh).flat_map(|y| plane[y * w..y * w + vw].iter().copied()).collect() };
        let crop_i = |plane: &[i64]| -> Vec<i64> { (0..vh).flat_map(|y| plane[y * w..y * w + vw].iter().copied()).collect() };
        let img = &batch.images[i * 3 * h * w..(i + 1) * 3 * h * w];
        let mut rgb = Vec::with_capacity(vh * vw * 3);
        for y in 0..vh {
            for x in 0..vw {
                for c in 0..3 {
                    // Undo the ImageNet normalisation; f32 rounding is far below half a level.
                    let v = (img[c * h * w + y * w + x] as f64 * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255.0;
                    rgb.push(v.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        let at = |p: &[i64]| crop_i(&p[i * h * w..(i + 1) * h * w]);
        let at_f = |p: &[f32]| crop(&p[i * h * w..(i + 1) * h * w]);
        Self {
            name: batch.names[i].clone(),
            size: [vh, vw],
            rgb,
            labels: labels.map(|(g, p)| (at(g), at(p))),
            depth: depth.map(|(g, p)| (at_f(g), at_f(p))),
        }
    }
}

/// What a panel shows and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub image: RgbImage,
    /// Column titles, left to right.
    pub columns: Vec<&'static str>,
    /// Per row (sample), per column: the tile `[x, y, width, height]` in `image`.
    pub tiles: Vec<Vec<[usize; 4]>>,
    /// The depth colour scale `[near, far]` (metres) and the error scale's top (metres).
    pub depth_range: Option<[f32; 2]>,
    pub error_top: Option<f32>,
}

const GAP: usize = 6;
const HEADER: usize = 46;
const SWATCH: usize = 14;

/// The tile size of an `[h, w]` image: at most 320 wide, at least 160 (whole multiples).
pub fn tile_size([h, w]: [usize; 2]) -> [usize; 2] {
    if w > 320 {
        [(h * 320).div_ceil(w).max(1), 320]
    } else if w < 160 {
        let k = 160usize.div_ceil(w.max(1));
        [h * k, w * k]
    } else {
        [h, w]
    }
}

/// Render `samples` (nearest-neighbour scaled to [`tile_size`]); `palette` colours classes
/// (the ignore label in its ignore colour), depth is coloured over the true depth's range
/// shared by all rows, unmeasured pixels black. `None` when there are no samples.
pub fn render(samples: &[PanelSample], palette: &Palette, title: &str) -> Option<Panel> {
    if samples.is_empty() {
        return None;
    }
    let seg = samples.iter().any(|s| s.labels.is_some());
    let dep = samples.iter().any(|s| s.depth.is_some());
    let mut columns = vec!["RGB"];
    if seg {
        columns.extend(["true segmentation", "predicted segmentation"]);
    }
    if dep {
        columns.extend(["true depth", "predicted depth", "|depth error|"]);
    }
    let depth_range = dep.then(|| depth_range(samples));
    let error_top = depth_range.map(|[lo, hi]| ((hi - lo) * 0.25).max(0.05));
    let sizes: Vec<[usize; 2]> = samples.iter().map(|s| tile_size(s.size)).collect();
    let col_w = sizes.iter().map(|s| s[1]).max().unwrap_or(160).max(150);
    let width = GAP + columns.len() * (col_w + GAP);
    let mut tiles = Vec::new();
    let mut y = HEADER;
    for s in &sizes {
        tiles.push((0..columns.len()).map(|c| [GAP + c * (col_w + GAP), y, s[1], s[0]]).collect::<Vec<_>>());
        y += s[0] + GAP;
    }
    let legend_top = y + 4;
    let names: Vec<String> = (0..palette.len()).map(|k| palette.names.get(k).cloned().unwrap_or_else(|| format!("class_{k}"))).collect();
    let legend = legend_layout(&names, width, seg);
    let height = legend_top + legend.height + if dep { 44 } else { 0 } + GAP;
    let mut data = vec![255u8; width * height * 3];
    for (s, row) in samples.iter().zip(&tiles) {
        let mut col = 0;
        let mut put = |data: &mut Vec<u8>, color: &dyn Fn(usize) -> [u8; 3]| {
            blit(data, width, row[col], s.size, color);
            col += 1;
        };
        put(&mut data, &|i| [s.rgb[i * 3], s.rgb[i * 3 + 1], s.rgb[i * 3 + 2]]);
        if seg {
            let class = |l: i64| if l >= 0 { palette.color(l as usize) } else { palette.ignore };
            match &s.labels {
                Some((g, p)) => {
                    put(&mut data, &|i| class(g[i]));
                    put(&mut data, &|i| class(p[i]));
                }
                None => {
                    put(&mut data, &|_| [230, 230, 230]);
                    put(&mut data, &|_| [230, 230, 230]);
                }
            }
        }
        if let (true, Some([lo, hi]), Some(top)) = (dep, depth_range, error_top) {
            let shade = |v: f32| turbo((v - lo) / (hi - lo).max(1e-6));
            match &s.depth {
                Some((g, p)) => {
                    put(&mut data, &|i| if g[i] > 0.0 { shade(g[i]) } else { [0, 0, 0] });
                    put(&mut data, &|i| shade(p[i]));
                    put(&mut data, &|i| if g[i] > 0.0 { turbo((p[i] - g[i]).abs() / top) } else { [0, 0, 0] });
                }
                None => {
                    for _ in 0..3 {
                        put(&mut data, &|_| [230, 230, 230]);
                    }
                }
            }
        }
    }
    draw_text(&mut data, [width, height], title, &columns, &tiles, &legend, legend_top, &names, palette, seg, depth_range, error_top);
    Some(Panel { image: RgbImage { width, height, data }, columns, tiles, depth_range, error_top })
}

/// Copy an `[h, w]` image (colour of pixel index `i = y·w + x`) into `tile`, nearest-neighbour.
fn blit(data: &mut [u8], width: usize, [x0, y0, tw, th]: [usize; 4], [h, w]: [usize; 2], color: &dyn Fn(usize) -> [u8; 3]) {
    for ty in 0..th {
        let sy = (ty * h / th).min(h - 1);
        for tx in 0..tw {
            let sx = (tx * w / tw).min(w - 1);
            let o = ((y0 + ty) * width + x0 + tx) * 3;
            data[o..o + 3].copy_from_slice(&color(sy * w + sx));
        }
    }
}

/// The true depth's range over all samples (the predictions' if none is measured).
fn depth_range(samples: &[PanelSample]) -> [f32; 2] {
    let range = |it: &mut dyn Iterator<Item = f32>| it.fold(None, |r: Option<[f32; 2]>, v| Some(r.map_or([v, v], |[a, b]| [a.min(v), b.max(v)])));
    let gt = range(&mut samples.iter().filter_map(|s| s.depth.as_ref()).flat_map(|(g, _)| g.iter().copied().filter(|v| *v > 0.0 && v.is_finite())));
    let pred = || range(&mut samples.iter().filter_map(|s| s.depth.as_ref()).flat_map(|(_, p)| p.iter().copied().filter(|v| v.is_finite())));
    let [lo, hi] = gt.or_else(pred).unwrap_or([0.0, 1.0]);
    if hi > lo { [lo, hi] } else { [lo, lo + 1.0] }
}

/// Where the class legend's swatches go: `(x, row)` per class, and the legend's height.
struct Legend {
    spots: Vec<(usize, usize)>,
    height: usize,
}

fn legend_layout(names: &[String], width: usize, seg: bool) -> Legend {
    if !seg {
        return Legend { spots: Vec::new(), height: 0 };
    }
    let (mut x, mut row, mut spots) = (GAP, 0, Vec::new());
    for n in names {
        let w = SWATCH + 6 + n.chars().count() * 8 + 16;
        if x + w > width && x > GAP {
            x = GAP;
            row += 1;
        }
        spots.push((x, row));
        x += w;
    }
    Legend { spots, height: (row + 1) * (SWATCH + 8) }
}

#[allow(clippy::too_many_arguments)]
fn draw_text(
    data: &mut [u8],
    [width, height]: [usize; 2],
    title: &str,
    columns: &[&str],
    tiles: &[Vec<[usize; 4]>],
    legend: &Legend,
    legend_top: usize,
    names: &[String],
    palette: &Palette,
    seg: bool,
    depth_range: Option<[f32; 2]>,
    error_top: Option<f32>,
) {
    let root = BitMapBackend::with_buffer(data, (width as u32, height as u32)).into_drawing_area();
    let black = font(13).color(&BLACK);
    let _ = root.draw(&Text::new(title.to_string(), (GAP as i32, 2), bold(12).color(&RGBColor(90, 90, 90))));
    if let Some(first) = tiles.first() {
        for (c, t) in columns.iter().zip(first) {
            let centre = (t[0] + t[2] / 2) as i32;
            let _ = root.draw(&Text::new(c.to_string(), (centre, (HEADER - 4) as i32), bold(13).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom))));
        }
    }
    if seg {
        for (k, &(x, row)) in legend.spots.iter().enumerate() {
            let y = legend_top + row * (SWATCH + 8);
            let [r, g, b] = palette.color(k);
            let _ = root.draw(&Rectangle::new([(x as i32, y as i32), ((x + SWATCH) as i32, (y + SWATCH) as i32)], RGBColor(r, g, b).filled()));
            let _ = root.draw(&Rectangle::new([(x as i32, y as i32), ((x + SWATCH) as i32, (y + SWATCH) as i32)], RGBColor(120, 120, 120)));
            let _ = root.draw(&Text::new(names[k].clone(), ((x + SWATCH + 6) as i32, y as i32), black.clone()));
        }
    }
    if let (Some([lo, hi]), Some(top)) = (depth_range, error_top) {
        let y = (legend_top + legend.height + 8) as i32;
        let bar = |root: &DrawingArea<BitMapBackend, _>, x0: i32, label: String| {
            for i in 0..200 {
                let [r, g, b] = turbo(i as f32 / 199.0);
                let _ = root.draw(&Rectangle::new([(x0 + i, y), (x0 + i + 1, y + 12)], RGBColor(r, g, b).filled()));
            }
            let _ = root.draw(&Text::new(label, (x0, y + 15), font(12).color(&BLACK)));
        };
        bar(&root, GAP as i32, format!("depth: {lo:.2} m (blue) to {hi:.2} m (red); black = unmeasured"));
        bar(&root, (GAP + 430) as i32, format!("|depth error|: 0 m (blue) to {top:.2} m (red) and beyond"));
    }
    let _ = root.present();
}

/// Writes each validation's panel to `RUN/panels/epoch_NNNN.png`.
pub struct PanelWriter {
    dir: PathBuf,
}

impl PanelWriter {
    /// Panels of the run folder `run_dir`, which has `epochs_done` epochs: panels of later
    /// epochs (left by a run resumed from an earlier checkpoint) are removed, so that the
    /// folder shows one run.
    pub fn new(run_dir: &Path, epochs_done: usize) -> std::io::Result<Self> {
        let dir = run_dir.join("panels");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let epoch = name.to_str().and_then(|n| n.strip_prefix("epoch_")?.strip_suffix(".png")?.parse::<usize>().ok());
                if epoch.is_some_and(|k| k > epochs_done) {
                    std::fs::remove_file(e.path())?;
                }
            }
        }
        Ok(Self { dir })
    }

    /// The file of epoch `epoch`'s panel.
    pub fn file(run_dir: &Path, epoch: usize) -> PathBuf {
        run_dir.join("panels").join(format!("epoch_{epoch:04}.png"))
    }
}

impl Observer for PanelWriter {
    fn validation(&mut self, e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        let Some(png) = e.panel else { return Ok(()) };
        let io = |source| TrainError::Io { path: self.dir.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let file = self.dir.join(format!("epoch_{:04}.png", e.epoch));
        hydra_model::fsio::write_atomic(&file, png).map_err(|(p, source)| TrainError::Io { path: p, source })
    }
}

/// PNG bytes of a panel, with its columns and scales in the PNG's text.
pub fn encode(panel: &Panel, title: &str) -> Vec<u8> {
    let mut text = vec![("title", title.to_string()), ("columns", panel.columns.join(" | "))];
    if let Some([lo, hi]) = panel.depth_range {
        text.push(("depth_range_m", format!("{lo} {hi}")));
    }
    if let Some(top) = panel.error_top {
        text.push(("error_top_m", format!("{top}")));
    }
    encode_rgb_png(&panel.image, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_drops_the_panels_of_epochs_it_will_redo() {
        let run = std::env::temp_dir().join(format!("hydra-panels-{}", std::process::id()));
        std::fs::create_dir_all(run.join("panels")).unwrap();
        for e in [2, 4, 6] {
            std::fs::write(PanelWriter::file(&run, e), b"png").unwrap();
        }
        std::fs::write(run.join("panels/notes.txt"), b"mine").unwrap();
        PanelWriter::new(&run, 4).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(run.join("panels")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["epoch_0002.png", "epoch_0004.png", "notes.txt"]);
        std::fs::remove_dir_all(&run).unwrap();
    }
}
