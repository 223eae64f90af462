//! Datasets for multi-task dense prediction (RGB + segmentation + depth), their file formats,
//! ImageNet normalisation, joint augmentation, batching and synthetic scenes.

pub mod error;
pub mod image_io;
pub mod normalize;
pub mod npy;
pub mod palette;

pub use error::DataError;
