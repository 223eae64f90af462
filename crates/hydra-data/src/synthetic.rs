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

use hydra_model::init::SplitMix64;

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

/// Smallest ray parameter accepted as a hit (rays start on or off surfaces, never inside).
const EPS: f64 = 1e-9;
/// Minimum distance between the camera centre and any object surface at generation time.
const CAMERA_CLEARANCE: f64 = 0.5;
/// Minimum gap between an object's top and the ceiling (lights hang above that gap).
const CEILING_GAP: f64 = 0.4;

// ---------------------------------------------------------------------------------------------
// Vectors, colours and deterministic maths
// ---------------------------------------------------------------------------------------------

/// A 3-vector in world coordinates (metres): x and z horizontal, y up, floor at y = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
struct V3 {
    x: f64,
    y: f64,
    z: f64,
}

impl V3 {
    const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }

    fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    fn cross(self, o: Self) -> Self {
        Self::new(self.y * o.z - self.z * o.y, self.z * o.x - self.x * o.z, self.x * o.y - self.y * o.x)
    }

    fn length(self) -> f64 {
        self.dot(self).sqrt()
    }

    fn normalized(self) -> Self {
        self * (1.0 / self.length())
    }

    /// Component `k` (0 = x, 1 = y, 2 = z).
    fn axis(self, k: usize) -> f64 {
        match k {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }
}

impl std::ops::Add for V3 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl std::ops::Sub for V3 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl std::ops::Mul<f64> for V3 {
    type Output = Self;
    fn mul(self, k: f64) -> Self {
        Self::new(self.x * k, self.y * k, self.z * k)
    }
}

impl std::ops::Neg for V3 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.x, -self.y, -self.z)
    }
}

/// An RGB colour, nominally in [0, 1] (display-referred; no gamma is applied).
type Rgb = [f64; 3];

