//! Class names and colour maps per dataset.

use std::path::Path;

use crate::error::DataError;

/// Colours (and optional names) of a dataset's classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    /// Colour of class k at index k.
    pub colors: Vec<[u8; 3]>,
    /// Name of class k at index k (`class_k` when unknown).
    pub names: Vec<String>,
    /// Colour drawn for ignored / unlabelled pixels.
    pub ignore: [u8; 3],
}

/// The 40 NYUv2 classes of Gupta et al. (the labels of the authors' NYUDv2-40 masks).
pub const NYUD40_NAMES: [&str; 40] = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
];

/// The 13 NYUv2 classes of the MTAN / LibMTL packaging.
pub const NYUD13_NAMES: [&str; 13] = [
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
    "table", "tv", "wall", "window",
];

/// The 6 KITTI classes of the official multi-task release (CamVid colours).
pub const KITTI6_NAMES: [&str; 6] = ["sky", "building", "road", "sidewalk", "vegetation", "car"];
const KITTI6_COLORS: [[u8; 3]; 6] = [[128, 128, 128], [128, 0, 0], [128, 64, 128], [0, 0, 192], [128, 128, 0], [64, 0, 128]];

/// Entry `i` of the PASCAL VOC bit-interleaved colour map (the authors' `cmap_nyud.npy`).
pub fn voc_color(i: usize) -> [u8; 3] {
    let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
    let mut c = i;
    for j in 0..8 {
        r |= (((c >> 0) & 1) as u8) << (7 - j);
        g |= (((c >> 1) & 1) as u8) << (7 - j);
        b |= (((c >> 2) & 1) as u8) << (7 - j);
        c >>= 3;
    }
    [r, g, b]
}

impl Palette {
    /// NYUDv2-40: class k has VOC colour k + 1; ignore is VOC colour 0 (black).
    pub fn nyud40() -> Self {
        Self {
            colors: (1..=40).map(voc_color).collect(),
            names: NYUD40_NAMES.iter().map(|s| s.to_string()).collect(),
            ignore: voc_color(0),
        }
    }

    /// NYUv2-13 (MTAN packaging), VOC colours as for NYUDv2-40.
    pub fn nyud13() -> Self {
        Self {
            colors: (1..=13).map(voc_color).collect(),
            names: NYUD13_NAMES.iter().map(|s| s.to_string()).collect(),
            ignore: voc_color(0),
        }
    }

    /// KITTI, 6 classes; unlabelled pixels are black.
    pub fn kitti6() -> Self {
        Self { colors: KITTI6_COLORS.to_vec(), names: KITTI6_NAMES.iter().map(|s| s.to_string()).collect(), ignore: [0, 0, 0] }
    }

    /// `n` classes with VOC colours and generic names.
    pub fn generic(n: usize) -> Self {
        Self { colors: (1..=n).map(voc_color).collect(), names: (0..n).map(|k| format!("class_{k}")).collect(), ignore: voc_color(0) }
    }

