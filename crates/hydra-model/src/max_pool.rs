//! The CRP's 5×5 stride-1 max-pool, computed separably: the operation family of
//! `hydra-kernels` ([`hydra_kernels::max_pool`]), under the model's path.

pub use hydra_kernels::max_pool::{max_pool_5x5, max_pool_5x5_direct, max_pool_5x5_portable};
