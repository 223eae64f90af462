//! Intel AMX for bf16 products: whether the CPU and the kernel offer it (asking Linux for the
//! XTILEDATA permission), and the 32×32 block product on tiles.
//!
//! Tiles: palette 1, `tmm0`–`tmm3` hold the four 16×16 f32 blocks of C, `tmm4`/`tmm5` two
//! 16-row × 32-bf16 slices of A (rows 0–15 and 16–31), `tmm6`/`tmm7` two 16-pair-row × 16-column
//! slices of B in the pair layout of [`super::bf16`] (columns 0–15 and 16–31). The instructions
//! are written as inline assembly: Rust's AMX intrinsics are not stable.
//!
//! `tdpbf16ps` does not round like a chain of f32 additions (measured: it matches neither
//! order of the pair nor a single rounding of the exact sum); its error against the exact
//! product of the bf16 values stays within the recursive-summation bound, which the tests
//! check (`cpu::bf16` states it).

#![cfg(target_arch = "x86_64")]

use std::arch::asm;
use std::sync::OnceLock;

/// Whether AMX-BF16 can run in this process: CPUID says AMX-TILE and AMX-BF16, the OS saves
/// the tile state (XCR0 bits 17 and 18) and Linux granted the XTILEDATA permission
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), asked once per process. Else why not.
pub fn enable() -> Result<(), String> {
    static ENABLED: OnceLock<Result<(), String>> = OnceLock::new();
    ENABLED.get_or_init(request).clone()
}

fn request() -> Result<(), String> {
    // SAFETY: CPUID is available on every x86-64 CPU.
    #[allow(unused_unsafe)]
    let (leaf1, leaf7) = unsafe { (std::arch::x86_64::__cpuid(1), std::arch::x86_64::__cpuid_count(7, 0)) };
    let (tile, bf16) = (leaf7.edx >> 24 & 1 == 1, leaf7.edx >> 22 & 1 == 1);
    if !(tile && bf16) {
        return Err("no AMX-BF16".into());
    }
    if leaf1.ecx >> 27 & 1 == 0 {
        return Err("AMX, but the OS does not enable XSAVE".into());
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available.
    let xcr0 = unsafe { xcr0() };
    if xcr0 >> 17 & 3 != 3 {
        return Err("AMX, but the OS does not save the tile state".into());
    }
    permit()
}

#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// Linux allocates the 8 KB tile state of a process only after it asks.
#[cfg(target_os = "linux")]
fn permit() -> Result<(), String> {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: arch_prctl only changes this process's permission to use the tile state.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if ret == 0 { Ok(()) } else { Err(format!("AMX, but Linux refused the XTILEDATA permission (arch_prctl returned {ret})")) }
}

#[cfg(not(target_os = "linux"))]
fn permit() -> Result<(), String> {
    Err("AMX is used on Linux only".into())
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

/// Loads the tile configuration on this thread; call before [`block`] on each thread, and
/// [`release`] after.
///
/// # Safety
/// [`enable`] must have returned `Ok` in this process.
pub unsafe fn configure() {
    let mut cfg = TileConfig([0; 64]);
    cfg.0[0] = 1;
    for t in 0..8 {
        cfg.0[16 + 2 * t] = 64;
        cfg.0[48 + t] = 16;
    }
    // SAFETY: AMX is enabled (the caller's contract); the configuration is valid for palette 1.
    unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
}

/// Returns the tiles to their initial state (the OS then need not save them).
///
/// # Safety
/// As for [`configure`].
pub unsafe fn release() {
    // SAFETY: AMX is enabled (the caller's contract).
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// `C[32 × 32] = A[32 × 32·kb] · B[32·kb × 32]`, plus `A_lo · B` with `a_lo` (the same layout
/// as `a`) when given: `a` a block of 32 rows of the packed weights, `b` a block of 32 columns of
/// the packed input (16·kb pair rows), both in the layouts of `cpu::bf16`; `c` 32 rows of 32
/// f32, `c_stride` bytes apart. Per block of 32 values of k, `A`'s products are added before
/// `A_lo`'s (the B tiles are loaded once for both).
///
/// # Safety
/// [`configure`] ran on this thread; the blocks lie inside their buffers.
#[inline]
pub unsafe fn block(a: *const u16, a_lo: Option<*const u16>, b: *const u32, kb: usize, c: *mut f32, c_stride: usize) {
    // Tiles of A: 16 rows of 64 bytes, the second 1024 bytes after the first, 2048 bytes per k
    // block; of B: 16 pair rows of 128 bytes (the two column halves 64 bytes apart), 2048 bytes
    // per k block.
    let (a_stride, b_stride) = (64usize, 128usize);
    // SAFETY: the caller's contract; the tiles are configured as this code uses them.
    unsafe {
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
        for t in 0..kb {
            let b0 = (b as *const u8).add(t * 2048);
            asm!(
                "tileloadd tmm6, [{b0} + {sb} * 1]",
                "tileloadd tmm7, [{b1} + {sb} * 1]",
                b0 = in(reg) b0, b1 = in(reg) b0.add(64), sb = in(reg) b_stride,
                options(nostack, readonly),
            );
            // A's tiles, then A_lo's, against the same B tiles.
            for part in std::iter::once(a).chain(a_lo) {
                let a0 = (part as *const u8).add(t * 2048);
                asm!(
                    "tileloadd tmm4, [{a0} + {sa} * 1]",
                    "tileloadd tmm5, [{a1} + {sa} * 1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0, a1 = in(reg) a0.add(1024), sa = in(reg) a_stride,
                    options(nostack, readonly),
                );
            }
        }
        let c = c as *mut u8;
        asm!(
            "tilestored [{c0} + {s} * 1], tmm0",
            "tilestored [{c1} + {s} * 1], tmm1",
            "tilestored [{c2} + {s} * 1], tmm2",
            "tilestored [{c3} + {s} * 1], tmm3",
            c0 = in(reg) c, c1 = in(reg) c.add(64), c2 = in(reg) c.add(16 * c_stride), c3 = in(reg) c.add(16 * c_stride + 64), s = in(reg) c_stride,
            options(nostack),
        );
    }
}
