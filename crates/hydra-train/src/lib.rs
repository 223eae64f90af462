//! Training, evaluation and inference for HydraNet: the library behind the `hydra` binary.

pub mod backend;
pub mod bench;
pub mod colormap;
pub mod components;
pub mod predict;
pub mod config;
pub mod config_reader;
pub mod checkpoint;
pub mod eval;
pub mod fault;
pub mod grad_sync;
pub mod limits;
pub mod loss;
pub mod metrics;
pub mod objective;
pub mod observer;
pub mod optim;
pub mod plot;
pub mod run_folder;
pub mod runlog;
pub mod schedule;
pub mod selftest;
pub mod reduction_check;
pub mod setup;
pub mod train;
pub mod weighting;
