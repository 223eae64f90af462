//! What `train` is asked to do, and how a run ended.

use std::path::PathBuf;

use crate::config::Config;
use crate::metrics::EvalMetrics;

/// Where to resume from.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Start a new run (the run folder must not hold one).
    No,
    /// The newest complete checkpoint of the run folder.
    Latest,
    /// A given checkpoint file.
    From(PathBuf),
}

/// What `train` is asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: Config,
    pub resume: Resume,
    /// Stop (after writing a checkpoint) once this invocation has run this many epochs.
    pub stop_after_epochs: Option<usize>,
    /// Resume even when the configuration differs from the run's in ways that break exact
    /// continuation (the differences are listed either way).
    pub allow_config_change: bool,
}

/// How a finished run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub epochs_done: usize,
    pub iterations: u64,
    pub stopped_early: bool,
    pub last_metrics: Option<EvalMetrics>,
    pub best: Option<(usize, f64)>,
    /// Final network tensors (reference keys), for comparisons.
    pub final_state: hydra_model::StateDict,
}
