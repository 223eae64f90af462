//! Loading batches on worker threads, in a shuffled order that is a pure function of
//! (seed, epoch), so that a resumed run sees exactly the batches an uninterrupted one would.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use hydra_core::SplitMix64;

use crate::augment::{augment, pad_to_multiple, sample_rng, AugmentSpec};
use crate::batch::{collate, HostBatch};
use crate::dataset::Dataset;
use crate::error::DataError;

/// How batches are formed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderSpec {
    pub batch_size: usize,
    /// Seed of the order and of the augmentation.
    pub seed: u64,
    /// Shuffle every epoch (training) or keep the dataset order (evaluation).
    pub shuffle: bool,
    /// Drop the last incomplete batch.
    pub drop_last: bool,
    /// Training augmentation, if any.
    pub augment: Option<AugmentSpec>,
    /// Evaluation padding to a multiple of this (1 = none).
    pub pad_to: usize,
    /// Worker threads (0 = load on the calling thread).
    pub workers: usize,
    /// The ignore label.
    pub ignore: u8,
    /// Cap on batches per epoch (0 = no cap).
    pub max_batches: usize,
}

/// A dataset with a batching policy.
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    spec: LoaderSpec,
    /// `(rank, ranks)`: this rank's share of every batch (data parallelism); `(0, 1)` = all.
    shard: (usize, usize),
}

/// The sample order of `epoch`: a Fisher–Yates shuffle seeded by (seed, epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::stream(seed ^ 0x5EED_0F0D_E500_0000, epoch);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

impl Loader {
    /// A loader over `dataset`.
    pub fn new(dataset: Arc<dyn Dataset>, spec: LoaderSpec) -> Self {
        assert!(spec.batch_size > 0, "batch size must be positive");
        Self { dataset, spec, shard: (0, 1) }
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The policy.
    pub fn spec(&self) -> &LoaderSpec {
        &self.spec
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dataset.len();
        let b = self.spec.batch_size;
        let full = if self.spec.drop_last && n >= b { n / b } else { n.div_ceil(b) };
        if self.spec.max_batches > 0 { full.min(self.spec.max_batches) } else { full }
    }

    /// This loader giving rank `rank` of `ranks` its share of every batch: the batches (order,
    /// augmentation) are those of one process, and each is cut into `ranks` consecutive,
    /// disjoint parts of `⌊len · r / ranks⌋..⌊len · (r + 1) / ranks⌋`.
    pub fn with_shard(mut self, rank: usize, ranks: usize) -> Self {
        assert!(ranks > 0 && rank < ranks, "rank {rank} of {ranks}");
        self.shard = (rank, ranks);
        self
    }

    /// Dataset indices of every batch of `epoch` (this rank's share of each).
    pub fn batch_indices(&self, epoch: u64) -> Vec<Vec<usize>> {
        let n = self.dataset.len();
        let order = if self.spec.shuffle { epoch_order(n, self.spec.seed, epoch) } else { (0..n).collect() };
        let (r, k) = self.shard;
        order.chunks(self.spec.batch_size).take(self.batches_per_epoch()).map(|c| c[c.len() * r / k..c.len() * (r + 1) / k].to_vec()).collect()
    }

    /// Load one batch (its samples decoded, augmented, collated).
    pub fn load_batch(&self, epoch: u64, indices: &[usize]) -> Result<HostBatch, DataError> {
        let mut samples = Vec::with_capacity(indices.len());
        for &i in indices {
            let s = self.dataset.get(i)?;
            let (s, valid) = match &self.spec.augment {
                Some(a) => {
                    let s = augment(s, a, &mut sample_rng(self.spec.seed, epoch, i as u64), self.spec.ignore);
                    let size = s.size();
                    (s, size)
                }
                None => pad_to_multiple(s, self.spec.pad_to, self.spec.ignore),
            };
            samples.push((i, s, valid));
        }
        Ok(collate(samples, self.spec.ignore))
    }

    /// Iterate over the batches of `epoch` from batch `start`, loading ahead on worker threads.
    pub fn epoch(&self, epoch: u64, start: usize) -> EpochIter {
        self.epoch_range(epoch, start..usize::MAX)
    }

    /// Iterate over the batches `range` of `epoch` (a rank's block of a split).
    pub fn epoch_range(&self, epoch: u64, range: std::ops::Range<usize>) -> EpochIter {
        let batches: Vec<Vec<usize>> = self.batch_indices(epoch).into_iter().skip(range.start).take(range.end.saturating_sub(range.start)).collect();
        let total = batches.len();
        let workers = self.spec.workers;
        if workers == 0 {
            return EpochIter { receivers: Vec::new(), batches, next: 0, total, loader: Some(self.clone()), epoch };
        }
        let batches = Arc::new(batches);
        let mut receivers = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<HostBatch, DataError>>(2);
            let batches = batches.clone();
            let loader = self.clone();
            std::thread::Builder::new()
                .name(format!("hydra-loader-{w}"))
                .spawn(move || {
                    for k in (w..batches.len()).step_by(workers) {
                        let b = loader.load_batch(epoch, &batches[k]);
                        if tx.send(b).is_err() {
                            return; // the consumer stopped
                        }
                    }
                })
                .expect("spawn loader thread");
            receivers.push(rx);
        }
        EpochIter { receivers, batches: Vec::new(), next: 0, total, loader: None, epoch }
    }
}

/// Batches of one epoch, in order.
pub struct EpochIter {
    receivers: Vec<Receiver<Result<HostBatch, DataError>>>,
    batches: Vec<Vec<usize>>,
    next: usize,
    total: usize,
    loader: Option<Loader>,
    epoch: u64,
}

impl EpochIter {
    /// Batches left.
    pub fn remaining(&self) -> usize {
        self.total - self.next
    }
}

impl Iterator for EpochIter {
    type Item = Result<HostBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let k = self.next;
        self.next += 1;
        match &self.loader {
            Some(l) => Some(l.load_batch(self.epoch, &self.batches[k])),
            None => {
                let rx = &self.receivers[k % self.receivers.len()];
                Some(rx.recv().unwrap_or_else(|_| Err(DataError::Invalid("a data loading thread stopped unexpectedly".into()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_permutation_reproducible_per_epoch() {
        let a = epoch_order(100, 7, 3);
        let b = epoch_order(100, 7, 3);
        let c = epoch_order(100, 7, 4);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }
}
