//! The deterministic maths of the scenes: 3-vectors, RGB colours, `sin_cos` from IEEE-exact
//! operations only, and hashed value noise for the textures.

/// A 3-vector in world coordinates (metres): x and z horizontal, y up, floor at y = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct V3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl V3 {
    pub(super) const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }

    pub(super) fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    pub(super) fn cross(self, o: Self) -> Self {
        Self::new(self.y * o.z - self.z * o.y, self.z * o.x - self.x * o.z, self.x * o.y - self.y * o.x)
    }

    pub(super) fn length(self) -> f64 {
        self.dot(self).sqrt()
    }

    pub(super) fn normalized(self) -> Self {
        self * (1.0 / self.length())
    }

    /// Component `k` (0 = x, 1 = y, 2 = z).
    pub(super) fn axis(self, k: usize) -> f64 {
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
pub(super) type Rgb = [f64; 3];

pub(super) fn scale(c: Rgb, k: f64) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

pub(super) fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

pub(super) fn luminance(c: Rgb) -> f64 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// `(sin x, cos x)` from range reduction and Taylor polynomials: only IEEE-exact operations, so
/// the result is the same on every platform (accurate to a few ulp, plenty for scene layout).
pub(super) fn sin_cos(x: f64) -> (f64, f64) {
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
pub(super) fn deg(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

pub(super) fn fract(x: f64) -> f64 {
    x - x.floor()
}

/// Hash of an integer lattice point and a seed to [0, 1).
pub(super) fn hash2(a: i64, b: i64, seed: u64) -> f64 {
    let mut z = seed
        ^ (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Smooth 2-D value noise in [0, 1) with unit lattice spacing.
pub(super) fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(x - x0), smooth(y - y0));
    let (i, j) = (x0 as i64, y0 as i64);
    let top = hash2(i, j, seed) + (hash2(i + 1, j, seed) - hash2(i, j, seed)) * sx;
    let bottom = hash2(i, j + 1, seed) + (hash2(i + 1, j + 1, seed) - hash2(i, j + 1, seed)) * sx;
    top + (bottom - top) * sy
}

/// Two octaves of value noise, in [0, 1).
pub(super) fn fbm(x: f64, y: f64, seed: u64) -> f64 {
    0.65 * value_noise(x, y, seed) + 0.35 * value_noise(2.03 * x + 17.1, 2.03 * y + 5.3, seed ^ 0x5555)
}
