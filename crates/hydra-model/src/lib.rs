//! HydraNet in Burn: MobileNetV2 encoder, Light-Weight RefineNet decoder with Chained
//! Residual Pooling, and task heads (segmentation, depth, optional surface normals), exactly
//! as the published multi-task model, with import of the official PyTorch checkpoints and
//! export to safetensors and Burn's own format.
//!
//! Modules carry no backend type: the backend is the [`burn::tensor::Device`] the network is
//! initialised on (flex on CPU, wgpu, cuda).

pub mod batch_norm;
pub mod conv_bn;
pub mod crp;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod head;
pub mod hydranet;
pub mod init;
pub mod inverted_residual;
pub mod max_pool;
pub mod onnx;
pub mod resize;
pub mod state;
pub mod weights;

/// File I/O that cannot harm what is not hydra's (from `hydra-core`).
pub use hydra_core::fsio;
/// The operations with hydra's CPU kernels on burn-flex and portable paths elsewhere (the
/// `hydra-kernels` crate).
pub use hydra_kernels as kernels;

pub use error::WeightsError;
pub use hydranet::{HydraNet, HydraNetConfig, HydraOutput, InitScheme, Task};
pub use state::{RawTensor, StateDict};
