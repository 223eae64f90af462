//! The pinhole camera: its pose and intrinsics, and the ray through a pixel.

use super::maths::{sin_cos, V3};

/// A pinhole camera. Rays are `forward + right·(px − cx)/fx + down·(py − cy)/fy` for pixel
/// coordinates `(px, py)` (x right, y down), so a ray's parameter t equals its z-depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Camera {
    pub position: V3,
    pub forward: V3,
    pub right: V3,
    pub down: V3,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
}

impl Camera {
    /// A camera at `position` turned by `yaw` about the vertical axis (0 looks along +z, π/2
    /// along +x), tilted up by `pitch` and rolled by `roll` (radians).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn look(position: V3, yaw: f64, pitch: f64, roll: f64, fx: f64, fy: f64, cx: f64, cy: f64) -> Self {
        let (sy, cyaw) = sin_cos(yaw);
        let (sp, cp) = sin_cos(pitch);
        let (sr, cr) = sin_cos(roll);
        let forward = V3::new(sy * cp, sp, cyaw * cp);
        let right0 = V3::new(-cyaw, 0.0, sy);
        let up0 = right0.cross(forward);
        let right = right0 * cr + up0 * sr;
        let up = up0 * cr - right0 * sr;
        Self { position, forward, right, down: -up, fx, fy, cx, cy }
    }

    /// The (unnormalised) direction of the ray through pixel coordinates `(px, py)`.
    pub(super) fn ray(&self, px: f64, py: f64) -> V3 {
        self.forward + self.right * ((px - self.cx) / self.fx) + self.down * ((py - self.cy) / self.fy)
    }
}
