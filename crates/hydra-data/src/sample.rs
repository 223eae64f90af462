//! One training or evaluation sample: RGB and whatever annotations it has.

use crate::image_io::{Plane, RgbImage};

/// A sample. Annotations are optional: with asymmetric annotations a sample contributes only
/// to the tasks it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// A name for reports (the RGB file's path relative to the dataset root, or a number).
    pub name: String,
    /// 8-bit RGB.
    pub rgb: RgbImage,
    /// Class per pixel; `ignore_index` where unlabelled.
    pub label: Option<Plane<u8>>,
    /// Depth in metres per pixel; 0 where there is no measurement.
    pub depth: Option<Plane<f32>>,
    /// Unit surface normals, planar `[3, H, W]`; all-zero where unknown.
    pub normal: Option<Vec<f32>>,
}

impl Sample {
    /// (height, width).
    pub fn size(&self) -> [usize; 2] {
        [self.rgb.height, self.rgb.width]
    }
}
