//! Errors of the model crate: every one names the file it concerns.

use std::path::PathBuf;

/// Why weights could not be read, written or applied.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not a weight file hydra understands.
    #[error("{path}: not a weight file hydra recognises ({detail}); expected a PyTorch checkpoint (.pth/.ckpt, zip or legacy), safetensors, or a hydra .bpk file")]
    UnknownFormat {
        /// The file concerned.
        path: PathBuf,
        /// What the first bytes looked like.
        detail: String,
    },
    /// The file has a known format but its content is damaged or unsupported.
    #[error("{path}: {format}: {detail}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The tensors do not fit the model (strict load).
    #[error("{path}: weights do not fit the model: {first}{}{}", if *more > 0 { format!(" (and {more} more key problems)") } else { String::new() }, hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Mismatch {
        /// The file concerned.
        path: PathBuf,
        /// The first problem.
        first: String,
        /// How many more problems there are.
        more: usize,
        /// What to do about it.
        hint: Option<String>,
        /// Every problem, one per line.
        report: String,
    },
    /// A model configuration stored with the weights, or given for them, is invalid.
    #[error("{path}: {detail}")]
    Config {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl WeightsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A damaged-file error; `detail` is put on one line (it may quote names read from the file).
    pub(crate) fn corrupt(path: impl Into<PathBuf>, format: &'static str, detail: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), format, detail: hydra_core::text::one_line(&detail.into()) }
    }
}
