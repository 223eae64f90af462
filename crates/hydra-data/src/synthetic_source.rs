//! Synthetic scenes as a dataset (generated on the fly) and as files in the authors' layout.

use std::path::Path;

use crate::dataset::{parallel_map, Dataset, OpenReport, SampleStats};
use crate::error::DataError;
use crate::image_io::{self, Plane, RgbImage};
use crate::palette::Palette;
use crate::sample::Sample;
use crate::synthetic::{render_scene, SYNTH_CLASSES, SYNTH_COLORS};

/// Depth PNG value per metre in written synthetic datasets (the NYUv2 convention).
pub const SYNTH_DEPTH_SCALE: f64 = 5000.0;

/// The palette (class names and colours) of synthetic scenes.
pub fn synthetic_palette() -> Palette {
    Palette { colors: SYNTH_COLORS.to_vec(), names: SYNTH_CLASSES.iter().map(|s| s.to_string()).collect(), ignore: [0, 0, 0] }
}

/// `count` ray-cast scenes of one size, scene `i` a pure function of (seed, i).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticDataset {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub seed: u64,
}

impl SyntheticDataset {
    /// A synthetic dataset.
    pub fn new(count: usize, height: usize, width: usize, seed: u64) -> Self {
        Self { count, height, width, seed }
    }

    /// Render scene `i`.
    pub fn scene(&self, i: usize) -> Sample {
        let s = render_scene(self.seed, i as u64, self.height, self.width);
        let (w, h) = (s.width, s.height);
        Sample {
            name: format!("synthetic/{:06}", i),
            rgb: RgbImage { width: w, height: h, data: s.rgb },
            label: Some(Plane { width: w, height: h, data: s.label }),
            depth: Some(Plane { width: w, height: h, data: s.depth }),
            normal: None,
        }
    }

    /// Sizes and annotation flags without rendering (scenes are valid by construction).
    pub fn report(&self, _workers: usize) -> OpenReport {
        let st = SampleStats { size: [self.height, self.width], has_label: true, has_depth: true, ..Default::default() };
        OpenReport { samples: vec![st; self.count], skipped: Vec::new() }
    }

    /// Full statistics (renders every scene).
    pub fn full_report(&self, workers: usize) -> OpenReport {
        let samples = parallel_map(self.count, workers, |i| SampleStats::of(&self.scene(i), 255));
        OpenReport { samples, skipped: Vec::new() }
    }
}

impl Dataset for SyntheticDataset {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(self.scene(index))
    }

    fn describe(&self) -> String {
        format!("synthetic scenes ({} of {}x{}, seed {})", self.count, self.height, self.width, self.seed)
    }
}

/// Write the dataset in the authors' layout: `rgb/`, `masks/`, `depth/` PNGs (depth 16-bit,
/// metres × 5000), `list.txt`, and `classes.txt` (a palette file: `R G B name` per class).
/// Every file is written atomically; the same arguments give byte-identical files.
pub fn write_synthetic(out: &Path, ds: &SyntheticDataset, workers: usize) -> Result<(), DataError> {
    for sub in ["rgb", "masks", "depth"] {
        let d = out.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, e))?;
    }
    let write = |p: &Path, bytes: &[u8]| hydra_core::fsio::write_atomic(p, bytes).map_err(|(p, e)| DataError::io(p, e));
    let results = parallel_map(ds.count, workers, |i| -> Result<(), DataError> {
        let s = ds.scene(i);
        let name = format!("{i:06}.png");
        write(&out.join("rgb").join(&name), &image_io::encode_rgb_png(&s.rgb, &[]))?;
        write(&out.join("masks").join(&name), &image_io::encode_gray8_png(s.label.as_ref().unwrap(), &[]))?;
        let d = s.depth.as_ref().unwrap();
        let d16 = Plane { width: d.width, height: d.height, data: d.data.iter().map(|&m| (m as f64 * SYNTH_DEPTH_SCALE).round().clamp(0.0, 65535.0) as u16).collect() };
        write(&out.join("depth").join(&name), &image_io::encode_gray16_png(&d16, &[]))
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    let list: String = (0..ds.count).map(|i| format!("rgb/{i:06}.png\tmasks/{i:06}.png\tdepth/{i:06}.png\n")).collect();
    write(&out.join("list.txt"), list.as_bytes())?;
    let p = synthetic_palette();
    let mut classes = String::from("# R G B name (class 0 first); depth PNGs: metres x 5000\n");
    for (c, n) in p.colors.iter().zip(&p.names) {
        classes.push_str(&format!("{} {} {} {n}\n", c[0], c[1], c[2]));
    }
    write(&out.join("classes.txt"), classes.as_bytes())
}
