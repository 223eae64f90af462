//! bf16 values for the bf16 products: rounding from f32, the packed layouts both bf16 paths
//! read, and the scalar reference the kernels are tested against.
//!
//! Layouts (shared by AMX and AVX512-BF16), in the order the kernels read them so that every
//! block they load is contiguous (rows a power-of-two stride apart would share few cache sets):
//! - A (weights, `m × k`, both padded to multiples of 32 with zeros; [`pack_rows`]): per block
//!   of 32 rows, per block of 32 values of k, two tiles of 16 rows × 32 bf16 (rows 0–15, then
//!   16–31), each row 64 bytes: element `(r, c)` at [`a_index`];
//! - B (activations, `k × n`; [`pack_pair_row`]): pair rows, one `u32` per column holding rows
//!   `2p` (low half) and `2p + 1` (high half) of column `j`; per block of 32 columns, its pair
//!   rows one after the other (128 bytes each).
//!
//! Arithmetic: every f32 is rounded to the nearest bf16, ties to even (NaN stays NaN). The
//! hardware treats bf16 subnormals as zero and flushes subnormal results to zero.
//! AVX512-BF16's `vdpbf16ps` adds, per pair, the odd product and then the even one, each
//! addition rounded to f32 (the products of two bf16 are exact in f32): [`reference_dot`] does
//! the same and the AVX512-BF16 kernel equals it bit for bit (with split weights: each pair's
//! `hi` products, then its `lo` products). AMX's `tdpbf16ps` rounds its own
//! way; it stays within `k · 2⁻²⁴ · Σ|aᵢ·bᵢ|` of the exact sum of the bf16 products (the bound of
//! recursive summation; measured: about 0.3 of it).

/// The nearest bf16 to `x` (ties to even), as bits; NaN gives a quiet NaN, and a subnormal
/// gives a zero of its sign (as `vcvtne2ps2bf16` converts).
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        ((b >> 16) | 0x40) as u16
    } else if x.is_subnormal() {
        (b >> 16) as u16 & 0x8000
    } else {
        (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }
}

/// The f32 value of bf16 bits.
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `v` with subnormals flushed to (signed) zero, as the bf16 instructions treat them.
#[inline(always)]
fn flush(v: f32) -> f32 {
    if v.is_subnormal() { 0.0f32.copysign(v) } else { v }
}

/// Where element `(r, c)` of the packed weights lies, for `kp` (padded) values of k per row.
#[inline(always)]
pub fn a_index(r: usize, c: usize, kp: usize) -> usize {
    ((r / 32 * (kp / 32) + c / 32) * 2 + r % 32 / 16) * 512 + r % 16 * 32 + c % 32
}

/// One pair row of B: column `j < width` goes to `dst[j / 32 · stride + j % 32]` as
/// `bf16(even[j]) | bf16(odd[j]) << 16`; zeros for a missing row (k padding) and past the rows'
/// end (column padding). `width` is a multiple of 32.
pub(crate) fn pack_pair_row(dst: &mut [u32], width: usize, stride: usize, even: Option<&[f32]>, odd: Option<&[f32]>) {
    assert!(width % 32 == 0 && (width == 0 || dst.len() >= (width / 32 - 1) * stride + 32), "pack_pair_row: destination size");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bf16") && std::arch::is_x86_feature_detected!("avx512bw") && crate::multiversion::allowed_level() >= 2 {
        // SAFETY: the features were detected on this CPU; the size was checked above.
        return unsafe { pack_pair_row_avx512(dst, width, stride, even, odd) };
    }
    pack_pair_row_scalar(dst, width, stride, even, odd)
}

multiversion!(pack_pair_row_scalar(dst: &mut [u32], width: usize, stride: usize, even: Option<&[f32]>, odd: Option<&[f32]>) {
    let zeros = [0.0f32; 0];
    let (e, o) = (even.unwrap_or(&zeros), odd.unwrap_or(&zeros));
    for j in 0..width {
        let (a, b) = (e.get(j).copied().unwrap_or(0.0), o.get(j).copied().unwrap_or(0.0));
        dst[j / 32 * stride + j % 32] = to_bf16(a) as u32 | (to_bf16(b) as u32) << 16;
    }
});

/// [`pack_pair_row`] 16 columns at a time: `vcvtne2ps2bf16` rounds both rows, a permutation
/// interleaves them.
///
/// # Safety
/// The CPU has AVX512F, AVX512BW and AVX512-BF16; `dst` holds the blocks (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_pair_row_avx512(dst: &mut [u32], width: usize, stride: usize, even: Option<&[f32]>, odd: Option<&[f32]>) {
    use std::arch::x86_64::*;
    // Result lane 2j is even's column j (lanes 0..16 of the conversion), lane 2j + 1 odd's
    // (lanes 16..32).
    let idx: [u16; 32] = std::array::from_fn(|l| if l % 2 == 0 { (l / 2) as u16 } else { 16 + (l / 2) as u16 });
    // SAFETY: idx is 64 bytes; the loads are masked to the rows' columns; each store writes 16
    // values inside a block of 32 that the caller's size covers.
    unsafe {
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
        let load = |r: Option<&[f32]>, j: usize| match r {
            Some(r) if r.len() > j => _mm512_maskz_loadu_ps(((1u32 << (r.len() - j).min(16)) - 1) as u16, r.as_ptr().add(j)),
            _ => _mm512_setzero_ps(),
        };
        for j in (0..width).step_by(16) {
            let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(load(odd, j), load(even, j)));
            let pairs = _mm512_permutexvar_epi16(idx, both);
            _mm512_storeu_si512(dst.as_mut_ptr().add(j / 32 * stride + j % 32) as *mut __m512i, pairs);
        }
    }
}

