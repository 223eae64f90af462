//! Errors of the data crate: every one names the file (and list line) it concerns.

use std::path::{Path, PathBuf};

/// Why data could not be read or is unusable.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file exists but its content is unusable.
    #[error("{path}: {detail}")]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A sample of a list file is unusable.
    #[error("{list}:{line}: {detail}")]
    BadSample {
        /// The list file.
        list: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (naming the sample's file).
        detail: String,
    },
    /// A dataset as a whole is unusable (empty, inconsistent, ...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// An I/O error for `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// A content error for `path`.
    pub fn bad_file(path: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        Self::BadFile { path: path.as_ref().to_path_buf(), detail: hydra_core::text::one_line(&detail.into()) }
    }
}
