//! The 13-class NYUv2 packaging of MTAN and LibMTL: one `.npy` per sample in `image/`,
//! `label/`, `depth/` and optionally `normal/` under a split folder (e.g. `nyuv2/train`).
//!
//! Arrays are accepted as height × width × channels (the packaging's own layout) or channels
//! first. Images are float in [0, 1] (or 8-bit) RGB; labels float or int with −1 = ignore;
//! depth in metres with 0 = no measurement; normals unit vectors (zero = unknown).

use std::path::{Path, PathBuf};

use crate::dataset::{check_labels, validate_items, Dataset, OpenOptions, OpenReport};
use crate::error::DataError;
use crate::image_io::{Plane, RgbImage};
use crate::npy::{self, NpyArray};
use crate::sample::Sample;

/// A split folder in the MTAN layout.
#[derive(Debug, Clone)]
pub struct MtanDataset {
    root: PathBuf,
    stems: Vec<String>,
    ignore_index: u8,
}

/// (height, width, channels) of an HWC, CHW or HW array.
fn hwc(a: &NpyArray, channels: usize) -> Option<(usize, usize, bool)> {
    match a.shape.as_slice() {
        [h, w] if channels == 1 => Some((*h, *w, false)),
        [h, w, c] if *c == channels => Some((*h, *w, false)),
        [c, h, w] if *c == channels => Some((*h, *w, true)),
        _ => None,
    }
}

/// Planar `[C, H, W]` values of an HWC or CHW array.
fn planar(a: &NpyArray, channels: usize) -> Option<(usize, usize, Vec<f32>)> {
    let (h, w, chw) = hwc(a, channels)?;
    let v = a.to_f32();
    if chw || channels == 1 {
        return Some((h, w, v));
    }
    let mut out = vec![0f32; v.len()];
    for i in 0..h * w {
        for c in 0..channels {
            out[c * h * w + i] = v[i * channels + c];
        }
    }
    Some((h, w, out))
}

impl MtanDataset {
    /// Open and validate every sample.
    pub fn open(root: &Path, options: &OpenOptions) -> Result<(Self, OpenReport), DataError> {
        let image_dir = root.join("image");
        let read_dir = std::fs::read_dir(&image_dir).map_err(|e| DataError::io(&image_dir, e))?;
        let mut stems: Vec<String> = Vec::new();
        for entry in read_dir {
            let entry = entry.map_err(|e| DataError::io(&image_dir, e))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                if os_name.to_string_lossy().ends_with(".npy") {
                    return Err(DataError::bad_file(entry.path(), "file name is not UTF-8; rename it"));
                }
                continue;
            };
            if let Some(stem) = name.strip_suffix(".npy") {
                stems.push(stem.to_string());
            }
        }
        if stems.is_empty() {
            return Err(DataError::bad_file(&image_dir, "no .npy images found (expected the MTAN layout: image/, label/, depth/)"));
        }
        // Numeric stems in numeric order (0.npy, 1.npy, ..., 10.npy), others after, by name.
        stems.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            _ => a.cmp(b),
        });
        let mut ds = Self { root: root.into(), stems, ignore_index: options.ignore_index };
        let root_name = root.display().to_string();
        let (kept, report) = validate_items(
            &ds.stems,
            options,
            |i| ds.load(i, options.num_classes),
            |stem: &String| format!("{root_name}/image/{stem}.npy"),
            &root_name,
        )?;
        ds.stems = kept;
        Ok((ds, report))
    }

    fn path(&self, kind: &str, i: usize) -> PathBuf {
        self.root.join(kind).join(format!("{}.npy", self.stems[i]))
    }

    /// An annotation file: `None` when there is nothing at its path. Anything that is there
    /// (a dangling link, a FIFO, a folder) is read through [`npy::read`], which refuses what is
    /// not a regular file, naming the path.
    fn optional(&self, kind: &str, i: usize) -> Result<Option<(PathBuf, NpyArray)>, DataError> {
        let p = self.path(kind, i);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DataError::io(&p, e)),
            Ok(_) => {}
        }
        let a = npy::read(&p)?;
        Ok(Some((p, a)))
    }

    fn load(&self, i: usize, num_classes: Option<usize>) -> Result<Sample, DataError> {
        let ip = self.path("image", i);
        let img = npy::read(&ip)?;
        let (h, w, rgb_planar) = planar(&img, 3).ok_or_else(|| DataError::bad_file(&ip, format!("image shape {:?}: expected (H, W, 3) or (3, H, W)", img.shape)))?;
        let is_float = matches!(img.data, npy::NpyData::F32(_));
        let max = rgb_planar.iter().cloned().fold(0f32, f32::max);
        let scale = if is_float && max <= 1.0 + 1e-3 { 255.0 } else { 1.0 };
        let mut data = vec![0u8; h * w * 3];
        for p in 0..h * w {
            for c in 0..3 {
                data[p * 3 + c] = (rgb_planar[c * h * w + p] * scale).round().clamp(0.0, 255.0) as u8;
            }
        }
        let rgb = RgbImage { width: w, height: h, data };
        let same = |p: &Path, a: &NpyArray, ch: usize| -> Result<Vec<f32>, DataError> {
            match planar(a, ch) {
                Some((ah, aw, v)) if (ah, aw) == (h, w) => Ok(v),
                Some((ah, aw, _)) => Err(DataError::bad_file(p, format!("{ah}x{aw} does not match the image {h}x{w}"))),
                None => Err(DataError::bad_file(p, format!("shape {:?}: expected {h}x{w} with {ch} channel(s)", a.shape))),
            }
        };
        let label = match self.optional("label", i)? {
            None => None,
            Some((p, a)) => {
                let v = same(&p, &a, 1)?;
                let mut out = Vec::with_capacity(v.len());
                for x in v {
                    if x < 0.0 {
                        out.push(self.ignore_index);
                    } else if x > 254.0 || x.fract() != 0.0 {
                        return Err(DataError::bad_file(&p, format!("label value {x} is not a class index")));
                    } else {
                        out.push(x as u8);
                    }
                }
                check_labels(&out, num_classes, self.ignore_index).map_err(|d| DataError::bad_file(&p, d))?;
                Some(Plane { width: w, height: h, data: out })
            }
        };
        let depth = match self.optional("depth", i)? {
            None => None,
            Some((p, a)) => {
                let v = same(&p, &a, 1)?;
                Some(Plane { width: w, height: h, data: v.into_iter().map(|d| if d.is_finite() && d > 0.0 { d } else { 0.0 }).collect() })
            }
        };
        let normal = match self.optional("normal", i)? {
            None => None,
            Some((p, a)) => Some(same(&p, &a, 3)?),
        };
        Ok(Sample { name: format!("{}", self.stems[i]), rgb, label, depth, normal })
    }
}

impl Dataset for MtanDataset {
    fn len(&self) -> usize {
        self.stems.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.load(index, None)
    }

    fn describe(&self) -> String {
        format!("{} (MTAN layout, {} samples)", self.root.display(), self.stems.len())
    }
}