/// How the weights of a bf16 product are carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Weights {
    /// Each weight rounded to bf16 (8 significant bits).
    Rounded,
    /// Each weight as the sum of two bf16, `hi = bf16(w)` and `lo = bf16(w − hi)` (16
    /// significant bits): twice the products, against the same packed input.
    Split,
}

/// A row-major `m × k` f32 matrix as bf16 in the tiled layout of A ([`a_index`]), `m` and `k`
/// padded to multiples of 32 with zeros: `(hi, lo, padded k)`, `lo` (the remainders
/// `bf16(w − hi)`) with [`Bf16Weights::Split`] only.
pub fn pack_rows(w: &[f32], m: usize, k: usize, weights: Bf16Weights) -> (Vec<u16>, Option<Vec<u16>>, usize) {
    assert_eq!(w.len(), m * k, "pack_rows: size");
    let (mp, kp) = (m.next_multiple_of(32), k.next_multiple_of(32));
    let mut hi = vec![0u16; mp * kp];
    let mut lo = (weights == Bf16Weights::Split).then(|| vec![0u16; mp * kp]);
    // Each row's runs of 32 values of k are contiguous in the tiled layout.
    for (r, src) in w.chunks(k.max(1)).take(m).enumerate() {
        for (cb, run) in src.chunks(32).enumerate() {
            let at = a_index(r, cb * 32, kp);
            pack_run(run, &mut hi[at..at + run.len()], lo.as_mut().map(|l| &mut l[at..at + run.len()]));
        }
    }
    (hi, lo, kp)
}

multiversion!(pack_run(src: &[f32], hi: &mut [u16], lo: Option<&mut [u16]>) {
    for (h, &v) in hi.iter_mut().zip(src) {
        *h = to_bf16(v);
    }
    if let Some(lo) = lo {
        for ((l, &h), &v) in lo.iter_mut().zip(hi.iter()).zip(src) {
            *l = to_bf16(v - from_bf16(h));
        }
    }
});

/// `w` as the kernels see it: `[hi]`, or `[hi, lo]` with [`Bf16Weights::Split`].
fn weight_parts(w: f32, weights: Bf16Weights) -> ([f32; 2], usize) {
    let h = to_bf16(w);
    let hi = flush(from_bf16(h));
    match weights {
        Bf16Weights::Rounded => ([hi, 0.0], 1),
        Bf16Weights::Split => ([hi, flush(from_bf16(to_bf16(w - from_bf16(h))))], 2),
    }
}

/// The scalar reference of one output of a bf16 product, weights `a` and inputs `b` (the same
/// length): the inputs rounded to bf16, the weights carried as `weights` says; then per pair
/// `(2p, 2p + 1)`, in order: `acc += a[2p+1]·b[2p+1]`, then `acc += a[2p]·b[2p]` (then the same
/// with the weights' `lo` parts), each addition rounded to f32, subnormals flushed
/// (`vdpbf16ps`'s arithmetic). An odd length pairs the last value with zeros.
pub fn reference_dot(a: &[f32], b: &[f32], weights: Bf16Weights) -> f32 {
    assert_eq!(a.len(), b.len(), "reference_dot: sizes");
    let x = |i: usize| b.get(i).map_or(0.0, |&x| flush(from_bf16(to_bf16(x))));
    let w = |i: usize| a.get(i).map_or(([0.0; 2], 1), |&v| weight_parts(v, weights)).0;
    let parts = if weights == Bf16Weights::Split { 2 } else { 1 };
    let mut acc = 0.0f32;
    for p in 0..a.len().div_ceil(2) {
        for part in 0..parts {
            acc = flush(acc + w(2 * p + 1)[part] * x(2 * p + 1));
            acc = flush(acc + w(2 * p)[part] * x(2 * p));
        }
    }
    acc
}

