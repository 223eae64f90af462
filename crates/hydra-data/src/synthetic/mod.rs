//! Synthetic indoor scenes rendered by ray casting: the built-in default dataset.
//!
//! A scene is a rectangular room (floor, four walls, ceiling) holding 3–9 objects (boxes,
//! spheres, vertical cylinders) that stand on the floor, seen by a pinhole camera inside the
//! room. Every pixel casts one ray through its centre; the nearest surface gives the pixel's
//! class, its depth (z-distance along the optical axis) and its colour. Colours come from
//! procedural textures (planks, tiles, stripes, panels, wood grain, dots, bands, ...) whose base
//! colours are drawn from one palette shared by all classes, lit by one or two point lights with
//! hard shadows plus ambient light, and finished with vignetting and camera noise. A class is
//! therefore recognisable from shape, shading, texture and context, not from its colour.
//!
//! Output is a pure function of `(seed, index, height, width)`, bit-identical on every machine:
//! rendering is single-threaded, randomness comes from [`SplitMix64::stream`] in a fixed draw
//! order, and all arithmetic is IEEE-exact (`+ - * /`, `sqrt`, `floor`, `round`); the few angles
//! go through the polynomial `sin_cos` instead of the platform's libm, whose `sin`/`cos` may
//! differ in the last bit between systems.
//!
//! The pieces, one file each: [`maths`] (vectors, colours, deterministic maths), [`material`]
//! (palette and procedural textures), [`camera`], [`shapes`] (objects and their ray
//! intersections), [`layout`] (the random scene), [`ray_cast`] (nearest surface, shadows,
//! labels) and [`render`] (shading, depth, noise). This file holds the public API.

mod camera;
mod layout;
mod material;
mod maths;
mod ray_cast;
mod render;
mod shapes;
#[cfg(test)]
mod tests;

use hydra_core::SplitMix64;

use layout::Scene;

/// Class names of synthetic scenes, index = class id.
pub const SYNTH_CLASSES: [&str; 6] = ["floor", "wall", "ceiling", "box", "sphere", "cylinder"];

/// Display colours of the classes (for palettes), index = class id.
pub const SYNTH_COLORS: [[u8; 3]; 6] =
    [[140, 100, 60], [170, 170, 230], [240, 230, 140], [230, 120, 40], [220, 40, 60], [40, 160, 90]];

/// One rendered scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneImage {
    pub width: usize,
    pub height: usize,
    /// Interleaved 8-bit RGB, row-major, len = width*height*3.
    pub rgb: Vec<u8>,
    /// Class id of the surface hit by each pixel's central ray, len = width*height.
    pub label: Vec<u8>,
    /// Depth in metres: the z-distance along the camera's optical axis (not the ray length) of
    /// the surface hit by the pixel's central ray, len = width*height. Always > 0 and finite.
    pub depth: Vec<f32>,
}

/// Render scene number `index` of the scene family `seed` at `height` x `width`.
///
/// Pure function of `(seed, index, height, width)`: same inputs, bit-identical output, on any
/// machine and thread.
pub fn render_scene(seed: u64, index: u64, height: usize, width: usize) -> SceneImage {
    let mut rng = SplitMix64::stream(seed, index);
    let scene = Scene::random(&mut rng, height, width);
    scene.render(&mut rng, height, width)
}

const FLOOR: u8 = 0;
const WALL: u8 = 1;
const CEILING: u8 = 2;
const BOX: u8 = 3;
const SPHERE: u8 = 4;
const CYLINDER: u8 = 5;
