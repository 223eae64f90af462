//! Scene layout: a random room (its size, materials and skirting), the camera's standpoint
//! with the freest view, 3–9 objects placed on the floor (or a sphere on a box) clear of the
//! camera and the ceiling, and the lights, all drawn from the scene's generator in a fixed
//! order.

use hydra_core::SplitMix64;

use super::camera::Camera;
use super::material::{random_colour, random_material, Material};
use super::maths::{deg, scale, sin_cos, Rgb, V3};
use super::shapes::Shape;
use super::{BOX, CEILING, CYLINDER, FLOOR, SPHERE, WALL};

/// Minimum distance between the camera centre and any object surface at generation time.
const CAMERA_CLEARANCE: f64 = 0.5;
/// Minimum gap between an object's top and the ceiling (lights hang above that gap).
const CEILING_GAP: f64 = 0.4;

/// A point light.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Light {
    pub position: V3,
    pub colour: Rgb,
}

/// A complete scene: room, objects, lights, camera and image formation parameters.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scene {
    /// Room extents: x in [0, size.x], y in [0, size.y] (ceiling height), z in [0, size.z].
    pub size: V3,
    pub floor: Material,
    pub wall: Material,
    pub ceiling: Material,
    /// Height of the skirting board at the bottom of the walls (0: none) and its colour.
    pub skirting: (f64, Rgb),
    pub objects: Vec<(Shape, Material)>,
    pub lights: Vec<Light>,
    pub camera: Camera,
    /// Ambient light level.
    pub ambient: f64,
    /// Per-channel gain (exposure times white balance).
    pub gain: Rgb,
    /// Darkening of the image corners, in [0, 1).
    pub vignette: f64,
    /// Standard deviation of the camera noise, in 8-bit levels.
    pub noise: f64,
}

impl Scene {
    /// A random scene for an image of `height` x `width` pixels.
    pub(super) fn random(rng: &mut SplitMix64, height: usize, width: usize) -> Self {
        let size = V3::new(rng.range(3.5, 7.0), rng.range(2.5, 3.2), rng.range(3.5, 7.0));
        let height_above_floor = rng.range(1.0, 1.8);
        // Look across the room rather than at a nearby wall: of 6 random standpoints and
        // viewing directions, keep the one with the most free view ahead.
        let (mut position, mut yaw, mut best_view) = (V3::new(0.0, 0.0, 0.0), 0.0, -1.0);
        for _ in 0..6 {
            let p = V3::new(rng.range(0.6, size.x - 0.6), height_above_floor, rng.range(0.6, size.z - 0.6));
            let candidate = rng.range(0.0, 2.0 * std::f64::consts::PI);
            let view = free_view(size, p, candidate);
            if view > best_view {
                (position, yaw, best_view) = (p, candidate, view);
            }
        }
        // Pitch in [-20°, 5°], more often looking down than up (mean -10°).
        let u = rng.uniform();
        let pitch = deg(-20.0 + 25.0 * u * u.sqrt());
        let roll = deg(rng.range(-3.0, 3.0));
        let hfov = deg(rng.range(50.0, 75.0));
        let (s, c) = sin_cos(hfov / 2.0);
        let fx = width as f64 / 2.0 * c / s;
        let fy = fx * rng.range(0.98, 1.02);
        let cx = width as f64 * rng.range(0.48, 0.52);
        let cy = height as f64 * rng.range(0.48, 0.52);
        let camera = Camera::look(position, yaw, pitch, roll, fx, fy, cx, cy);

        let floor = random_material(rng, FLOOR);
        let wall = random_material(rng, WALL);
        let ceiling = random_material(rng, CEILING);
        let skirting =
            if rng.uniform() < 0.6 { (rng.range(0.06, 0.14), random_colour(rng, WALL)) } else { (0.0, [0.0; 3]) };

        let count = 3 + rng.below(7) as usize;
        let mut objects: Vec<(Shape, Material)> = Vec::with_capacity(count);
        for _ in 0..count {
            let class = [BOX, SPHERE, CYLINDER][rng.below(3) as usize];
            if let Some(shape) = place_object(rng, class, size, &camera, hfov, &objects) {
                objects.push((shape, random_material(rng, class)));
            }
        }

        let n_lights = 1 + rng.below(2) as usize;
        let lights = (0..n_lights)
            .map(|_| {
                let position =
                    V3::new(rng.range(0.4, size.x - 0.4), size.y - rng.range(0.08, 0.25), rng.range(0.4, size.z - 0.4));
                let warmth = rng.range(-1.0, 1.0);
                let power = rng.range(0.7, 1.1) / n_lights as f64 * if n_lights > 1 { 1.3 } else { 1.0 };
                Light { position, colour: scale([1.0 + 0.1 * warmth, 1.0, 1.0 - 0.1 * warmth], power) }
            })
            .collect();

        let exposure = rng.range(0.9, 1.15);
        let gain = [0; 3].map(|_| exposure * rng.range(0.94, 1.06));
        Scene {
            size,
            floor,
            wall,
            ceiling,
            skirting,
            objects,
            lights,
            camera,
            ambient: rng.range(0.22, 0.38),
            gain,
            vignette: rng.range(0.0, 0.3),
            noise: rng.range(1.0, 3.5),
        }
    }
}

