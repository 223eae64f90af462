//! Fault injection for the crash-safety and NaN tests. Inert unless these environment
//! variables are set (they are never set by hydra itself):
//!
//! - `HYDRA_FAULT_NAN_AT=N`: the training loss of iteration N (1-based, counted over the run)
//!   becomes NaN, as a diverging run's would.
//! - `HYDRA_FAULT_CHECKPOINT_PAUSE_MS=T`: each checkpoint file is written in two halves with a
//!   pause of T ms between them, so that a test can kill the process mid-write.
//! - `HYDRA_FAULT_DIVERGE_RANK=R`: rank R's digest of its network (the check that every rank
//!   of a data-parallel run holds the same one) is taken as if its network differed.

use std::time::Duration;

fn var(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Whether iteration `it` (1-based) must produce a NaN loss.
pub fn nan_at(it: u64) -> bool {
    var("HYDRA_FAULT_NAN_AT") == Some(it)
}

/// The pause inside checkpoint writes, if any.
pub fn checkpoint_pause() -> Option<Duration> {
    var("HYDRA_FAULT_CHECKPOINT_PAUSE_MS").map(Duration::from_millis)
}

/// The rank whose network digest is to differ, if any.
pub fn diverge_rank() -> Option<usize> {
    var("HYDRA_FAULT_DIVERGE_RANK").map(|r| r as usize)
}