    /// A built-in palette by name: `nyud`/`nyud40`, `nyud13`, `kitti`.
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "nyud" | "nyud40" | "nyuv2" => Some(Self::nyud40()),
            "nyud13" => Some(Self::nyud13()),
            "kitti" | "kitti6" => Some(Self::kitti6()),
            _ => None,
        }
    }

    /// Read a palette file: a text file with one class per line, `R G B [name]` (class 0
    /// first), an optional `ignore R G B` line, `#` comments. Read as UTF-8 (a leading
    /// byte-order mark dropped) from a regular file only.
    pub fn from_file(path: &Path) -> Result<Self, DataError> {
        let text = hydra_core::fsio::read_text(path).map_err(|e| DataError::io(path, e))?;
        let mut p = Self { colors: Vec::new(), names: Vec::new(), ignore: [0, 0, 0] };
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |d: String| DataError::BadSample { list: path.into(), line: i + 1, detail: d };
            let mut parts = line.split_whitespace();
            let first = parts.next().unwrap();
            let is_ignore = first == "ignore";
            let nums: Vec<&str> = if is_ignore { parts.by_ref().take(3).collect() } else { std::iter::once(first).chain(parts.by_ref().take(2)).collect() };
            if nums.len() != 3 {
                return Err(bad(format!("expected `R G B [name]`, got `{line}`")));
            }
            let rgb: Vec<u8> = nums
                .iter()
                .map(|s| s.parse::<u8>().map_err(|_| bad(format!("`{s}` is not a colour value 0..=255"))))
                .collect::<Result<_, _>>()?;
            let rgb = [rgb[0], rgb[1], rgb[2]];
            if is_ignore {
                p.ignore = rgb;
            } else {
                let name: Vec<&str> = parts.collect();
                p.names.push(if name.is_empty() { format!("class_{}", p.colors.len()) } else { name.join(" ") });
                p.colors.push(rgb);
            }
        }
        if p.colors.is_empty() {
            return Err(DataError::bad_file(path, "palette file lists no classes"));
        }
        Ok(p)
    }

    /// A colour map saved by NumPy: `(N, 3)` integers. A 256-row map is the PASCAL VOC map
    /// the authors index with `label + 1` (row 0 = ignore, as `cmap_nyud.npy`); any other
    /// has one row per class (as `cmap_kitti.npy`, whose extra last row is for unlabelled
    /// pixels), unlabelled pixels drawn black.
    pub fn from_npy(path: &Path) -> Result<Self, DataError> {
        let a = crate::npy::read(path)?;
        if a.shape.len() != 2 || a.shape[1] != 3 || a.shape[0] == 0 {
            return Err(DataError::bad_file(path, format!("colour map of shape {:?}: expected (N, 3)", a.shape)));
        }
        let v = a.to_i64();
        if v.iter().any(|&x| !(0..=255).contains(&x)) {
            return Err(DataError::bad_file(path, "colour values must be 0..=255"));
        }
        let rows: Vec<[u8; 3]> = v.chunks(3).map(|c| [c[0] as u8, c[1] as u8, c[2] as u8]).collect();
        let (ignore, colors) = if rows.len() == 256 { (rows[0], rows[1..].to_vec()) } else { ([0, 0, 0], rows) };
        let names = (0..colors.len()).map(|k| format!("class_{k}")).collect();
        Ok(Self { colors, names, ignore })
    }

    /// A built-in name, a `.npy` colour map, or a palette text file.
    pub fn resolve(spec: &str) -> Result<Self, DataError> {
        match Self::builtin(spec) {
            Some(p) => Ok(p),
            None if spec.ends_with(".npy") => Self::from_npy(Path::new(spec)),
            None => Self::from_file(Path::new(spec)),
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.colors.len()
    }

    /// Whether the palette has no classes.
    pub fn is_empty(&self) -> bool {
        self.colors.is_empty()
    }

    /// Colour of `label` (`ignore` for labels beyond the palette, e.g. 255).
    pub fn color(&self, label: usize) -> [u8; 3] {
        self.colors.get(label).copied().unwrap_or(self.ignore)
    }

    /// Extend with generic colours and names up to `n` classes.
    pub fn extended_to(mut self, n: usize) -> Self {
        while self.colors.len() < n {
            let k = self.colors.len();
            self.colors.push(voc_color(k + 1));
            self.names.push(format!("class_{k}"));
        }
        self
    }

    /// Map a colour-coded label image to class indices; unknown colours and the ignore colour
    /// become `ignore_index`. Returns the labels and the number of pixels of unknown colour.
    pub fn decode_colors(&self, rgb: &[u8], ignore_index: u8) -> (Vec<u8>, usize) {
        let mut unknown = 0;
        let labels = rgb
            .chunks_exact(3)
            .map(|px| {
                let c = [px[0], px[1], px[2]];
                match self.colors.iter().position(|&k| k == c) {
                    Some(k) => k as u8,
                    None => {
                        if c != self.ignore {
                            unknown += 1;
                        }
                        ignore_index
                    }
                }
            })
            .collect();
        (labels, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_map_first_entries() {
        assert_eq!(voc_color(0), [0, 0, 0]);
        assert_eq!(voc_color(1), [128, 0, 0]);
        assert_eq!(voc_color(2), [0, 128, 0]);
        assert_eq!(voc_color(3), [128, 128, 0]);
        assert_eq!(voc_color(15), [192, 128, 128]);
    }

    #[test]
    fn the_authors_npy_colour_maps_match_the_built_in_palettes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/samples");
        let nyud = Palette::from_npy(&root.join("nyud/cmap_nyud.npy")).unwrap();
        assert_eq!(nyud.colors[..40], Palette::nyud40().colors[..]);
        assert_eq!(nyud.ignore, Palette::nyud40().ignore);
        let kitti = Palette::from_npy(&root.join("kitti/cmap_kitti.npy")).unwrap();
        assert_eq!(kitti.colors[..6], Palette::kitti6().colors[..]);
        assert_eq!(kitti.colors[6], [0, 0, 0]);
    }

    #[test]
    fn decode_colors_maps_ignore_and_unknown() {
        let p = Palette::kitti6();
        let rgb = [128, 128, 128, 64, 0, 128, 0, 0, 0, 1, 2, 3];
        let (labels, unknown) = p.decode_colors(&rgb, 255);
        assert_eq!(labels, vec![0, 5, 255, 255]);
        assert_eq!(unknown, 1);
    }
}
