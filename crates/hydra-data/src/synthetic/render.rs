//! Shading and image formation: the albedo and normal at a hit, ambient light plus one or two
//! point lights with hard shadows and a specular term, then per pixel the depth along the
//! optical axis, the label, vignetting and camera noise.

use hydra_core::SplitMix64;

use super::layout::Scene;
use super::material::{Material, SurfacePoint};
use super::maths::{hash2, scale, value_noise, Rgb, V3};
use super::ray_cast::Surface;
use super::SceneImage;

impl Scene {
    /// Unit normal, material and albedo of `surface` at the point `p`.
    fn surface_albedo(&self, p: V3, surface: Surface) -> (V3, &Material, Rgb) {
        let plain = |uv: [f64; 2]| SurfacePoint { uv, edge: f64::INFINITY, local: p, cap: false };
        match surface {
            Surface::Floor => (V3::new(0.0, 1.0, 0.0), &self.floor, self.floor.albedo(&plain([p.x, p.z]))),
            Surface::Ceiling => (V3::new(0.0, -1.0, 0.0), &self.ceiling, self.ceiling.albedo(&plain([p.x, p.z]))),
            Surface::Wall(k) => {
                let (normal, uv) = match k {
                    0 => (V3::new(1.0, 0.0, 0.0), [p.z, p.y]),
                    1 => (V3::new(-1.0, 0.0, 0.0), [p.z, p.y]),
                    2 => (V3::new(0.0, 0.0, 1.0), [p.x, p.y]),
                    _ => (V3::new(0.0, 0.0, -1.0), [p.x, p.y]),
                };
                let (skirting_height, skirting_colour) = self.skirting;
                let albedo = if p.y < skirting_height {
                    scale(skirting_colour, if p.y > skirting_height - 0.012 { 0.7 } else { 1.0 })
                } else {
                    // Each wall is painted a slightly different shade.
                    scale(self.wall.albedo(&plain(uv)), 0.92 + 0.16 * hash2(k as i64, 7, self.wall.seed))
                };
                (normal, &self.wall, albedo)
            }
            Surface::Object { index, part } => {
                let (shape, material) = &self.objects[index];
                let (normal, sp) = shape.surface(p, part);
                // A fine grain common to all objects, on top of the pattern.
                let grain = value_noise(p.x * 9.0 + p.y * 5.3, p.z * 9.0 - p.y * 4.1, !material.seed);
                (normal, material, scale(material.albedo(&sp), 0.86 + 0.28 * grain))
            }
        }
    }

    /// Colour of the surface point `p` seen along the ray direction `d`.
    pub(super) fn shade(&self, p: V3, d: V3, surface: Surface) -> Rgb {
        let (normal, material, albedo) = self.surface_albedo(p, surface);
        let mut diffuse = [self.ambient; 3];
        let mut specular = [0.0; 3];
        let origin = p + normal * 1e-6;
        let view = d.normalized();
        for light in &self.lights {
            let to_light = light.position - p;
            let dist2 = to_light.dot(to_light);
            let l = to_light * (1.0 / dist2.sqrt());
            let cos = normal.dot(l);
            if cos <= 0.0 || self.occluded(origin, light.position - origin) {
                continue;
            }
            let falloff = 1.0 / (1.0 + 0.1 * dist2);
            for (sum, c) in diffuse.iter_mut().zip(light.colour) {
                *sum += c * cos * falloff;
            }
            if material.gloss > 0.0 {
                let h = (l - view).normalized();
                let mut s = normal.dot(h).max(0.0);
                for _ in 0..5 {
                    s *= s; // s^32
                }
                for (sum, c) in specular.iter_mut().zip(light.colour) {
                    *sum += material.gloss * s * c * falloff;
                }
            }
        }
        [0, 1, 2].map(|ch| albedo[ch] * diffuse[ch] + specular[ch])
    }

    /// Render the scene at `height` x `width`; the camera noise is drawn from `rng`, one draw
    /// per pixel in row-major order.
    pub(super) fn render(&self, rng: &mut SplitMix64, height: usize, width: usize) -> SceneImage {
        let n = height * width;
        let mut image = SceneImage {
            width,
            height,
            rgb: Vec::with_capacity(3 * n),
            label: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
        };
        let cam = &self.camera;
        // Triangular noise of two 10-bit uniforms has standard deviation 0.408 (in units of its range).
        let noise_amplitude = self.noise / 0.408;
        let corner2 = (cam.cx * cam.cx + cam.cy * cam.cy).max(1.0);
        for row in 0..height {
            for col in 0..width {
                let (px, py) = (col as f64 + 0.5, row as f64 + 0.5);
                let d = cam.ray(px, py);
                let (t, surface) = self.trace(cam.position, d);
                let p = cam.position + d * t;
                image.depth.push((p - cam.position).dot(cam.forward) as f32);
                image.label.push(self.class(surface));

                let colour = self.shade(p, d, surface);
                let (ox, oy) = (px - cam.cx, py - cam.cy);
                let r2 = (ox * ox + oy * oy) / corner2;
                let vignette = 1.0 - self.vignette * r2;
                let bits = rng.next_u64();
                for (ch, (c, gain)) in colour.into_iter().zip(self.gain).enumerate() {
                    let a = (bits >> (20 * ch)) & 0x3FF;
                    let b = (bits >> (20 * ch + 10)) & 0x3FF;
                    let noise = ((a + b) as f64 / 1023.0 - 1.0) * noise_amplitude;
                    let v = c * gain * vignette * 255.0 + noise;
                    image.rgb.push(v.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        image
    }
}
