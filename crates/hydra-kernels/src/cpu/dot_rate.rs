//! How fast this core multiplies: f32 fused multiply-adds (`vfmadd231ps`) against AVX512-BF16
//! dot products (`vdpbf16ps`), in products per nanosecond, measured by a short loop of each.
//!
//! Why: `vdpbf16ps` does twice the products of an FMA per instruction, but its throughput
//! differs by CPU. On the Intel Xeon of 2026-12-06 (`lscpu` "Intel(R) Xeon(R) Processor",
//! avx512_bf16 and avx512_fp16 flags, no AMX exposed) it took 0.74 ns per instruction against
//! the FMA's 0.18 ns (a C loop of the same form): 43 bf16 products/ns against 89 f32
//! products/ns, so bf16 products run at half the f32 rate there, and the split weights of
//! hydra's bf16 kernels (twice the products) at a quarter. `hydra` uses this measurement to
//! tell a user that `--precision bf16` is slower than f32 on such a CPU.
//!
//! Each loop runs 12 independent accumulators (more than latency × throughput on current
//! cores), so it measures throughput, not latency; the best of several short runs is kept.

#![cfg(target_arch = "x86_64")]

use std::arch::asm;
use std::time::Instant;

/// Products per nanosecond on one core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DotRates {
    /// f32 products by `vfmadd231ps zmm` (16 per instruction).
    pub f32_fma: f64,
    /// bf16 products by `vdpbf16ps zmm` (32 per instruction).
    pub bf16_dot: f64,
}

impl DotRates {
    /// Whether bf16 products come slower than f32 ones here (then hydra's bf16 kernels, which
    /// carry each weight as two bf16, are slower than its f32 kernels).
    pub fn bf16_slower(&self) -> bool {
        self.bf16_dot < self.f32_fma
    }
}

/// Iterations per timed run (12 instructions each): ~0.1 ms per run at either rate.
const ITERATIONS: u64 = 20_000;

macro_rules! twelve {
    ($op:literal) => {
        concat!(
            $op, " zmm0, zmm30, zmm31\n", $op, " zmm1, zmm30, zmm31\n", $op, " zmm2, zmm30, zmm31\n",
            $op, " zmm3, zmm30, zmm31\n", $op, " zmm4, zmm30, zmm31\n", $op, " zmm5, zmm30, zmm31\n",
            $op, " zmm6, zmm30, zmm31\n", $op, " zmm7, zmm30, zmm31\n", $op, " zmm8, zmm30, zmm31\n",
            $op, " zmm9, zmm30, zmm31\n", $op, " zmm10, zmm30, zmm31\n", $op, " zmm11, zmm30, zmm31\n",
        )
    };
}

/// `unsafe fn $name() -> f64`: `ITERATIONS` × 12 `$op` (compiled with `$features`), in
/// nanoseconds.
macro_rules! timed_loop {
    ($name:ident, $features:literal, $op:literal) => {
        #[target_feature(enable = $features)]
        unsafe fn $name() -> f64 {
            let t = Instant::now();
            for _ in 0..ITERATIONS {
                // SAFETY: register-only arithmetic on zmm0–11 (declared clobbered), inputs
                // zmm30/31 (whatever they hold; the values do not matter); the instruction's
                // features are enabled (the caller detected them).
                unsafe {
                    asm!(twelve!($op), out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
                        out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm30") _, out("zmm31") _,
                        options(nomem, nostack));
                }
            }
            t.elapsed().as_secs_f64() * 1e9
        }
    };
}

timed_loop!(time_fma, "avx512f", "vfmadd231ps");
timed_loop!(time_dot, "avx512f,avx512bf16", "vdpbf16ps");

/// The rates of this core, the best of 7 alternating runs of each loop (~2 ms in all); `None`
/// on a CPU without AVX512-BF16.
pub fn measure() -> Option<DotRates> {
    if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")) {
        return None;
    }
    let (mut fma, mut dot) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..7 {
        // SAFETY: both features were detected above.
        unsafe {
            fma = fma.min(time_fma());
            dot = dot.min(time_dot());
        }
    }
    let instructions = (ITERATIONS * 12) as f64;
    Some(DotRates { f32_fma: instructions * 16.0 / fma, bf16_dot: instructions * 32.0 / dot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_is_slower_only_when_its_products_are() {
        assert!(DotRates { f32_fma: 87.0, bf16_dot: 43.0 }.bf16_slower());
        assert!(!DotRates { f32_fma: 43.0, bf16_dot: 87.0 }.bf16_slower());
    }

    #[test]
    fn measures_where_the_cpu_has_avx512_bf16() {
        let has = std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16");
        match measure() {
            None => {
                assert!(!has);
                println!("no AVX512-BF16 here: nothing measured");
            }
            Some(r) => {
                assert!(has);
                // One zmm FMA per 10 ns would be a 100 MHz core; 1000 products/ns a 30 GHz one.
                assert!(r.f32_fma > 1.6 && r.f32_fma < 1000.0 && r.bf16_dot > 3.2 && r.bf16_dot < 2000.0, "{r:?}");
                println!("f32 FMA {:.1} products/ns, vdpbf16ps {:.1} products/ns", r.f32_fma, r.bf16_dot);
            }
        }
    }
}
