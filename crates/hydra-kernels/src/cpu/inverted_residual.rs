//! MobileNetV2's inverted residual block of inference, fused per band of rows: 1×1 expansion
//! (+ BatchNorm + ReLU6) → depthwise 3×3 (+ BatchNorm + ReLU6) → 1×1 projection (+ BatchNorm)
//! (+ the input), so that the expanded tensor (`t` times the input's channels, 30 MB for the
//! first stride-2 block at 480×640) never leaves the cache: each task expands the few input
//! rows a band of output rows reads into a buffer of its own, runs the depthwise convolution
//! on them into a second one and projects that straight into the output.
//!
//! Each step is the arithmetic of the separate kernels ([`super::conv1x1`]'s products and
//! epilogue, [`super::depthwise`]'s tap order), so the block equals the three layers one after
//! the other to the bit (`gemm`'s sum over the input channels is the same for a band of
//! columns as for a whole plane; the tests check it). One exception: on a small plane the
//! unfused product is split by output channels, and there a product over more than 512 inputs
//! sums differently in the last bits; [`worth_fusing`] leaves such blocks unfused anyway.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::affine::affine_plane;
use super::buffers::assume_init_mut;
use super::depthwise::{dw3x3_band, dw_out};

/// A convolution's weights and the per-output-channel affine map (inference BatchNorm) after it.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// Weights: `[Cout, Cin]` for a 1×1 convolution, `[C, 9]` for the depthwise one.
    pub w: &'a [f32],
    /// `[Cout]`.
    pub scale: &'a [f32],
    /// `[Cout]`.
    pub shift: &'a [f32],
}

/// Bytes of expanded rows (all channels) a task holds at once: the band of output rows is as
/// tall as fits, at least one row. Measured (`examples/block_times`, AMD EPYC, 512 KiB L2 per
/// core, 2 threads): 1 MiB gave the encoder's blocks 1.17× the unfused layers, 512 KiB 1.12×,
/// 2 MiB 0.99× (fewer, taller bands leave threads idle).
pub const BAND_BYTES: usize = 1 << 20;

/// The smallest expanded tensor (bytes per image) worth fusing: below, the unfused layers'
/// larger matrix products win (the blocks at 30×40 and 15×20 of a 480×640 input, 0.8–1.0×
/// fused), above they lose to the traffic of the expanded tensor (60×80 and up, 1.1–1.4×).
pub const FUSE_MIN_BYTES: usize = 3 << 20;

/// Whether the fused kernel is worth running for `block` (see [`FUSE_MIN_BYTES`]).
pub fn worth_fusing(block: &Block) -> bool {
    let [_, _, h, wd] = block.input;
    4 * block.mid * h * wd >= FUSE_MIN_BYTES
}

/// The shape of a fused block: input `[B, Cin, H, W]`, `mid = Cin · t` expanded channels,
/// `cout` outputs, the depthwise stride.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Input `[B, Cin, H, W]`.
    pub input: [usize; 4],
    /// Expanded channels.
    pub mid: usize,
    /// Output channels.
    pub cout: usize,
    /// Depthwise stride (1 or 2).
    pub stride: usize,
    /// Whether the input is added to the output (stride 1, `Cin = cout`).
    pub residual: bool,
}

