//! Bilinear resizing of contiguous `[planes, H, W]` f32 buffers with `align_corners = false`,
//! forward and adjoint, parallel over planes with rayon; and the interpolation taps that the
//! fused upsampled cross-entropy ([`super::upsampled_ce`]) shares with them.
//!
//! Semantics follow PyTorch: `src = max(scale · (dst + 0.5) − 0.5, 0)` with `scale = in / out`
//! in f32, combined as `λh0 · (λw0 · a + λw1 · b) + λh1 · (λw0 · c + λw1 · d)`.

use rayon::prelude::*;

use super::buffers::{assume_init_mut, par_uninit, with_scratch};
use crate::resize::linear_taps;

/// Bilinear resize of `planes` planes `[h, w]` → `[oh, ow]` (`align_corners = false`).
pub fn bilinear(x: &[f32], planes: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    let taps = Taps::new([h, w], [oh, ow]);
    // SAFETY: each chunk is one output plane, and `bilinear_plane` writes all its `oh` rows of
    // `ow` values (`blend_row` assigns every element of its row).
    unsafe {
        par_uninit(planes * oh * ow, oh * ow, |p, o| {
            bilinear_plane(&x[p * h * w..(p + 1) * h * w], &taps, assume_init_mut(o));
        })
    }
}

/// Interpolation taps of one resize `[h, w]` → `[oh, ow]`: for every output row (`h*`) and
/// column (`w*`), its two source indices and their weights. The row-level steps below are
/// shared by [`bilinear`], [`bilinear_backward`] and the fused upsampled cross-entropy,
/// which must all compute the same values to the bit.
pub(crate) struct Taps {
    hi0: Vec<i64>,
    hi1: Vec<i64>,
    hl0: Vec<f32>,
    hl1: Vec<f32>,
    wi0: Vec<i64>,
    wi1: Vec<i64>,
    wl0: Vec<f32>,
    wl1: Vec<f32>,
    /// `[h, w]`, `[oh, ow]`.
    sizes: [[usize; 2]; 2],
    /// Whether the width doubles with the taps of an exact 2× upsampling (the decoder's):
    /// output columns 2m + 1 and 2m + 2 both read input columns m and m + 1.
    doubles_width: bool,
}

