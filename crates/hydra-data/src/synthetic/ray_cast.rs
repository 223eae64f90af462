//! Ray casting through a scene: the nearest surface along a ray (room or object), whether an
//! object blocks the way to a light, and the class label of the surface hit.

use super::layout::Scene;
use super::maths::V3;
use super::shapes::Part;
use super::{CEILING, FLOOR, WALL};

/// The surface a ray ends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Surface {
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

impl Scene {
    /// Nearest surface along `o + t·d` (o inside the room), with its ray parameter.
    pub(super) fn trace(&self, o: V3, d: V3) -> (f64, Surface) {
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
    pub(super) fn occluded(&self, p: V3, to_light: V3) -> bool {
        self.objects.iter().any(|(shape, _)| shape.intersect(p, to_light).is_some_and(|(t, _)| t < 1.0))
    }

    /// Class id of `surface`.
    pub(super) fn class(&self, surface: Surface) -> u8 {
        match surface {
            Surface::Floor => FLOOR,
            Surface::Ceiling => CEILING,
            Surface::Wall(_) => WALL,
            Surface::Object { index, .. } => self.objects[index].0.class(),
        }
    }
}
