//! The objects of a scene (boxes, spheres, vertical cylinders): their extent, their exact
//! intersection with a ray, and the normal and texture coordinates where a ray hits them.

use super::material::SurfacePoint;
use super::maths::V3;
use super::{BOX, CYLINDER, SPHERE};

/// Smallest ray parameter accepted as a hit (rays start on or off surfaces, never inside).
pub(super) const EPS: f64 = 1e-9;

/// Which part of an object a ray hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Part {
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
pub(super) enum Shape {
    /// Box with centre `centre`, half extents `half` and yaw given by `(cos, sin)`.
    Cuboid { centre: V3, half: V3, cos: f64, sin: f64 },
    /// Sphere with centre `centre` and radius `radius`.
    Sphere { centre: V3, radius: f64 },
    /// Vertical cylinder from `base` (on the floor) up to `base.y + height`.
    Cylinder { base: V3, radius: f64, height: f64 },
}

impl Shape {
    pub(super) fn class(&self) -> u8 {
        match self {
            Shape::Cuboid { .. } => BOX,
            Shape::Sphere { .. } => SPHERE,
            Shape::Cylinder { .. } => CYLINDER,
        }
    }

    /// Radius of the object's footprint about its vertical axis.
    pub(super) fn footprint(&self) -> f64 {
        match *self {
            Shape::Cuboid { half, .. } => (half.x * half.x + half.z * half.z).sqrt(),
            Shape::Sphere { radius, .. } | Shape::Cylinder { radius, .. } => radius,
        }
    }

    /// Height of the object's highest point.
    pub(super) fn top(&self) -> f64 {
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
    pub(super) fn distance(&self, p: V3) -> f64 {
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
    pub(super) fn intersect(&self, o: V3, d: V3) -> Option<(f64, Part)> {
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
    pub(super) fn surface(&self, p: V3, part: Part) -> (V3, SurfacePoint) {
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
