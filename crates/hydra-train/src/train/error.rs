//! Why training stopped with an error.

use std::path::{Path, PathBuf};

use hydra_data::DataError;
use hydra_model::WeightsError;

use crate::checkpoint::CheckpointError;
use crate::reduction_check::InexactReduction;

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Reductions(#[from] InexactReduction),
    #[error("{dir}: the run folder already holds a run (checkpoints or logs); continue it with --resume, or choose another output.dir")]
    RunExists { dir: PathBuf },
    #[error("{dir}: no complete checkpoint to resume from")]
    NoCheckpoint { dir: PathBuf },
    #[error("output.dir = \"{}\": {reason}; a run needs a folder of its own, e.g. runs/NAME", dir.display())]
    BadRunFolder { dir: PathBuf, reason: String },
    #[error("{}: output.dir holds files that are not a hydra run ({}); refusing to train into it: choose a new or empty folder", dir.display(), entry.display())]
    ForeignRunFolder { dir: PathBuf, entry: PathBuf },
    #[error(transparent)]
    Locked(#[from] crate::run_folder::LockError),
    #[error("{checkpoint}: the configuration differs from the run's in ways that break exact continuation: {list}; resume with the run's configuration ({saved}), or pass --allow-config-change to continue with the new one")]
    ConfigChanged { checkpoint: PathBuf, saved: PathBuf, list: String },
    #[error("non-finite {what} at epoch {epoch}, iteration {iteration}; training stopped, nothing was saved after the last good checkpoint{}", last.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    NonFinite { what: String, epoch: usize, iteration: u64, last: Option<PathBuf> },
    #[error("after epoch {epoch}, {ranks} of the {size} ranks hold a network that differs from rank 0's: they no longer train one run (a bug in hydra; please report it); nothing was saved after the last checkpoint")]
    RanksDiverged { ranks: usize, size: usize, epoch: usize },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.into(), source: e }
}