/// `x [B, Cin, H, W]` → `[B, cout, H', W']` (`H' = ⌈H / s⌉`): `project(depthwise(expand(x)))`
/// with each layer's affine epilogue (ReLU6 after the first two), plus `x` if `residual`.
pub fn inverted_residual(x: &[f32], block: Block, expand: Layer, depthwise: Layer, project: Layer) -> Vec<f32> {
    let Block { input: [b, cin, h, wd], mid, cout, stride: s, residual } = block;
    assert_eq!(x.len(), b * cin * h * wd, "inverted_residual: input size");
    assert!(expand.w.len() == mid * cin && expand.scale.len() == mid && expand.shift.len() == mid, "inverted_residual: expansion sizes");
    assert!(depthwise.w.len() == mid * 9 && depthwise.scale.len() == mid && depthwise.shift.len() == mid, "inverted_residual: depthwise sizes");
    assert!(project.w.len() == cout * mid && project.scale.len() == cout && project.shift.len() == cout, "inverted_residual: projection sizes");
    assert!(s == 1 || s == 2, "inverted_residual: stride {s}");
    assert!(!residual || (s == 1 && cin == cout), "inverted_residual: a residual needs stride 1 and cin = cout");
    if b * cout * h * wd == 0 {
        return Vec::new();
    }
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    let total = b * cout * oh * ow;
    // Output rows per band: (R − 1)·s + 3 expanded rows must fit the budget.
    let fit = (BAND_BYTES / (4 * mid.max(1) * wd)).max(3);
    let band = ((fit - 3) / s + 1).min(oh);
    // Segments of consecutive bands per image, enough for every thread to have two; a segment
    // re-expands the one or two rows its first band shares with the segment before.
    let segs = (2 * rayon::current_num_threads()).div_ceil(b).clamp(1, oh.div_ceil(band));
    let seg_rows = oh.div_ceil(segs);
    let segs = oh.div_ceil(seg_rows);
    let mut out: Vec<f32> = Vec::with_capacity(total);
    let op = out.as_mut_ptr() as usize;
    // The tasks' buffers, allocated here (by the calling thread, whose allocator arena the
    // rest of the network reuses: allocated by the workers, they stayed in their arenas and
    // raised the peak memory by 2–5 MB), one per thread, passed from task to task.
    let cap = (band - 1) * s + 3;
    let scratch = || Scratch { e: vec![0f32; mid * cap * wd], d: vec![MaybeUninit::uninit(); mid * band * ow] };
    let pool = std::sync::Mutex::new((0..rayon::current_num_threads().min(b * segs)).map(|_| scratch()).collect::<Vec<_>>());
    (0..b * segs).into_par_iter().for_each(|t| {
        let (i, g) = (t / segs, t % segs);
        let rows = g * seg_rows..((g + 1) * seg_rows).min(oh);
        let xi = &x[i * cin * h * wd..(i + 1) * cin * h * wd];
        let mut buffers = pool.lock().expect("no task panics holding the pool").pop().unwrap_or_else(scratch);
        // SAFETY: image i's output block, of which this task writes rows `rows` of every
        // channel only (disjoint between tasks); inside the allocation of `total` values.
        unsafe { segment(xi, block, [expand, depthwise, project], rows, band, &mut buffers, (op as *mut f32).add(i * cout * oh * ow)) };
        pool.lock().expect("no task panics holding the pool").push(buffers);
    });
    // SAFETY: the segments cover every output row of every channel of every image.
    unsafe { out.set_len(total) };
    out
}

/// A task's buffers: the expanded rows (`mid × cap × W`) and the depthwise output of a band
/// (`mid × band × W'`).
struct Scratch {
    e: Vec<f32>,
    d: Vec<MaybeUninit<f32>>,
}

/// Output rows `rows` of one image (`xi [Cin, H, W]`, output block at `dst`, `[cout, H', W']`),
/// `band` rows at a time.
///
/// # Safety
/// `dst` must point to `cout · H' · W'` writable values, of which only rows `rows` of each
/// channel are written here, by no one else at the same time.
unsafe fn segment(xi: &[f32], block: Block, [expand, depthwise, project]: [Layer; 3], rows: std::ops::Range<usize>, band: usize, buffers: &mut Scratch, dst: *mut f32) {
    let Block { input: [_, cin, h, wd], mid, cout, stride: s, residual } = block;
    let (oh, ow) = (dw_out(h, s), dw_out(wd, s));
    // Expanded rows lo .. hi of every channel, channel m at m · cap · W.
    let cap = (band - 1) * s + 3;
    let Scratch { e, d } = buffers;
    let (mut lo, mut hi) = (0, 0);
    let mut oy0 = rows.start;
    while oy0 < rows.end {
        let oy1 = (oy0 + band).min(rows.end);
        let (need_lo, need_hi) = ((oy0 * s).saturating_sub(1), ((oy1 - 1) * s + 2).min(h));
        // Keep the rows the band before expanded that this one reads again.
        if hi <= need_lo || need_lo < lo {
            (lo, hi) = (need_lo, need_lo);
        } else if need_lo > lo {
            for m in 0..mid {
                let c = m * cap * wd;
                e.copy_within(c + (need_lo - lo) * wd..c + (hi - lo) * wd, c);
            }
            lo = need_lo;
        }
        if need_hi > hi {
            let n = (need_hi - hi) * wd;
            // SAFETY: dst is rows hi − lo .. need_hi − lo of every channel's slot of `e`
            // (need_hi − lo ≤ cap), lhs the `mid × cin` weights, rhs input rows hi .. need_hi of
            // every channel of `xi` (rows H · W apart).
            unsafe {
                gemm::gemm(
                    mid, n, cin,
                    e.as_mut_ptr().add((hi - lo) * wd), 1, (cap * wd) as isize, false,
                    expand.w.as_ptr(), 1, cin as isize,
                    xi.as_ptr().add(hi * wd), 1, (h * wd) as isize,
                    0.0, 1.0, false, false, false,
                    gemm::Parallelism::None,
                );
            }
            for m in 0..mid {
                let at = m * cap * wd + (hi - lo) * wd;
                affine_plane(&mut e[at..at + n], expand.scale[m], expand.shift[m], true);
            }
            hi = need_hi;
        }
        let nb = oy1 - oy0;
        for m in 0..mid {
            let o = &mut d[m * nb * ow..(m + 1) * nb * ow];
            dw3x3_band(&e[m * cap * wd..m * cap * wd + (hi - lo) * wd], lo, [h, wd], &depthwise.w[m * 9..m * 9 + 9], s, oy0..oy1, o);
            // SAFETY: dw3x3_band wrote every value of its nb output rows.
            affine_plane(unsafe { assume_init_mut(o) }, depthwise.scale[m], depthwise.shift[m], true);
        }
        // SAFETY: dst is rows oy0 .. oy1 of every output channel (H' · W' apart), this task's
        // rows; rhs the `mid × nb·W'` depthwise block just written (its first mid · nb · W'
        // values of `d`, all initialised).
        unsafe {
            gemm::gemm(
                cout, nb * ow, mid,
                dst.add(oy0 * ow), 1, (oh * ow) as isize, false,
                project.w.as_ptr(), 1, mid as isize,
                d.as_ptr() as *const f32, 1, (nb * ow) as isize,
                0.0, 1.0, false, false, false,
                gemm::Parallelism::None,
            );
        }
        for o in 0..cout {
            // SAFETY: row block o of this band, written by the product above, this task's.
            let y = unsafe { std::slice::from_raw_parts_mut(dst.add(o * oh * ow + oy0 * ow), nb * ow) };
            affine_plane(y, project.scale[o], project.shift[o], false);
            if residual {
                add_input(y, &xi[o * h * wd + oy0 * wd..o * h * wd + oy1 * wd]);
            }
        }
        oy0 = oy1;
    }
}

