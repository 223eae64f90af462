//! The `multiversion!` macro shared by the CPU kernels.

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
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the features were detected on this CPU.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the features were detected on this CPU.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
