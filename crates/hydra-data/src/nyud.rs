//! NYUDv2 (and KITTI) in the authors' layout: a root folder and a list file.

use std::path::{Path, PathBuf};

use crate::dataset::{check_labels, validate_items, Dataset, OpenOptions, OpenReport};
use crate::error::DataError;
use crate::image_io::{self, Plane};
use crate::list_file::{self, ListEntry};
use crate::palette::Palette;
use crate::sample::Sample;

/// A dataset described by a list file.
#[derive(Debug, Clone)]
pub struct ListDataset {
    root: PathBuf,
    list: PathBuf,
    entries: Vec<ListEntry>,
    depth_scale: f64,
    label_palette: Option<Palette>,
    ignore_index: u8,
}

impl ListDataset {
    /// Open and validate: every listed file exists, decodes, has the right type, and matches
    /// its RGB image in size; labels are below `num_classes` or the ignore value. An error
    /// names the list line and the file.
    pub fn open(root: &Path, list: &Path, depth_scale: f64, label_palette: Option<Palette>, options: &OpenOptions) -> Result<(Self, OpenReport), DataError> {
        if !root.is_dir() {
            return Err(DataError::io(root, std::io::Error::new(std::io::ErrorKind::NotFound, "dataset root is not a folder")));
        }
        let list_path = if list.is_absolute() { list.to_path_buf() } else { root.join(list) };
        let entries = list_file::read(&list_path)?;
        let mut ds = Self { root: root.into(), list: list_path.clone(), entries, depth_scale, label_palette, ignore_index: options.ignore_index };
        let list_name = list_path.display().to_string();
        let (kept, report) = validate_items(
            &ds.entries,
            options,
            |i| ds.load(i, options.num_classes),
            |e: &ListEntry| format!("{list_name}:{}", e.line),
            &list_name,
        )?;
        ds.entries = kept;
        Ok((ds, report))
    }

    fn bad(&self, e: &ListEntry, detail: String) -> DataError {
        DataError::BadSample { list: self.list.clone(), line: e.line, detail }
    }

    fn load(&self, index: usize, num_classes: Option<usize>) -> Result<Sample, DataError> {
        let e = &self.entries[index];
        let rel = |p: &Path| p.display().to_string();
        let file_err = |p: &Path, err: DataError| self.bad(e, format!("{}: {}", rel(p), strip_path(&err)));
        let rgb = image_io::read_rgb(&self.root.join(&e.rgb)).map_err(|err| file_err(&e.rgb, err))?;
        let size_check = |p: &Path, w: usize, h: usize| {
            if (w, h) != (rgb.width, rgb.height) {
                Err(self.bad(e, format!("{}: {w}x{h} does not match the RGB image {} ({}x{})", rel(p), rel(&e.rgb), rgb.width, rgb.height)))
            } else {
                Ok(())
            }
        };
        let label = match &e.mask {
            None => None,
            Some(p) => {
                let path = self.root.join(p);
                let plane = match &self.label_palette {
                    None => image_io::read_label(&path).map_err(|err| file_err(p, err))?,
                    Some(pal) => {
                        let img = image_io::read_rgb(&path).map_err(|err| file_err(p, err))?;
                        let (data, unknown) = pal.decode_colors(&img.data, self.ignore_index);
                        if unknown > 0 {
                            return Err(self.bad(e, format!("{}: {unknown} pixels have colours that are not in the label palette", rel(p))));
                        }
                        Plane { width: img.width, height: img.height, data }
                    }
                };
                size_check(p, plane.width, plane.height)?;
                check_labels(&plane.data, num_classes, self.ignore_index).map_err(|d| self.bad(e, format!("{}: {d}", rel(p))))?;
                Some(plane)
            }
        };
        let depth = match &e.depth {
            None => None,
            Some(p) => {
                let raw = image_io::read_depth16(&self.root.join(p)).map_err(|err| file_err(p, err))?;
                size_check(p, raw.width, raw.height)?;
                let scale = self.depth_scale as f32;
                Some(Plane { width: raw.width, height: raw.height, data: raw.data.iter().map(|&v| v as f32 / scale).collect() })
            }
        };
        Ok(Sample { name: e.rgb.display().to_string(), rgb, label, depth, normal: None })
    }
}

/// The message of a file error without its path (the caller prefixes the relative path).
fn strip_path(e: &DataError) -> String {
    match e {
        DataError::Io { source, .. } => source.to_string(),
        DataError::BadFile { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

impl Dataset for ListDataset {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.load(index, None)
    }

    fn describe(&self) -> String {
        format!("{} ({} samples, depth scale {})", self.list.display(), self.entries.len(), self.depth_scale)
    }
}