fn scale(c: Rgb, k: f64) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn luminance(c: Rgb) -> f64 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// `(sin x, cos x)` from range reduction and Taylor polynomials: only IEEE-exact operations, so
/// the result is the same on every platform (accurate to a few ulp, plenty for scene layout).
fn sin_cos(x: f64) -> (f64, f64) {
    use std::f64::consts::FRAC_PI_2;
    let quadrant = (x / FRAC_PI_2).round();
    let r = x - quadrant * FRAC_PI_2; // |r| <= pi/4 (+ rounding)
    let r2 = r * r;
    // Horner forms of the Taylor series of sin r / r and cos r up to r^18; the remainder is
    // below 1e-21.
    let mut s = 0.0;
    let mut c = 0.0;
    for k in (1..=9).rev() {
        let k = k as f64;
        s = 1.0 - s * r2 / ((2.0 * k) * (2.0 * k + 1.0));
        c = 1.0 - c * r2 / ((2.0 * k - 1.0) * (2.0 * k));
    }
    let s = s * r;
    match (quadrant as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// Degrees to radians.
fn deg(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn fract(x: f64) -> f64 {
    x - x.floor()
}

/// Hash of an integer lattice point and a seed to [0, 1).
fn hash2(a: i64, b: i64, seed: u64) -> f64 {
    let mut z = seed
        ^ (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Smooth 2-D value noise in [0, 1) with unit lattice spacing.
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(x - x0), smooth(y - y0));
    let (i, j) = (x0 as i64, y0 as i64);
    let top = hash2(i, j, seed) + (hash2(i + 1, j, seed) - hash2(i, j, seed)) * sx;
    let bottom = hash2(i, j + 1, seed) + (hash2(i + 1, j + 1, seed) - hash2(i, j + 1, seed)) * sx;
    top + (bottom - top) * sy
}

/// Two octaves of value noise, in [0, 1).
fn fbm(x: f64, y: f64, seed: u64) -> f64 {
    0.65 * value_noise(x, y, seed) + 0.35 * value_noise(2.03 * x + 17.1, 2.03 * y + 5.3, seed ^ 0x5555)
}

// ---------------------------------------------------------------------------------------------
// Materials and procedural textures
// ---------------------------------------------------------------------------------------------

/// Base colours shared by all classes, so a colour alone never identifies a class.
const PALETTE: [Rgb; 16] = [
    [0.86, 0.79, 0.64], // beige
    [0.93, 0.90, 0.82], // cream
    [0.95, 0.95, 0.93], // white
    [0.74, 0.74, 0.74], // light grey
    [0.38, 0.38, 0.41], // dark grey
    [0.72, 0.54, 0.34], // oak
    [0.46, 0.31, 0.19], // walnut
    [0.78, 0.43, 0.31], // terracotta
    [0.61, 0.71, 0.56], // sage
    [0.56, 0.71, 0.86], // sky blue
    [0.22, 0.27, 0.47], // navy
    [0.86, 0.69, 0.27], // mustard
    [0.86, 0.61, 0.63], // rose
    [0.22, 0.56, 0.56], // teal
    [0.74, 0.22, 0.21], // red
    [0.55, 0.45, 0.62], // lavender
];

/// Palette entries each class favours (drawn about half the time; otherwise any entry).
const PREFERRED: [&[usize]; 6] = [
    &[0, 3, 4, 5, 6, 7],         // floor
    &[0, 1, 2, 3, 8, 9, 12, 15], // wall
    &[0, 1, 2, 3],               // ceiling
    &[0, 5, 6, 7, 10, 13, 14],   // box
    &[2, 8, 9, 11, 12, 13, 14],  // sphere
    &[2, 3, 4, 7, 8, 10, 11],    // cylinder
];

/// The procedural pattern of a surface; each class has its own family of patterns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    /// Floor: wooden planks of `width` x `length` m, running along x or z.
    Planks { width: f64, length: f64, along_x: bool },
    /// Floor: square tiles with grout lines, optionally a two-colour checkerboard.
    Tiles { size: f64, checker: bool },
    /// Floor: fine-grained carpet noise.
    Carpet,
    /// Wall: vertical wallpaper stripes.
    Stripes { width: f64 },
    /// Wall: painted plaster with low-frequency mottling.
    Mottled,
    /// Wall: panelled lower part up to `height` with a rail, plain paint above.
    Wainscot { height: f64 },
    /// Ceiling: suspended ceiling panels with a grid.
    Panels { size: f64 },
    /// Ceiling: plain plaster with faint noise.
    Plaster,
    /// Box: wood grain with darkened edges.
    Grain { frequency: f64 },
    /// Box: cardboard with a tape strip and darkened edges.
    Cardboard,
    /// Sphere: polka dots.
    Dots { frequency: f64 },
    /// Sphere: beach-ball segments around the vertical axis.
    Segments { count: u32 },
    /// Sphere: `count` bands of latitude in two colours.
    Latitude { count: u32 },
    /// Cylinder: horizontal bands.
    Bands { width: f64 },
    /// Cylinder: vertical flutes.
    Flutes { count: u32 },
}

/// Surface appearance: two colours, a pattern, a texture seed and a specular weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Material {
    base: Rgb,
    second: Rgb,
    pattern: Pattern,
    seed: u64,
    gloss: f64,
}

/// Texture coordinates of a hit point.
#[derive(Debug, Clone, Copy)]
struct SurfacePoint {
    /// Planar coordinates in metres on the surface (for caps: relative to the cap's centre).
    uv: [f64; 2],
    /// Distance in metres to the nearest edge of a box face or a cylinder cap (else infinity).
    edge: f64,
    /// Object-local position: unit vector from a sphere's centre, or (x/r, y, z/r) on a cylinder.
    local: V3,
    /// True on the flat top of a cylinder.
    cap: bool,
}

/// A palette colour favoured by `class`, with small random variations.
fn random_colour(rng: &mut SplitMix64, class: u8) -> Rgb {
    let preferred = PREFERRED[class as usize];
    let index = if rng.uniform() < 0.5 {
        preferred[rng.below(preferred.len() as u64) as usize]
    } else {
        rng.below(PALETTE.len() as u64) as usize
    };
    let brightness = rng.range(0.85, 1.1);
    let mut c = PALETTE[index];
    for v in &mut c {
        *v = ((*v + rng.range(-0.05, 0.05)) * brightness).clamp(0.03, 1.0);
    }
    c
}

/// A second colour for two-tone patterns that differs from `base` by at least 0.15 luminance.
fn contrasting_colour(rng: &mut SplitMix64, class: u8, base: Rgb) -> Rgb {
    let other = mix(base, random_colour(rng, class), rng.range(0.4, 1.0));
    let (lb, lo) = (luminance(base), luminance(other));
    if (lb - lo).abs() >= 0.15 {
        other
    } else if lb > 0.45 {
        scale(other, (lb - 0.2) / lo.max(0.05))
    } else {
        let target = (lb + 0.2).min(1.0);
        mix(other, [1.0; 3], ((target - lo) / (1.0 - lo).max(0.05)).clamp(0.0, 1.0))
    }
}

/// A random material for a surface of `class`.
fn random_material(rng: &mut SplitMix64, class: u8) -> Material {
    let base = random_colour(rng, class);
    let second = contrasting_colour(rng, class, base);
    let seed = rng.next_u64();
    let choice = rng.below(3);
    let pattern = match (class, choice) {
        (FLOOR, 0) => {
            Pattern::Planks { width: rng.range(0.1, 0.25), length: rng.range(0.8, 1.8), along_x: rng.uniform() < 0.5 }
        }
        (FLOOR, 1) => Pattern::Tiles { size: rng.range(0.25, 0.6), checker: rng.uniform() < 0.4 },
        (FLOOR, _) => Pattern::Carpet,
        (WALL, 0) => Pattern::Stripes { width: rng.range(0.04, 0.2) },
        (WALL, 1) => Pattern::Mottled,
        (WALL, _) => Pattern::Wainscot { height: rng.range(0.7, 1.1) },
        (CEILING, 0 | 1) => Pattern::Panels { size: rng.range(0.5, 1.2) },
        (CEILING, _) => Pattern::Plaster,
        (BOX, 0 | 1) => Pattern::Grain { frequency: rng.range(6.0, 16.0) },
        (BOX, _) => Pattern::Cardboard,
        (SPHERE, 0) => Pattern::Dots { frequency: rng.range(3.0, 7.0) },
        (SPHERE, 1) => Pattern::Segments { count: 2 + rng.below(3) as u32 },
        (SPHERE, _) => Pattern::Latitude { count: 3 + rng.below(6) as u32 },
        (_, 0 | 1) => Pattern::Bands { width: rng.range(0.05, 0.25) },
        (_, _) => Pattern::Flutes { count: 6 + rng.below(10) as u32 },
    };
    let gloss = if class >= SPHERE { rng.range(0.0, 0.5) } else { 0.0 };
    Material { base, second, pattern, seed, gloss }
}

/// `(x + i z)^n` for a unit vector `(x, z)`: its real part is cos(n·θ), its imaginary sin(n·θ).
fn complex_power(x: f64, z: f64, n: u32) -> (f64, f64) {
    let (mut re, mut im) = (1.0, 0.0);
    for _ in 0..n {
        (re, im) = (re * x - im * z, re * z + im * x);
    }
    (re, im)
}

impl Material {
    /// The surface colour (albedo) at `sp`.
    fn albedo(&self, sp: &SurfacePoint) -> Rgb {
        let [u, v] = sp.uv;
        let seed = self.seed;
        match self.pattern {
            Pattern::Planks { width, length, along_x } => {
                let (along, across) = if along_x { (u, v) } else { (v, u) };
                let row = (across / width).floor();
                let shifted = along + hash2(row as i64, -1, seed) * length;
                let column = (shifted / length).floor();
                let gap = fract(across / width) * width < 0.006 || fract(shifted / length) * length < 0.006;
                let tone = 0.8 + 0.35 * hash2(row as i64, column as i64, seed);
                let grain = 0.85 + 0.25 * value_noise(along * 1.5, across * 45.0, seed);
                let c = mix(self.base, self.second, 0.25 * hash2(column as i64, row as i64, !seed));
                scale(c, tone * grain * if gap { 0.45 } else { 1.0 })
            }
            Pattern::Tiles { size, checker } => {
                let (i, j) = ((u / size).floor(), (v / size).floor());
                let grout = 0.006 / size;
                let (fu, fv) = (fract(u / size), fract(v / size));
                if fu < grout || fv < grout || fu > 1.0 - grout || fv > 1.0 - grout {
                    return mix(self.base, [0.55, 0.55, 0.52], 0.7);
                }
                let odd = (i as i64 + j as i64).rem_euclid(2) == 1;
                let c = if checker && odd { self.second } else { self.base };
                let speckle = 0.9 + 0.15 * value_noise(u * 25.0, v * 25.0, seed);
                scale(c, speckle * (0.93 + 0.1 * hash2(i as i64, j as i64, seed)))
            }
            Pattern::Carpet => {
                let n = fbm(u * 18.0, v * 18.0, seed);
                scale(mix(self.base, self.second, 0.3 * value_noise(u * 1.2, v * 1.2, !seed)), 0.7 + 0.5 * n)
            }
            Pattern::Stripes { width } => {
                let c = if (u / width).floor() as i64 % 2 == 0 { self.base } else { self.second };
                scale(c, 0.95 + 0.08 * value_noise(u * 3.0, v * 3.0, seed))
            }
            Pattern::Mottled => {
                let n = fbm(u * 2.5, v * 2.5, seed);
                let fine = value_noise(u * 12.0, v * 12.0, !seed);
                scale(mix(self.base, self.second, 0.5 * n), 0.7 + 0.3 * n + 0.16 * fine)
            }
            Pattern::Wainscot { height } => {
                if (v - height).abs() < 0.025 {
                    scale(self.second, 0.65)
                } else if v < height {
                    let groove = fract(u / 0.45) < 0.03;
                    scale(self.second, if groove { 0.6 } else { 0.95 + 0.1 * value_noise(u * 4.0, v * 4.0, seed) })
                } else {
                    scale(self.base, 0.82 + 0.25 * fbm(u * 3.0, v * 3.0, seed))
                }
            }
            Pattern::Panels { size } => {
                let line = 0.02 / size;
                let (fu, fv) = (fract(u / size), fract(v / size));
                if fu < line || fv < line {
                    return mix(self.base, self.second, 0.8);
                }
                scale(self.base, 0.85 + 0.25 * value_noise(u * 30.0, v * 30.0, seed))
            }
            Pattern::Plaster => scale(self.base, 0.85 + 0.25 * fbm(u * 4.0, v * 4.0, seed)),
            Pattern::Grain { frequency } => {
                let ring = fract(v * frequency + 2.5 * value_noise(u * 1.2, v * 3.0, seed));
                let c = mix(self.base, self.second, if ring < 0.3 { 0.6 } else { 0.1 });
                scale(c, if sp.edge < 0.025 { 0.55 } else { 1.0 })
            }
            Pattern::Cardboard => {
                let tape = sp.local.x.abs() < 0.035;
                let c = if tape { mix(self.base, [0.95, 0.9, 0.75], 0.6) } else { self.base };
                let tone = 0.9 + 0.15 * value_noise(u * 8.0, v * 8.0, seed);
                scale(c, tone * if sp.edge < 0.02 { 0.6 } else { 1.0 })
            }
            Pattern::Dots { frequency } => {
                let q = sp.local * frequency;
                let (dx, dy, dz) = (fract(q.x) - 0.5, fract(q.y) - 0.5, fract(q.z) - 0.5);
                if dx * dx + dy * dy + dz * dz < 0.12 { self.second } else { self.base }
            }
            Pattern::Segments { count } => {
                let r = (sp.local.x * sp.local.x + sp.local.z * sp.local.z).sqrt().max(1e-12);
                let (_, sin_n) = complex_power(sp.local.x / r, sp.local.z / r, count);
                if sin_n >= 0.0 { self.base } else { self.second }
            }
            Pattern::Latitude { count } => {
                let band = ((sp.local.y + 1.0) * 0.5 * count as f64).floor() as i64;
                let shade = 0.9 + 0.1 * sp.local.y;
                scale(if band % 2 == 0 { self.base } else { self.second }, shade)
            }
            Pattern::Bands { width } => {
                if sp.cap {
                    return scale(self.base, if fract(sp.edge / 0.05) < 0.3 { 0.7 } else { 1.0 });
                }
                if (v / width).floor() as i64 % 2 == 0 { self.base } else { self.second }
            }
            Pattern::Flutes { count } => {
                if sp.cap {
                    return mix(self.base, self.second, if sp.edge < 0.03 { 0.8 } else { 0.2 });
                }
                let (cos_n, _) = complex_power(sp.local.x, sp.local.z, count);
                scale(self.base, 0.82 + 0.18 * cos_n)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

/// A pinhole camera. Rays are `forward + right·(px − cx)/fx + down·(py − cy)/fy` for pixel
/// coordinates `(px, py)` (x right, y down), so a ray's parameter t equals its z-depth.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Camera {
    position: V3,
    forward: V3,
    right: V3,
    down: V3,
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
}

impl Camera {
    /// A camera at `position` turned by `yaw` about the vertical axis (0 looks along +z, π/2
    /// along +x), tilted up by `pitch` and rolled by `roll` (radians).
    #[allow(clippy::too_many_arguments)]
    fn look(position: V3, yaw: f64, pitch: f64, roll: f64, fx: f64, fy: f64, cx: f64, cy: f64) -> Self {
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
    fn ray(&self, px: f64, py: f64) -> V3 {
        self.forward + self.right * ((px - self.cx) / self.fx) + self.down * ((py - self.cy) / self.fy)
    }
}

/// Which part of an object a ray hit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// Box face perpendicular to local axis `axis` (0 = x, 1 = y, 2 = z), on side `sign`.
    Face { axis: usize, sign: f64 },
    /// Sphere surface.
    Ball,
    /// Cylinder mantle.
    Side,
    /// Cylinder top.
    Cap,
}

/// An object standing on the floor (or, for spheres, possibly on a box).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Box with centre `centre`, half extents `half` and yaw given by `(cos, sin)`.
    Cuboid { centre: V3, half: V3, cos: f64, sin: f64 },
    /// Sphere with centre `centre` and radius `radius`.
    Sphere { centre: V3, radius: f64 },
    /// Vertical cylinder from `base` (on the floor) up to `base.y + height`.
    Cylinder { base: V3, radius: f64, height: f64 },
}

impl Shape {
    fn class(&self) -> u8 {
        match self {
            Shape::Cuboid { .. } => BOX,
            Shape::Sphere { .. } => SPHERE,
            Shape::Cylinder { .. } => CYLINDER,
        }
    }

    /// Radius of the object's footprint about its vertical axis.
    fn footprint(&self) -> f64 {
        match *self {
            Shape::Cuboid { half, .. } => (half.x * half.x + half.z * half.z).sqrt(),
            Shape::Sphere { radius, .. } | Shape::Cylinder { radius, .. } => radius,
        }
    }

    /// Height of the object's highest point.
    fn top(&self) -> f64 {
        match *self {
            Shape::Cuboid { centre, half, .. } => centre.y + half.y,
            Shape::Sphere { centre, radius } => centre.y + radius,
            Shape::Cylinder { base, height, .. } => base.y + height,
        }
    }

    /// World vector `v` in a box's local frame.
    fn to_local(v: V3, cos: f64, sin: f64) -> V3 {
        V3::new(v.x * cos + v.z * sin, v.y, -v.x * sin + v.z * cos)
    }

    /// Local vector `v` of a box in world coordinates.
    fn to_world(v: V3, cos: f64, sin: f64) -> V3 {
        V3::new(v.x * cos - v.z * sin, v.y, v.x * sin + v.z * cos)
    }

    /// Euclidean distance from `p` to the object (0 inside).
    fn distance(&self, p: V3) -> f64 {
        match *self {
            Shape::Cuboid { centre, half, cos, sin } => {
                let l = Self::to_local(p - centre, cos, sin);
                let out = |x: f64, h: f64| (x.abs() - h).max(0.0);
                V3::new(out(l.x, half.x), out(l.y, half.y), out(l.z, half.z)).length()
            }
            Shape::Sphere { centre, radius } => ((p - centre).length() - radius).max(0.0),
            Shape::Cylinder { base, radius, height } => {
                let (dx, dz) = (p.x - base.x, p.z - base.z);
                let radial = ((dx * dx + dz * dz).sqrt() - radius).max(0.0);
                let vertical = (p.y - (base.y + height)).max(base.y - p.y).max(0.0);
                (radial * radial + vertical * vertical).sqrt()
            }
        }
    }

    /// Nearest hit of the ray `o + t·d` with `t > EPS`, if any.
    fn intersect(&self, o: V3, d: V3) -> Option<(f64, Part)> {
        match *self {
            Shape::Cuboid { centre, half, cos, sin } => {
                if misses_ball(o - centre, d, half.dot(half)) {
                    return None;
                }
                let lo = Self::to_local(o - centre, cos, sin);
                let ld = Self::to_local(d, cos, sin);
                intersect_box(lo, ld, half)
            }
            Shape::Sphere { centre, radius } => {
                let oc = o - centre;
                let a = d.dot(d);
                let b = oc.dot(d);
                let disc = b * b - a * (oc.dot(oc) - radius * radius);
                if disc < 0.0 {
                    return None;
                }
                let t = (-b - disc.sqrt()) / a;
                (t > EPS).then_some((t, Part::Ball))
            }
            Shape::Cylinder { base, radius, height } => {
                let mid = V3::new(base.x, base.y + 0.5 * height, base.z);
                if misses_ball(o - mid, d, radius * radius + 0.25 * height * height) {
                    return None;
                }
                intersect_cylinder(o - base, d, radius, height)
            }
        }
    }

    /// Outward unit normal and texture coordinates at the hit point `p` on `part`.
    fn surface(&self, p: V3, part: Part) -> (V3, SurfacePoint) {
        match (*self, part) {
            (Shape::Cuboid { centre, half, cos, sin }, Part::Face { axis, sign }) => {
                let l = Self::to_local(p - centre, cos, sin);
                let n_local = match axis {
                    0 => V3::new(sign, 0.0, 0.0),
                    1 => V3::new(0.0, sign, 0.0),
                    _ => V3::new(0.0, 0.0, sign),
                };
                // The two in-face axes; the second is vertical on side faces.
                let (a, b) = match axis {
                    0 => (2, 1),
                    1 => (0, 2),
                    _ => (0, 1),
                };
                let edge = (half.axis(a) - l.axis(a).abs()).min(half.axis(b) - l.axis(b).abs());
                let uv = [l.axis(a) + half.axis(a), l.axis(b) + half.axis(b)];
                let sp = SurfacePoint { uv, edge, local: l, cap: false };
                (Self::to_world(n_local, cos, sin), sp)
            }
            (Shape::Sphere { centre, radius }, _) => {
                let n = (p - centre) * (1.0 / radius);
                (n, SurfacePoint { uv: [0.0; 2], edge: f64::INFINITY, local: n, cap: false })
            }
            (Shape::Cylinder { base, radius, height }, Part::Cap) => {
                let (dx, dz) = (p.x - base.x, p.z - base.z);
                let edge = radius - (dx * dx + dz * dz).sqrt();
                let local = V3::new(dx / radius, height, dz / radius);
                (V3::new(0.0, 1.0, 0.0), SurfacePoint { uv: [dx, dz], edge, local, cap: true })
            }
            (Shape::Cylinder { base, radius, .. }, _) => {
                let n = V3::new((p.x - base.x) / radius, 0.0, (p.z - base.z) / radius);
                let local = V3::new(n.x, p.y - base.y, n.z);
                (n, SurfacePoint { uv: [0.0, p.y - base.y], edge: f64::INFINITY, local, cap: false })
            }
            // A box only reports faces.
            (Shape::Cuboid { .. }, _) => unreachable!("box hit without a face"),
        }
    }
}

/// Whether the line `oc + t·d` (relative to a ball's centre) misses the ball of squared radius
/// `r2`: a cheap early rejection before exact box and cylinder tests. The ball is inflated by
/// a hair so that rounding never rejects a ray grazing a box corner on the ball's surface.
fn misses_ball(oc: V3, d: V3, r2: f64) -> bool {
    let b = oc.dot(d);
    b * b - d.dot(d) * (oc.dot(oc) - (r2 * 1.000_001 + 1e-9)) < 0.0
}

/// Slab test of the ray `o + t·d` against the box `|x| <= half` (box-local coordinates).
fn intersect_box(o: V3, d: V3, half: V3) -> Option<(f64, Part)> {
    let (mut t_near, mut t_far) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut axis = 0;
    for k in 0..3 {
        let (ok, dk, hk) = (o.axis(k), d.axis(k), half.axis(k));
        if dk == 0.0 {
            if ok.abs() > hk {
                return None;
            }
            continue;
        }
        let (t0, t1) = ((-hk - ok) / dk, (hk - ok) / dk);
        let (t0, t1) = if t0 < t1 { (t0, t1) } else { (t1, t0) };
        if t0 > t_near {
            t_near = t0;
            axis = k;
        }
        t_far = t_far.min(t1);
    }
    let sign = if d.axis(axis) > 0.0 { -1.0 } else { 1.0 };
    (t_near <= t_far && t_near > EPS).then_some((t_near, Part::Face { axis, sign }))
}

/// The ray `o + t·d` (relative to the cylinder's base centre) against a vertical cylinder of
/// `radius` from y = 0 to y = `height`: mantle or top cap, whichever is nearer.
fn intersect_cylinder(o: V3, d: V3, radius: f64, height: f64) -> Option<(f64, Part)> {
    let mut best = None;
    let a = d.x * d.x + d.z * d.z;
    if a > 0.0 {
        let b = o.x * d.x + o.z * d.z;
        let disc = b * b - a * (o.x * o.x + o.z * o.z - radius * radius);
        if disc >= 0.0 {
            let t = (-b - disc.sqrt()) / a;
            let y = o.y + t * d.y;
            if t > EPS && (0.0..=height).contains(&y) {
                best = Some((t, Part::Side));
            }
        }
    }
    if d.y < 0.0 && o.y > height {
        let t = (height - o.y) / d.y;
        let (x, z) = (o.x + t * d.x, o.z + t * d.z);
        if t > EPS && x * x + z * z <= radius * radius && best.is_none_or(|(tb, _)| t < tb) {
            best = Some((t, Part::Cap));
        }
    }
    best
}

/// The surface a ray ends on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Surface {
    Floor,
    Ceiling,
    /// Wall 0: x = 0, 1: x = size.x, 2: z = 0, 3: z = size.z.
    Wall(u8),
    /// Object `index` of the scene.
    Object {
        index: usize,
        part: Part,
    },
}

/// A point light.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Light {
    position: V3,
    colour: Rgb,
}

/// A complete scene: room, objects, lights, camera and image formation parameters.
#[derive(Debug, Clone, PartialEq)]
struct Scene {
    /// Room extents: x in [0, size.x], y in [0, size.y] (ceiling height), z in [0, size.z].
    size: V3,
    floor: Material,
    wall: Material,
    ceiling: Material,
    /// Height of the skirting board at the bottom of the walls (0: none) and its colour.
    skirting: (f64, Rgb),
    objects: Vec<(Shape, Material)>,
    lights: Vec<Light>,
    camera: Camera,
    /// Ambient light level.
    ambient: f64,
    /// Per-channel gain (exposure times white balance).
    gain: Rgb,
    /// Darkening of the image corners, in [0, 1).
    vignette: f64,
    /// Standard deviation of the camera noise, in 8-bit levels.
    noise: f64,
}

impl Scene {
    /// A random scene for an image of `height` x `width` pixels.
    fn random(rng: &mut SplitMix64, height: usize, width: usize) -> Self {
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

    /// Nearest surface along `o + t·d` (o inside the room), with its ray parameter.
    fn trace(&self, o: V3, d: V3) -> (f64, Surface) {
        let mut best = (f64::INFINITY, Surface::Floor);
        let mut consider = |t: f64, s: Surface| {
            if t < best.0 {
                best = (t, s);
            }
        };
        if d.x > 0.0 {
            consider((self.size.x - o.x) / d.x, Surface::Wall(1));
        } else if d.x < 0.0 {
            consider(-o.x / d.x, Surface::Wall(0));
        }
        if d.z > 0.0 {
            consider((self.size.z - o.z) / d.z, Surface::Wall(3));
        } else if d.z < 0.0 {
            consider(-o.z / d.z, Surface::Wall(2));
        }
        if d.y > 0.0 {
            consider((self.size.y - o.y) / d.y, Surface::Ceiling);
        } else if d.y < 0.0 {
            consider(-o.y / d.y, Surface::Floor);
        }
        for (index, (shape, _)) in self.objects.iter().enumerate() {
            if let Some((t, part)) = shape.intersect(o, d) {
                consider(t, Surface::Object { index, part });
            }
        }
        best
    }

    /// Whether an object blocks the segment from `p` to `p + to_light`.
    fn occluded(&self, p: V3, to_light: V3) -> bool {
        self.objects.iter().any(|(shape, _)| shape.intersect(p, to_light).is_some_and(|(t, _)| t < 1.0))
    }

    /// Class id of `surface`.
    fn class(&self, surface: Surface) -> u8 {
        match surface {
            Surface::Floor => FLOOR,
            Surface::Ceiling => CEILING,
            Surface::Wall(_) => WALL,
            Surface::Object { index, .. } => self.objects[index].0.class(),
        }
    }

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
    fn shade(&self, p: V3, d: V3, surface: Surface) -> Rgb {
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
    fn render(&self, rng: &mut SplitMix64, height: usize, width: usize) -> SceneImage {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Centre of an object's footprint on the floor.
    fn ground_centre(shape: &Shape) -> (f64, f64) {
        match *shape {
            Shape::Cuboid { centre: c, .. } | Shape::Sphere { centre: c, .. } | Shape::Cylinder { base: c, .. } => {
                (c.x, c.z)
            }
        }
    }

    /// A plain test material.
    fn grey() -> Material {
        Material { base: [0.5; 3], second: [0.3; 3], pattern: Pattern::Plaster, seed: 1, gloss: 0.0 }
    }

    /// An empty `size` room seen by `camera`, with one light and no camera noise.
    fn hand_built(size: V3, camera: Camera, objects: Vec<Shape>) -> Scene {
        Scene {
            size,
            floor: grey(),
            wall: grey(),
            ceiling: grey(),
            skirting: (0.0, [0.0; 3]),
            objects: objects.into_iter().map(|s| (s, grey())).collect(),
            lights: vec![Light { position: V3::new(size.x / 2.0, size.y - 0.1, size.z / 2.0), colour: [1.0; 3] }],
            camera,
            ambient: 0.3,
            gain: [1.0; 3],
            vignette: 0.0,
            noise: 0.0,
        }
    }

    /// Check an image's dimensions, buffer lengths, label range and depth range.
    fn assert_valid(img: &SceneImage, h: usize, w: usize) {
        assert_eq!((img.height, img.width), (h, w));
        assert_eq!(img.rgb.len(), h * w * 3);
        assert_eq!(img.label.len(), h * w);
        assert_eq!(img.depth.len(), h * w);
        assert!(img.label.iter().all(|&l| (l as usize) < SYNTH_CLASSES.len()));
        assert!(img.depth.iter().all(|&d| d.is_finite() && d > 0.0 && d < 15.0), "depth out of (0, 15)");
    }

    #[test]
    fn sin_cos_matches_std() {
        for i in -2000..=2000 {
            let x = i as f64 * 0.00731;
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-14 && (c - x.cos()).abs() < 1e-14, "x = {x}");
        }
    }

    #[test]
    fn rendering_is_deterministic_and_index_dependent() {
        let a = render_scene(7, 3, 48, 64);
        let b = render_scene(7, 3, 48, 64);
        assert_eq!(a, b);
        assert_eq!(
            a.depth.iter().map(|d| d.to_bits()).collect::<Vec<_>>(),
            b.depth.iter().map(|d| d.to_bits()).collect::<Vec<_>>()
        );
        let c = render_scene(7, 4, 48, 64);
        let d = render_scene(8, 3, 48, 64);
        assert_ne!(a.rgb, c.rgb);
        assert_ne!(a.depth, c.depth);
        assert_ne!(a.rgb, d.rgb);
        // Rendering on another thread gives the same bits.
        let e = std::thread::spawn(|| render_scene(7, 3, 48, 64)).join().unwrap();
        assert_eq!(a, e);
    }

    /// FNV-1a hash of an image's pixels, labels and depth bits.
    fn fingerprint(img: &SceneImage) -> u64 {
        let depth_bytes = img.depth.iter().flat_map(|d| d.to_le_bytes());
        img.rgb
            .iter()
            .chain(&img.label)
            .copied()
            .chain(depth_bytes)
            .fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
    }

    #[test]
    fn rendering_matches_the_recorded_fingerprint() {
        // Guards bit-identical output across machines and compilers. A deliberate change of the
        // scene design changes this value: update it then (and say so, as the dataset changes).
        let img = render_scene(2024, 17, 60, 80);
        assert_eq!(fingerprint(&img), 0x7095_4245_E74D_8699, "fingerprint {:#018X}", fingerprint(&img));
    }

    #[test]
    fn tiny_and_empty_images_render() {
        for (h, w) in [(0, 0), (0, 5), (1, 1), (2, 3), (5, 1)] {
            assert_valid(&render_scene(1, 2, h, w), h, w);
        }
    }

    #[test]
    fn wall_facing_the_camera_has_constant_z_depth() {
        // Looking along +x at the wall x = 6 from x = 3.5: every pixel sees that wall at z = 2.5
        // although the rays' lengths differ by more than 10%.
        let size = V3::new(6.0, 3.0, 8.0);
        let (h, w) = (48, 64);
        let cam = Camera::look(V3::new(3.5, 1.4, 4.0), std::f64::consts::FRAC_PI_2, 0.0, 0.0, 60.0, 60.0, 32.0, 24.0);
        let scene = hand_built(size, cam, vec![]);
        let img = scene.render(&mut SplitMix64::new(0), h, w);
        assert_valid(&img, h, w);
        assert!(img.label.iter().all(|&l| l == WALL));
        for (i, &d) in img.depth.iter().enumerate() {
            assert!((d as f64 - 2.5).abs() < 1e-5, "pixel {i}: depth {d}");
        }
        let lengths: Vec<f64> =
            (0..h * w).map(|i| cam.ray((i % w) as f64 + 0.5, (i / w) as f64 + 0.5).length() * 2.5).collect();
        let (lo, hi) = lengths.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &l| (lo.min(l), hi.max(l)));
        assert!(hi / lo > 1.1, "ray lengths {lo}..{hi}");
    }

    #[test]
    fn floor_depth_follows_the_pinhole_formula() {
        // Level camera at height 1.2: a floor pixel at row coordinate py has z = 1.2·fy / (py − cy).
        let size = V3::new(7.0, 3.0, 7.0);
        let (h, w) = (60, 80);
        let (fy, cy) = (70.0, 30.3);
        let cam = Camera::look(V3::new(3.5, 1.2, 0.8), 0.0, 0.0, 0.0, 70.0, fy, 40.0, cy);
        let img = hand_built(size, cam, vec![]).render(&mut SplitMix64::new(0), h, w);
        assert_valid(&img, h, w);
        let mut floor_pixels = 0;
        for (i, (&l, &d)) in img.label.iter().zip(&img.depth).enumerate() {
            let py = (i / w) as f64 + 0.5;
            if l == FLOOR {
                floor_pixels += 1;
                let expected = 1.2 * fy / (py - cy);
                assert!((d as f64 - expected).abs() < 1e-5 * expected, "pixel {i}: {d} vs {expected}");
            } else {
                assert!(l == WALL || l == CEILING);
            }
            if l == CEILING {
                assert!(py < cy);
            }
        }
        assert!(floor_pixels > h * w / 4, "{floor_pixels} floor pixels");
    }

    #[test]
    fn objects_on_the_optical_axis_have_exact_depth() {
        // Odd image size with the principal point at the centre of the middle pixel, so that
        // pixel's ray is the optical axis: level, along +z, 1.0 m above the floor from z = 1.
        let (h, w) = (31, 41);
        let size = V3::new(10.0, 3.0, 8.0);
        let cam = Camera::look(V3::new(5.0, 1.0, 1.0), 0.0, 0.0, 0.0, 30.0, 30.0, 20.5, 15.5);
        let centre = 15 * w + 20;
        let (c45, s45) = (0.5f64.sqrt(), 0.5f64.sqrt());
        let cases = [
            // Box front face at z = 2.2.
            (
                Shape::Cuboid { centre: V3::new(5.0, 0.8, 2.5), half: V3::new(0.5, 0.8, 0.3), cos: 1.0, sin: 0.0 },
                BOX,
                1.2,
            ),
            // Box turned by 45°: its vertical edge points at the camera.
            (
                Shape::Cuboid { centre: V3::new(5.0, 0.7, 3.0), half: V3::new(0.4, 0.7, 0.4), cos: c45, sin: s45 },
                BOX,
                2.0 - 0.4 * 2.0f64.sqrt(),
            ),
            (Shape::Sphere { centre: V3::new(5.0, 1.0, 3.5), radius: 0.6 }, SPHERE, 1.9),
            (Shape::Cylinder { base: V3::new(5.0, 0.0, 2.6), radius: 0.35, height: 1.6 }, CYLINDER, 1.25),
        ];
        for (shape, class, expected) in cases {
            let img = hand_built(size, cam, vec![shape]).render(&mut SplitMix64::new(0), h, w);
            assert_valid(&img, h, w);
            assert_eq!(img.label[centre], class, "{shape:?}");
            assert!(
                (img.depth[centre] as f64 - expected).abs() < 1e-5,
                "{shape:?}: {} vs {expected}",
                img.depth[centre]
            );
            // 16 pixels off the axis, the back wall z = 8 is seen past the object.
            assert_eq!(img.label[15 * w + 4], WALL);
            assert!((img.depth[15 * w + 4] as f64 - 7.0).abs() < 1e-5);
        }
    }

    #[test]
    fn random_scenes_are_geometrically_consistent() {
        let (h, w) = (60, 80);
        let mut seen = [0usize; 6];
        for index in 0..20 {
            let mut rng = SplitMix64::stream(11, index);
            let scene = Scene::random(&mut rng, h, w);
            let img = scene.render(&mut rng, h, w);
            assert_eq!(img, render_scene(11, index, h, w));
            assert_valid(&img, h, w);
            let cam = scene.camera;
            let (mut floor_rows, mut ceiling_rows) = (Vec::new(), Vec::new());
            for (i, (&l, &z)) in img.label.iter().zip(&img.depth).enumerate() {
                seen[l as usize] += 1;
                let (row, col) = (i / w, i % w);
                let d = cam.ray(col as f64 + 0.5, row as f64 + 0.5);
                // Unproject with the depth (t = z because d·forward = 1) and check the surface.
                let p = cam.position + d * z as f64;
                let tol = 1e-5 * 12.0;
                match l {
                    FLOOR => {
                        assert!(d.y < 0.0 && p.y.abs() < tol, "floor pixel at height {}", p.y);
                        floor_rows.push(row as f64);
                    }
                    CEILING => {
                        assert!(d.y > 0.0 && (p.y - scene.size.y).abs() < tol);
                        ceiling_rows.push(row as f64);
                    }
                    WALL => {
                        let on_wall =
                            p.x.abs().min((p.x - scene.size.x).abs()).min(p.z.abs()).min((p.z - scene.size.z).abs());
                        assert!(on_wall < tol, "wall pixel {on_wall} m off the walls");
                    }
                    _ => {
                        let dist = scene
                            .objects
                            .iter()
                            .filter(|(s, _)| s.class() == l)
                            .map(|(s, _)| s.distance(p))
                            .fold(f64::MAX, f64::min);
                        assert!(dist < tol, "object pixel {dist} m off its objects");
                    }
                }
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            if !floor_rows.is_empty() && !ceiling_rows.is_empty() {
                assert!(mean(&floor_rows) > mean(&ceiling_rows));
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "class pixel counts {seen:?}");
    }

    #[test]
    fn generated_scenes_respect_layout_constraints() {
        for index in 0..500 {
            let scene = Scene::random(&mut SplitMix64::stream(5, index), 240, 320);
            let (s, c) = (scene.size, scene.camera.position);
            assert!((3.5..7.0).contains(&s.x) && (3.5..7.0).contains(&s.z) && (2.5..3.2).contains(&s.y));
            assert!((3..=9).contains(&scene.objects.len()), "{} objects", scene.objects.len());
            assert!((1.0..=1.8).contains(&c.y));
            let to_room = c.x.min(s.x - c.x).min(c.z).min(s.z - c.z).min(c.y).min(s.y - c.y);
            assert!(to_room >= 0.3, "camera {to_room} m from the room");
            let hfov = 2.0 * (320.0 / 2.0 / scene.camera.fx).atan();
            assert!((deg(49.9)..deg(75.1)).contains(&hfov));
            assert!(scene.camera.forward.y < 0.09 && scene.camera.forward.y > -0.35);
            for (shape, _) in &scene.objects {
                assert!(shape.distance(c) >= 0.3, "camera inside or near {shape:?}");
                let (x, z) = ground_centre(shape);
                let r = shape.footprint();
                assert!(x - r >= 0.0 && x + r <= s.x && z - r >= 0.0 && z + r <= s.z, "{shape:?} leaves the room");
                assert!(shape.top() < s.y - 0.3);
                for light in &scene.lights {
                    assert!(shape.distance(light.position) > 0.1);
                }
            }
        }
    }

    /// Pixel colours binned to 4 bits per channel.
    fn colour_bin(rgb: &[u8]) -> usize {
        (rgb[0] as usize >> 4) << 8 | (rgb[1] as usize >> 4) << 4 | rgb[2] as usize >> 4
    }

    /// Mean intersection-over-union of a 6x6 confusion matrix (rows: truth, columns: guess).
    fn mean_iou(confusion: &[[u64; 6]; 6]) -> f64 {
        let iou = |k: usize| {
            let tp = confusion[k][k] as f64;
            let truth: u64 = confusion[k].iter().sum();
            let guessed: u64 = confusion.iter().map(|row| row[k]).sum();
            let union = (truth + guessed) as f64 - tp;
            if union > 0.0 { tp / union } else { 0.0 }
        };
        (0..6).map(iou).sum::<f64>() / 6.0
    }

    #[test]
    fn colour_alone_does_not_identify_the_class() {
        // The best per-pixel colour -> class lookup table (4 bits per channel), fitted on 60
        // scenes, labels 60 other scenes hardly better than always answering the most frequent
        // class: the classes must be told apart by shape, texture and context.
        let (h, w) = (48, 64);
        let mut counts = vec![[0u32; 6]; 4096];
        let mut totals = [0u32; 6];
        for index in 0..60 {
            let img = render_scene(3, index, h, w);
            for (px, &l) in img.rgb.chunks(3).zip(&img.label) {
                counts[colour_bin(px)][l as usize] += 1;
                totals[l as usize] += 1;
            }
        }
        let argmax = |c: &[u32; 6]| (0..6).max_by_key(|&k| (c[k], usize::MAX - k)).unwrap();
        let majority = argmax(&totals);
        let (mut lut, mut constant) = ([[0u64; 6]; 6], [[0u64; 6]; 6]);
        for index in 60..120 {
            let img = render_scene(3, index, h, w);
            for (px, &l) in img.rgb.chunks(3).zip(&img.label) {
                let c = &counts[colour_bin(px)];
                let guess = if c.iter().sum::<u32>() == 0 { majority } else { argmax(c) };
                lut[l as usize][guess] += 1;
                constant[l as usize][majority] += 1;
            }
        }
        let accuracy =
            |m: &[[u64; 6]; 6]| (0..6).map(|k| m[k][k]).sum::<u64>() as f64 / m.iter().flatten().sum::<u64>() as f64;
        let (lut_acc, const_acc) = (accuracy(&lut), accuracy(&constant));
        let (lut_miou, const_miou) = (mean_iou(&lut), mean_iou(&constant));
        println!(
            "colour LUT: accuracy {lut_acc:.3}, mIoU {lut_miou:.3}; majority class: accuracy {const_acc:.3}, mIoU {const_miou:.3}"
        );
        assert!(
            lut_acc < const_acc + 0.1,
            "colour alone labels {lut_acc:.3} of pixels (majority class {const_acc:.3})"
        );
        assert!(lut_miou < 0.3, "colour alone reaches mIoU {lut_miou:.3}");
    }

    #[test]
    fn surfaces_are_textured() {
        // With flat white light and no noise, each visible surface (a room surface or one object)
        // shows a range of albedos, not one flat colour: luminance varies by at least 10%.
        let (h, w) = (60, 80);
        for index in 0..30 {
            let mut scene = Scene::random(&mut SplitMix64::stream(9, index), h, w);
            scene.lights.clear();
            scene.ambient = 1.0;
            let cam = scene.camera;
            let mut groups: Vec<(Surface, f64, f64, usize)> = Vec::new();
            for i in 0..h * w {
                let d = cam.ray((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
                let (t, surface) = scene.trace(cam.position, d);
                let lum = luminance(scene.shade(cam.position + d * t, d, surface));
                // All parts of one object form one group.
                let key = match surface {
                    Surface::Object { index, .. } => Surface::Object { index, part: Part::Ball },
                    s => s,
                };
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => {
                        g.1 = g.1.min(lum);
                        g.2 = g.2.max(lum);
                        g.3 += 1;
                    }
                    None => groups.push((key, lum, lum, 1)),
                }
            }
            for (surface, lo, hi, n) in groups {
                if n >= 100 {
                    let pattern = match surface {
                        Surface::Floor => scene.floor.pattern,
                        Surface::Ceiling => scene.ceiling.pattern,
                        Surface::Wall(_) => scene.wall.pattern,
                        Surface::Object { index, .. } => scene.objects[index].1.pattern,
                    };
                    let flat = hi - lo < 0.1 * hi;
                    assert!(!flat, "scene {index}: {surface:?} with {pattern:?} is flat ({lo:.3}..{hi:.3}, {n} px)");
                }
            }
        }
    }
}