multiversion!(add_input(y: &mut [f32], x: &[f32]) {
    // `x + y`, as the block's residual connection adds them.
    for (v, &a) in y.iter_mut().zip(x) {
        *v = a + *v;
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{conv1x1::conv1x1, depthwise::depthwise3x3};

    /// A deterministic pattern of `n` values in about [−1, 1].
    fn pattern(n: usize, step: usize, modulus: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * step % modulus) as f32 - (modulus / 2) as f32) / (modulus / 2) as f32).collect()
    }

    /// The three kernels one after the other, as the unfused network runs them.
    fn unfused(x: &[f32], block: Block, [e, d, p]: [Layer; 3]) -> Vec<f32> {
        let Block { input: [b, cin, h, wd], mid, cout, stride, residual } = block;
        let y = conv1x1(x, e.w, [b, cin, h * wd], mid, Some((e.scale, e.shift, true)), None);
        let y = depthwise3x3(&y, d.w, [b, mid, h, wd], stride, Some((d.scale, d.shift, true)));
        let (oh, ow) = (dw_out(h, stride), dw_out(wd, stride));
        let mut y = conv1x1(&y, p.w, [b, mid, oh * ow], cout, Some((p.scale, p.shift, false)), None);
        if residual {
            for (v, &a) in y.iter_mut().zip(x) {
                *v = a + *v;
            }
        }
        y
    }

    #[test]
    fn equals_the_three_layers_to_the_bit() {
        // Odd sizes, both strides, one-row planes, several images, and planes tall and wide
        // enough for several bands and segments (mid · W large: bands of one row).
        let cases = [
            Block { input: [1, 3, 5, 7], mid: 18, cout: 3, stride: 1, residual: true },
            Block { input: [2, 4, 9, 6], mid: 24, cout: 5, stride: 2, residual: false },
            Block { input: [1, 2, 1, 1], mid: 12, cout: 2, stride: 1, residual: true },
            Block { input: [1, 5, 1, 9], mid: 30, cout: 4, stride: 2, residual: false },
            Block { input: [1, 16, 37, 300], mid: 96, cout: 24, stride: 2, residual: false },
            Block { input: [3, 24, 30, 161], mid: 144, cout: 24, stride: 1, residual: true },
            Block { input: [1, 8, 64, 40], mid: 48, cout: 8, stride: 1, residual: true },
        ];
        for block in cases {
            let Block { input: [b, cin, h, wd], mid, cout, .. } = block;
            let x = pattern(b * cin * h * wd, 37, 101);
            let (ew, dw, pw) = (pattern(mid * cin, 13, 29), pattern(mid * 9, 7, 19), pattern(cout * mid, 11, 31));
            let (es, eh) = (pattern(mid, 5, 17), pattern(mid, 3, 13));
            let (ds, dh) = (pattern(mid, 7, 23), pattern(mid, 5, 11));
            let (ps, ph) = (pattern(cout, 3, 7), pattern(cout, 2, 5));
            let layers = [
                Layer { w: &ew, scale: &es, shift: &eh },
                Layer { w: &dw, scale: &ds, shift: &dh },
                Layer { w: &pw, scale: &ps, shift: &ph },
            ];
            let fused = inverted_residual(&x, block, layers[0], layers[1], layers[2]);
            let want = unfused(&x, block, layers);
            assert_eq!(fused.len(), want.len(), "{block:?}");
            let differ = fused.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differ, 0, "{block:?}: {differ} of {} values differ", want.len());
        }
    }
}
