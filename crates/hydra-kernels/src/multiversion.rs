//! The `multiversion!` macro shared by the CPU kernels, and the vector level they may use.

use std::sync::OnceLock;

/// The widest vector level hydra's own kernels may use, from `HYDRA_CPU_LEVEL` (read once):
/// `avx512`, `avx2` or `baseline`; unset or anything else: the widest the CPU has. So that a
/// machine with AVX-512 also runs (and tests) the AVX2 code that a CPU without it takes.
/// (Levels: 2 = AVX-512, 1 = AVX2 + FMA, 0 = baseline.) Third-party kernels (gemm, burn-flex)
/// choose their own.
pub fn allowed_level() -> u8 {
    static LEVEL: OnceLock<u8> = OnceLock::new();
    *LEVEL.get_or_init(|| match std::env::var("HYDRA_CPU_LEVEL").as_deref() {
        Ok("avx2") => 1,
        Ok("baseline") => 0,
        _ => 2,
    })
}

/// The level hydra's kernels use on this CPU: `avx512`, `avx2` or `baseline`.
pub fn active_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let allowed = allowed_level();
        if allowed >= 2 && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vl") {
            return "avx512";
        }
        if allowed >= 1 && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "baseline"
}

/// Run `$body` compiled for the widest vector unit the CPU has (AVX-512, AVX2, or the
/// baseline), chosen at run time: the inner loops are written to be auto-vectorised.
macro_rules! multiversion {
    ($vis:vis $name:ident ( $($arg:ident : $ty:ty),* ) $body:block) => {
        multiversion!($vis $name ( $($arg : $ty),* ) -> () $body);
    };
    ($vis:vis $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty $body:block) => {
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn imp($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) -> $ret { imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) -> $ret { imp($($arg),*) }
                let allowed = $crate::multiversion::allowed_level();
                if allowed >= 2 && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the features were detected on this CPU.
                    return unsafe { v4($($arg),*) };
                }
                if allowed >= 1 && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the features were detected on this CPU.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
