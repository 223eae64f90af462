//! Training, evaluation and inference for HydraNet: the library behind the `hydra` binary.

pub mod backend;
pub mod colormap;
pub mod predict;
pub mod config;
pub mod config_reader;