/// Horizontal distance from `position` to the walls of a room of `size` in the direction `yaw`.
fn free_view(size: V3, position: V3, yaw: f64) -> f64 {
    let (dx, dz) = sin_cos(yaw);
    let along = |p: f64, d: f64, extent: f64| {
        if d > 0.0 {
            (extent - p) / d
        } else if d < 0.0 {
            -p / d
        } else {
            f64::INFINITY
        }
    };
    along(position.x, dx, size.x).min(along(position.z, dz, size.z))
}

/// A random object of `class` that fits in the room, clears the camera and, preferably, stands
/// in the camera's field of view; `None` when no spot was found.
fn place_object(
    rng: &mut SplitMix64,
    class: u8,
    size: V3,
    camera: &Camera,
    hfov: f64,
    placed: &[(Shape, Material)],
) -> Option<Shape> {
    let max_top = size.y - CEILING_GAP;
    // Sometimes a sphere rests on top of an earlier box.
    if class == SPHERE && rng.uniform() < 0.3 {
        let boxes: Vec<&Shape> = placed.iter().map(|(s, _)| s).filter(|s| s.class() == BOX).collect();
        if !boxes.is_empty()
            && let Shape::Cuboid { centre, half, .. } = *boxes[rng.below(boxes.len() as u64) as usize]
        {
            let radius = rng.range(0.12, 0.35).min(half.x).min(half.z);
            let sphere = Shape::Sphere { centre: V3::new(centre.x, 2.0 * half.y + radius, centre.z), radius };
            if sphere.top() <= max_top && sphere.distance(camera.position) >= CAMERA_CLEARANCE {
                return Some(sphere);
            }
        }
    }
    for attempt in 0..64 {
        let shrink = if attempt < 32 { 1.0 } else { 0.6 };
        let (x, z) = random_spot(rng, size, camera, hfov);
        let shape = match class {
            BOX => {
                let half = V3::new(rng.range(0.15, 0.6), rng.range(0.12, 0.7), rng.range(0.15, 0.6)) * shrink;
                let (sin, cos) = sin_cos(rng.range(0.0, std::f64::consts::PI));
                Shape::Cuboid { centre: V3::new(x, half.y, z), half, cos, sin }
            }
            SPHERE => {
                let radius = rng.range(0.15, 0.5) * shrink;
                Shape::Sphere { centre: V3::new(x, radius, z), radius }
            }
            _ => {
                let radius = rng.range(0.1, 0.4) * shrink;
                Shape::Cylinder { base: V3::new(x, 0.0, z), radius, height: rng.range(0.3, 1.9) * shrink }
            }
        };
        let margin = shape.footprint() + 0.02;
        let inside = x >= margin && x <= size.x - margin && z >= margin && z <= size.z - margin;
        if inside && shape.top() <= max_top && shape.distance(camera.position) >= CAMERA_CLEARANCE {
            return Some(shape);
        }
    }
    None
}

/// A floor position: usually 1.2–4.5 m in front of the camera within its field of view,
/// otherwise anywhere in the room.
fn random_spot(rng: &mut SplitMix64, size: V3, camera: &Camera, hfov: f64) -> (f64, f64) {
    if rng.uniform() < 0.75 {
        let horizontal = V3::new(camera.forward.x, 0.0, camera.forward.z).normalized();
        let (s, c) = sin_cos(rng.range(-0.45, 0.45) * hfov);
        let dist = rng.range(1.2, 4.5);
        // Rotate the viewing direction about the vertical axis.
        let dx = horizontal.x * c + horizontal.z * s;
        let dz = -horizontal.x * s + horizontal.z * c;
        (camera.position.x + dist * dx, camera.position.z + dist * dz)
    } else {
        (rng.range(0.0, size.x), rng.range(0.0, size.z))
    }
}
