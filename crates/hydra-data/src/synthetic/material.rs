//! Surface materials: base colours from one palette shared by all classes, a procedural
//! pattern per class family (planks, tiles, stripes, panels, wood grain, dots, bands, ...)
//! drawn from the scene's generator, and the albedo of a pattern at a surface point.

use hydra_core::SplitMix64;

use super::maths::{fbm, fract, hash2, luminance, mix, scale, value_noise, Rgb, V3};
use super::{BOX, CEILING, FLOOR, SPHERE, WALL};

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
pub(super) enum Pattern {
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
pub(super) struct Material {
    pub base: Rgb,
    pub second: Rgb,
    pub pattern: Pattern,
    pub seed: u64,
    pub gloss: f64,
}

/// Texture coordinates of a hit point.
#[derive(Debug, Clone, Copy)]
pub(super) struct SurfacePoint {
    /// Planar coordinates in metres on the surface (for caps: relative to the cap's centre).
    pub uv: [f64; 2],
    /// Distance in metres to the nearest edge of a box face or a cylinder cap (else infinity).
    pub edge: f64,
    /// Object-local position: unit vector from a sphere's centre, or (x/r, y, z/r) on a cylinder.
    pub local: V3,
    /// True on the flat top of a cylinder.
    pub cap: bool,
}

/// A palette colour favoured by `class`, with small random variations.
pub(super) fn random_colour(rng: &mut SplitMix64, class: u8) -> Rgb {
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
pub(super) fn random_material(rng: &mut SplitMix64, class: u8) -> Material {
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
    pub(super) fn albedo(&self, sp: &SurfacePoint) -> Rgb {
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
