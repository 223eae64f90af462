//! Datasets for multi-task dense prediction (RGB + segmentation + depth), their file formats,
//! ImageNet normalisation, joint augmentation, batching and synthetic scenes.

pub mod augment;
pub mod batch;
pub mod burn_dataset;
pub mod dataset;
pub mod error;
pub mod image_io;
pub mod jpeg;
pub mod list_file;
pub mod loader;
pub mod mtan;
pub mod normalize;
pub mod npy;
pub mod npy_header;
pub mod nyud;
pub mod palette;
pub mod sample;
pub mod synthetic;
pub mod synthetic_source;

pub use dataset::{open, Dataset, OpenOptions, OpenReport, SourceSpec};
pub use error::DataError;
pub use sample::Sample;
