//! The arithmetic of inference: f32 (the default) or bf16, and which bf16 path this CPU has.
//!
//! With [`Precision::Bf16`] the dense 1×1 convolutions of inference on burn-flex (every
//! expansion and projection of the encoder, the decoder's 1×1 convolutions) round their input
//! and weights to bf16 and accumulate in f32 (`cpu::conv1x1_bf16`); everything else, and all of
//! training, stays f32. Two paths compute the products:
//! - [`Bf16Path::Amx`]: Intel AMX tiles (`tdpbf16ps`; Sapphire Rapids and later), after asking
//!   Linux for the XTILEDATA permission;
//! - [`Bf16Path::Avx512Bf16`]: AVX512-BF16 dot products (`vdpbf16ps`; Cooper Lake, Sapphire
//!   Rapids, AMD Zen 4 and later).
//!
//! A CPU with neither is refused with the missing feature named ([`Bf16Unsupported`]).
//! `HYDRA_BF16_PATH=avx512bf16` keeps a machine with AMX on the AVX512-BF16 path (so that it
//! runs and tests the code a CPU without AMX takes); `HYDRA_CPU_LEVEL` below `avx512` leaves no
//! bf16 path, as on a CPU without AVX-512.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The arithmetic of inference's matrix products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout (PyTorch's arithmetic).
    #[default]
    F32,
    /// bf16 inputs and weights, f32 accumulation, for the dense 1×1 convolutions of inference.
    Bf16,
}

impl Precision {
    /// `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Reads `f32` or `bf16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" | "fp32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

/// How this CPU computes bf16 products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Path {
    /// AMX tiles (`tdpbf16ps`).
    Amx,
    /// AVX512-BF16 dot products (`vdpbf16ps`).
    Avx512Bf16,
}

impl Bf16Path {
    /// `amx` or `avx512bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Path::Amx => "amx",
            Bf16Path::Avx512Bf16 => "avx512bf16",
        }
    }
}

/// bf16 was asked for on a CPU (or under a `HYDRA_CPU_LEVEL`) without a bf16 path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bf16Unsupported(pub String);

impl std::fmt::Display for Bf16Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bf16 inference needs a CPU with AMX-BF16 or AVX512-BF16: {}", self.0)
    }
}

impl std::error::Error for Bf16Unsupported {}

/// The bf16 paths this CPU offers, best first (AMX, then AVX512-BF16), under
/// `HYDRA_CPU_LEVEL` but regardless of `HYDRA_BF16_PATH`; or why there is none.
pub fn bf16_paths() -> Result<Vec<Bf16Path>, Bf16Unsupported> {
    detected().clone()
}

/// What [`bf16_paths`] says, detected once and borrowed (the kernels ask at every call).
pub(crate) fn detected() -> &'static Result<Vec<Bf16Path>, Bf16Unsupported> {
    static PATHS: OnceLock<Result<Vec<Bf16Path>, Bf16Unsupported>> = OnceLock::new();
    PATHS.get_or_init(detect)
}

/// The path bf16 products take here: the best of [`bf16_paths`], or AVX512-BF16 under
/// `HYDRA_BF16_PATH=avx512bf16` (read once).
pub fn bf16_path() -> Result<Bf16Path, Bf16Unsupported> {
    static WANTS_DP: OnceLock<bool> = OnceLock::new();
    let paths = detected().as_ref().map_err(Clone::clone)?;
    let wants_dp = *WANTS_DP.get_or_init(|| std::env::var("HYDRA_BF16_PATH").as_deref() == Ok("avx512bf16"));
    Ok(if wants_dp && paths.contains(&Bf16Path::Avx512Bf16) { Bf16Path::Avx512Bf16 } else { paths[0] })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Result<Vec<Bf16Path>, Bf16Unsupported> {
    if crate::multiversion::allowed_level() < 2 {
        return Err(Bf16Unsupported("HYDRA_CPU_LEVEL caps hydra's kernels below AVX-512".into()));
    }
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl");
    let dp = avx512 && std::arch::is_x86_feature_detected!("avx512bf16");
    let mut paths = Vec::new();
    let amx = crate::cpu::amx::enable();
    if let (true, Ok(())) = (avx512, &amx) {
        paths.push(Bf16Path::Amx);
    }
    if dp {
        paths.push(Bf16Path::Avx512Bf16);
    }
    if paths.is_empty() {
        let why = match amx {
            Err(a) => format!("{a}, and {}", if avx512 { "no AVX512-BF16" } else { "no AVX-512" }),
            Ok(()) => "AMX without AVX-512".into(),
        };
        return Err(Bf16Unsupported(format!("this CPU has {why}")));
    }
    Ok(paths)
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Result<Vec<Bf16Path>, Bf16Unsupported> {
    Err(Bf16Unsupported("hydra's bf16 kernels are written for x86-64 only".into()))
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Sets the precision of inference for the whole process (every later forward pass outside
/// autodiff on burn-flex). Refuses bf16 where this CPU has no bf16 path, naming what is missing.
pub fn set_precision(p: Precision) -> Result<(), Bf16Unsupported> {
    if p == Precision::Bf16 {
        bf16_path()?;
    }
    PRECISION.store(p as u8, Ordering::Relaxed);
    Ok(())
}

/// The precision of inference set by [`set_precision`] (f32 unless set).
pub fn precision() -> Precision {
    if PRECISION.load(Ordering::Relaxed) == Precision::Bf16 as u8 { Precision::Bf16 } else { Precision::F32 }
}

/// Where bf16 products take AVX512-BF16 and this core computes them slower than f32 ones
/// (`cpu::dot_rate`, measured once, ~2 ms), a line that says so with the two rates, for the
/// user who asked for bf16 to be faster; `None` on AMX, or where bf16 products are faster.
pub fn bf16_speed_note() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        static RATES: OnceLock<Option<crate::cpu::dot_rate::DotRates>> = OnceLock::new();
        if bf16_path().ok()? != Bf16Path::Avx512Bf16 {
            return None;
        }
        let r = (*RATES.get_or_init(crate::cpu::dot_rate::measure))?;
        r.bf16_slower().then(|| {
            format!(
                "note: this CPU computes {:.0} bf16 products/ns by AVX512-BF16 against {:.0} f32 products/ns by FMA (one core), so bf16 inference is slower than f32 here; AMX makes it faster",
                r.bf16_dot, r.f32_fma
            )
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}
