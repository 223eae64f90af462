//! Bilinear resizing with PyTorch's `align_corners = False` semantics, on every backend: the
//! operation family of `hydra-kernels` ([`hydra_kernels::resize`]), under the model's path.

pub use hydra_kernels::resize::{linear_taps, resize_bilinear, resize_bilinear_portable};
