//! Data parallelism: the ranks of a run, what they exchange, and how.
//!
//! A run of N ranks trains one network: every rank starts from rank 0's state (broadcast),
//! takes a disjoint shard of every global batch, and applies the identical optimiser step
//! from the gradient averaged across ranks ([`DataParallel`], the [`crate::grad_sync`]
//! seam). BatchNorm's statistics are synchronised across ranks (`training.sync_bn`,
//! [`hydra_model::kernels::sync_bn`]) or averaged at the end of every epoch. Rank 0 alone
//! writes the run folder.
//!
//! The exchange goes through a [`Collective`]: MPI across processes and machines (`mpi`
//! feature, [`mpi`]); shared memory between the replicas of one process, one thread per
//! device (`training.devices`, [`ThreadGroup`]); [`Solo`] is the one-process run.

mod data_parallel;
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "cuda")]
pub mod native;
mod threads;
mod world;

pub use data_parallel::{DataParallel, DEFAULT_BUCKET_BYTES};
pub use threads::ThreadGroup;
pub use world::{Solo, World};

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`), as its
/// environment tells: only then is MPI initialised, so that `hydra train` outside one changes
/// nothing.
pub fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"].iter().any(|k| std::env::var_os(k).is_some())
}

/// The collective operations a data-parallel run needs, as an engine provides them. Every
/// rank calls them in the same order with the same lengths. An engine that fails takes the
/// whole run down (MPI's fatal error handler) with a message naming the rank: they do not
/// return errors.
pub trait Collective {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replace `values` by their element-wise sum over all ranks.
    fn all_reduce_sum_f64(&self, values: &mut [f64]);
    /// Replace `values` by their element-wise sum over all ranks.
    fn all_reduce_sum_f32(&self, values: &mut [f32]);
    /// Rank 0's `bytes` on every rank (other ranks' contents are replaced).
    fn broadcast(&self, bytes: &mut Vec<u8>);
    /// Stop every rank of the run with exit code `code`, after this rank's message has been
    /// printed.
    fn abort(&self, code: i32) -> !;
}