/// The exact sum of the products of the weights `a` (carried as `weights` says) and the inputs
/// `b` rounded to bf16 (in f64, exact for the lengths used here), and the bound
/// `n · 2⁻²⁴ · Σ|termᵢ|` (n terms) that a bf16 product's output keeps to it.
pub fn exact_dot_and_bound(a: &[f32], b: &[f32], weights: Bf16Weights) -> (f64, f64) {
    let (mut sum, mut abs, mut n) = (0.0f64, 0.0f64, 0usize);
    for (&w, &x) in a.iter().zip(b) {
        let x = flush(from_bf16(to_bf16(x))) as f64;
        let (parts, count) = weight_parts(w, weights);
        for &part in &parts[..count] {
            sum += part as f64 * x;
            abs += (part as f64 * x).abs();
            n += 1;
        }
    }
    (sum, n as f64 * (2.0f64).powi(-24) * abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even() {
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even 1; a hair above goes up.
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8))), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20))), 1.0 + 2f32.powi(-7));
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even): up.
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 * 2f32.powi(-8))), 1.0 + 2f32.powi(-6));
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        // The largest f32 rounds up to infinity, as round-to-nearest must.
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
    }

    #[test]
    fn packs_pairs_and_pads() {
        let (e, o) = ([1.0f32, 2.0, 3.0], [-1.0f32, 0.5, 4.0]);
        let mut d = vec![7u32; 32];
        pack_pair_row(&mut d, 32, 32, Some(&e), Some(&o));
        assert_eq!(d[1], to_bf16(2.0) as u32 | (to_bf16(0.5) as u32) << 16);
        assert_eq!(&d[3..], &[0; 29]);
        pack_pair_row(&mut d, 32, 32, Some(&e), None);
        assert_eq!(d[2], to_bf16(3.0) as u32);
        // Two blocks of 32 columns, 100 values apart: column 33 is the second value of block 1.
        let long: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let mut d = vec![7u32; 132];
        pack_pair_row(&mut d, 64, 100, None, Some(&long));
        assert_eq!((d[31], d[100 + 1], d[100 + 8], d[32]), ((to_bf16(31.0) as u32) << 16, (to_bf16(33.0) as u32) << 16, 0, 7));
        // The tiled weights: row 17 is row 1 of the second tile, k 33 in the second k block.
        assert_eq!((a_index(0, 0, 64), a_index(1, 2, 64), a_index(17, 0, 64), a_index(0, 33, 64), a_index(32, 0, 64)), (0, 34, 544, 1025, 2048));
        let (w, lo, kp) = pack_rows(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3, Bf16Weights::Rounded);
        assert_eq!((w.len(), kp, lo), (32 * 32, 32, None));
        assert_eq!((w[32 + 2], w[3], w[2 * 32]), (to_bf16(6.0), 0, 0));
        // 1 + 2⁻¹⁰ is not a bf16: hi = 1, lo = 2⁻¹⁰, and hi + lo is the weight again.
        let (hi, lo, _) = pack_rows(&[1.0 + 2f32.powi(-10)], 1, 1, Bf16Weights::Split);
        assert_eq!((from_bf16(hi[0]), from_bf16(lo.unwrap()[0])), (1.0, 2f32.powi(-10)));
    }

    #[test]
    fn the_vector_conversion_equals_the_scalar_one() {
        // Ties, subnormals (to signed zero), NaN (quietened), infinities, the largest f32.
        let special = [1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), -0.0, f32::MIN_POSITIVE / 3.0, -f32::MIN_POSITIVE / 2.0, f32::MIN_POSITIVE * 0.999,
            f32::NAN, f32::from_bits(0x7f80_0001), f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -3.25, 65504.0];
        let row = |n: usize, shift: usize| (0..n).map(|i| special[(i + shift) % special.len()] * if i % 3 == 0 { 1.0 } else { -1.0 }).collect::<Vec<f32>>();
        for (ne, no, width) in [(0, 0, 32), (3, 3, 32), (16, 16, 32), (17, 17, 32), (40, 40, 64), (40, 0, 64), (0, 23, 32), (31, 31, 32), (70, 70, 96)] {
            let (e, o) = (row(ne, 0), row(no, 5));
            let (e, o) = ((ne > 0).then_some(&e[..]), (no > 0).then_some(&o[..]));
            let (mut a, mut b) = (vec![1u32; 3 * width], vec![1u32; 3 * width]);
            pack_pair_row(&mut a, width, 96, e, o);
            pack_pair_row_scalar(&mut b, width, 96, e, o);
            assert_eq!(a, b, "{ne} even, {no} odd, width {width}");
        }
        assert_eq!(to_bf16(-f32::MIN_POSITIVE / 2.0), 0x8000);
        assert_eq!(to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
    }

    #[test]
    fn reference_adds_the_odd_product_first() {
        // Pair 0 leaves acc = 1 (its odd product). Pair 1 then adds x = 2⁻²⁴ (even) and
        // y = 1.5·2⁻²⁴ (odd): odd first, 1 + y rounds to 1 + 2⁻²³, plus x is a tie that goes to
        // the even 1 + 2⁻²²; even first would give 1 + x = 1 (tie to even), plus y = 1 + 2⁻²³.
        let (x, y) = (2f32.powi(-24), 1.5 * 2f32.powi(-24));
        assert_eq!((to_bf16(x) as u32) << 16, x.to_bits());
        assert_eq!((to_bf16(y) as u32) << 16, y.to_bits());
        let got = reference_dot(&[0.0, 1.0, 1.0, 1.0], &[0.0, 1.0, x, y], Bf16Weights::Rounded);
        assert_eq!(got, 1.0 + 2f32.powi(-22));
        assert_eq!((1.0f32 + x) + y, 1.0 + 2f32.powi(-23));
    }
}
