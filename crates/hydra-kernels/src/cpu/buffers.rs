//! Helpers shared by the host kernels: output buffers written in parallel without being
//! zero-filled first, per-thread scratch buffers, and the chunk size of the elementwise passes.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Values per parallel task of the elementwise passes (ReLU6, the channel affine map).
pub(crate) const CHUNK: usize = 1 << 16;

/// `&mut [f32]` over storage whose every element has been written.
///
/// # Safety
/// Every element of `s` must be initialised.
#[inline]
pub(crate) unsafe fn assume_init_mut(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the caller guarantees initialisation.
    unsafe { &mut *(s as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// A buffer of `total` values whose chunks of `chunk` values (the last may be shorter) are
/// written in parallel by `write(index, chunk)`, without zero-filling it first (a memset of
/// every output tensor was ~4 % of a training step).
///
/// # Safety
/// `write` must initialise every element of the chunk it is given.
pub(crate) unsafe fn par_uninit(total: usize, chunk: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(total);
    if total > 0 {
        out.spare_capacity_mut()[..total].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| write(i, c));
    }
    // SAFETY: the chunks cover all `total` elements, and the caller's `write` initialised each.
    unsafe { out.set_len(total) };
    out
}

/// Runs `f` on the first `n` values of the calling thread's buffer `key`, grown as needed and
/// kept from call to call (the scratch planes of the per-plane kernels). The values are what an
/// earlier call left: `f` must write each before reading it. `f` must not use `key` again.
pub(crate) fn with_scratch<R>(key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<f32>>>, n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    key.with_borrow_mut(|v| {
        if v.len() < n {
            v.resize(n, 0.0);
        }
        f(&mut v[..n])
    })
}