impl Taps {
    pub(crate) fn new([h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Self {
        let (hi0, hi1, hl0, hl1) = linear_taps(h, oh);
        let (wi0, wi1, wl0, wl1) = linear_taps(w, ow);
        let doubles_width = w >= 2
            && ow == 2 * w
            && (0..w - 1).all(|m| [wi0[2 * m + 1], wi0[2 * m + 2]] == [m as i64; 2] && [wi1[2 * m + 1], wi1[2 * m + 2]] == [m as i64 + 1; 2]);
        Taps { hi0, hi1, hl0, hl1, wi0, wi1, wl0, wl1, sizes: [[h, w], [oh, ow]], doubles_width }
    }

    /// Width pass of a plane `[h, w]` into `tmp [h, ow]`.
    #[inline(always)]
    pub(crate) fn widen(&self, plane: &[f32], tmp: &mut [f32]) {
        let [[_, w], [_, ow]] = self.sizes;
        let tap = |row: &[f32], j: usize| self.wl0[j] * row[self.wi0[j] as usize] + self.wl1[j] * row[self.wi1[j] as usize];
        for (row, tr) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(ow)) {
            if self.doubles_width {
                // The same products and sums as the general form below, with the source
                // columns known: pairs of outputs (2m + 1, 2m + 2) from the pair (m, m + 1),
                // contiguous loads instead of gathers; the first and last columns apart.
                tr[0] = tap(row, 0);
                tr[ow - 1] = tap(row, ow - 1);
                let pairs = tr[1..ow - 1].chunks_exact_mut(2).zip(row.iter().zip(&row[1..]));
                for ((d, (&a, &b)), (l0, l1)) in pairs.zip(self.wl0[1..].chunks_exact(2).zip(self.wl1[1..].chunks_exact(2))) {
                    d[0] = l0[0] * a + l1[0] * b;
                    d[1] = l0[1] * a + l1[1] * b;
                }
                continue;
            }
            for j in 0..ow {
                tr[j] = tap(row, j);
            }
        }
    }

    /// Height pass: output row `i` `[ow]` from the width-interpolated plane `tmp [h, ow]`.
    #[inline(always)]
    pub(crate) fn blend_row(&self, tmp: &[f32], i: usize, out: &mut [f32]) {
        let ow = self.sizes[1][1];
        let (r0, r1) = (self.hi0[i] as usize, self.hi1[i] as usize);
        let (a, b) = (&tmp[r0 * ow..(r0 + 1) * ow], &tmp[r1 * ow..(r1 + 1) * ow]);
        let (l0, l1) = (self.hl0[i], self.hl1[i]);
        for ((d, &va), &vb) in out.iter_mut().zip(a).zip(b) {
            *d = l0 * va + l1 * vb;
        }
    }

    /// Adjoint of [`Taps::blend_row`]: adds output row `i`'s gradient `g [ow]` into its two
    /// source rows of `gtmp [h, ow]`, one contiguous update after the other (the order of
    /// the per-element form).
    #[inline(always)]
    pub(crate) fn spread_row(&self, g: &[f32], i: usize, gtmp: &mut [f32]) {
        let ow = self.sizes[1][1];
        for (r, l) in [(self.hi0[i] as usize, self.hl0[i]), (self.hi1[i] as usize, self.hl1[i])] {
            for (d, &v) in gtmp[r * ow..(r + 1) * ow].iter_mut().zip(g) {
                *d += l * v;
            }
        }
    }

    /// Adjoint of [`Taps::widen`]: scatters `gtmp [h, ow]` into the input columns of
    /// `gx [h, w]`.
    #[inline(always)]
    pub(crate) fn scatter(&self, gtmp: &[f32], gx: &mut [f32]) {
        let [[_, w], [_, ow]] = self.sizes;
        for (tr, dst) in gtmp.chunks_exact(ow).zip(gx.chunks_exact_mut(w)) {
            for j in 0..ow {
                dst[self.wi0[j] as usize] += self.wl0[j] * tr[j];
                dst[self.wi1[j] as usize] += self.wl1[j] * tr[j];
            }
        }
    }
}

thread_local! {
    /// Each thread's width-interpolated plane, kept from plane to plane (`widen` writes every
    /// element before `blend_row` reads it).
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn bilinear_plane(plane: &[f32], t: &Taps, o: &mut [f32]) {
    let [[h, _], [_, ow]] = t.sizes;
    with_scratch(&WIDENED, h * ow, |tmp| bilinear_plane_with(plane, t, o, tmp));
}

// Its own vectorised entry point: the thread-local's closure does not inherit the caller's
// target features.
multiversion!(bilinear_plane_with(plane: &[f32], t: &Taps, o: &mut [f32], tmp: &mut [f32]) {
    let oh = t.sizes[1][0];
    // Width pass into a [h, ow] buffer, then the height pass.
    t.widen(plane, tmp);
    for (i, out) in o.chunks_exact_mut(t.sizes[1][1]).enumerate().take(oh) {
        t.blend_row(tmp, i, out);
    }
});

/// Adjoint of [`bilinear`]: the gradient with respect to its input.
pub fn bilinear_backward(grad: &[f32], planes: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    let taps = Taps::new([h, w], [oh, ow]);
    let mut gx = vec![0f32; planes * h * w];
    gx.par_chunks_mut(h * w).enumerate().for_each(|(p, gx)| {
        bilinear_backward_plane(&grad[p * oh * ow..(p + 1) * oh * ow], &taps, gx);
    });
    gx
}

multiversion!(bilinear_backward_plane(g: &[f32], t: &Taps, gx: &mut [f32]) {
    let [[h, _], [_, ow]] = t.sizes;
    // Height pass into a [h, ow] buffer, then the width pass.
    let mut tmp = vec![0f32; h * ow];
    for (i, row) in g.chunks_exact(ow).enumerate() {
        t.spread_row(row, i, &mut tmp);
    }
    t.scatter(&tmp, gx);
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The width pass of an exact 2× upsampling (contiguous pairs) equals the general form
    /// (gathered taps) to the bit, and is taken exactly where the taps are those of 2×.
    #[test]
    fn doubled_width_pass_is_the_general_one() {
        let mut r = hydra_core::SplitMix64::new(11);
        for (h, w, ow) in [(3, 20, 40), (2, 2, 4), (4, 7, 14), (5, 80, 160), (3, 9, 17), (2, 6, 13)] {
            let t = Taps::new([h, w], [2 * h, ow]);
            assert_eq!(t.doubles_width, ow == 2 * w, "{w} → {ow}");
            let plane: Vec<f32> = (0..h * w).map(|_| r.normal() as f32).collect();
            let mut fast = vec![0f32; h * ow];
            t.widen(&plane, &mut fast);
            let general = Taps { doubles_width: false, ..Taps::new([h, w], [2 * h, ow]) };
            let mut slow = vec![0f32; h * ow];
            general.widen(&plane, &mut slow);
            assert!(fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits()), "{w} → {ow}");
        }
    }

    #[test]
    fn bilinear_backward_is_the_adjoint() {
        // <B x, g> = <x, Bᵀ g> for random x and g.
        let mut r = hydra_core::SplitMix64::new(9);
        for (h, w, oh, ow) in [(3, 4, 7, 9), (8, 6, 4, 3), (5, 5, 5, 5), (15, 20, 30, 40)] {
            let x: Vec<f32> = (0..2 * h * w).map(|_| r.normal() as f32).collect();
            let g: Vec<f32> = (0..2 * oh * ow).map(|_| r.normal() as f32).collect();
            let bx = bilinear(&x, 2, [h, w], [oh, ow]);
            let btg = bilinear_backward(&g, 2, [h, w], [oh, ow]);
            let lhs: f64 = bx.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = x.iter().zip(&btg).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        }
    }
}
