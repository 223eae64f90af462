//! hydra's datasets as Burn datasets: [`BurnDataset`] implements
//! `burn::data::dataset::Dataset<Sample>` (burn-dataset's interface) over any opened hydra
//! dataset, so that Burn's own transforms (`ShuffledDataset`, `PartialDataset`, ...) and
//! `DataLoaderBuilder` take it; [`SampleBatcher`] turns samples into a device [`Batch`] as
//! hydra's loader does (padded to the largest sample, ImageNet-normalised). hydra's own
//! loader adds augmentation and a deterministic per-epoch order on top of the same samples.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::DatasetError;
use burn::tensor::Device;

use crate::batch::{collate, Batch};
use crate::dataset::Dataset;
use crate::sample::Sample;

/// An opened hydra dataset seen through Burn's `Dataset` trait. A sample that cannot be read
/// is a `DatasetError` wrapping hydra's [`crate::DataError`] (which names the file).
#[derive(Clone)]
pub struct BurnDataset(pub Arc<dyn Dataset>);

impl BurnDataset {
    /// Wrap an opened dataset (see [`crate::dataset::open`]).
    pub fn new(dataset: Arc<dyn Dataset>) -> Self {
        Self(dataset)
    }
}

impl burn::data::dataset::Dataset<Sample> for BurnDataset {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        self.0.get(index).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Batches samples for Burn's data loader: `images [B, 3, H, W]`, `labels [B, H, W]`,
/// `depth [B, H, W]`, padded to the largest sample of the batch (mean colour, the ignore
/// label, no depth).
#[derive(Debug, Clone, Copy)]
pub struct SampleBatcher {
    /// The label value meaning "no label" (padding gets it too).
    pub ignore_index: u8,
}

impl Batcher<Sample, Batch> for SampleBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Batch {
        let items = items.into_iter().enumerate().map(|(i, s)| {
            let size = s.size();
            (i, s, size)
        });
        collate(items.collect(), self.ignore_index).to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataset::Dataset as _;

    use super::*;
    use crate::dataset::{open, OpenOptions, SourceSpec};

    fn scenes(count: usize) -> Arc<dyn Dataset> {
        open(&SourceSpec::Synthetic { count, height: 24, width: 32, seed: 5 }, &OpenOptions::default()).unwrap().0
    }

    #[test]
    fn burn_sees_hydras_samples() {
        let ds = scenes(5);
        let burn_ds = BurnDataset::new(ds.clone());
        assert_eq!(burn_ds.len(), 5);
        for i in 0..5 {
            assert_eq!(burn_ds.get(i).unwrap(), ds.get(i).unwrap());
        }
        // Burn's own iterator walks the same samples.
        assert_eq!(burn_ds.iter().map(|s| s.unwrap().name).collect::<Vec<_>>(), (0..5).map(|i| ds.get(i).unwrap().name).collect::<Vec<_>>());
    }

    /// A batcher of names, to see which samples a batch holds.
    #[derive(Clone)]
    struct Names;

    impl Batcher<Sample, Vec<String>> for Names {
        fn batch(&self, items: Vec<Sample>, _: &Device) -> Vec<String> {
            items.into_iter().map(|s| s.name).collect()
        }
    }

    #[test]
    fn burns_data_loader_covers_every_sample_once_per_epoch() {
        let ds = scenes(7);
        let loader = DataLoaderBuilder::new(Names).batch_size(3).shuffle(11).build(BurnDataset::new(ds.clone()));
        let batches: Vec<Vec<String>> = loader.iter().map(|b| b.unwrap()).collect();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        let mut seen: Vec<String> = batches.concat();
        seen.sort();
        let mut all: Vec<String> = (0..7).map(|i| ds.get(i).unwrap().name).collect();
        all.sort();
        assert_eq!(seen, all);

        let tensors = DataLoaderBuilder::new(SampleBatcher { ignore_index: 255 }).batch_size(4).build(BurnDataset::new(ds.clone()));
        let first = tensors.iter().next().unwrap().unwrap();
        assert_eq!(first.images.dims(), [4, 3, 24, 32]);
        assert_eq!(first.labels.as_ref().unwrap().dims(), [4, 24, 32]);
        assert_eq!(first.depth.as_ref().unwrap().dims(), [4, 24, 32]);
        // The images are hydra's normalisation of the samples' pixels.
        let want = crate::normalize::normalize_chw(&ds.get(0).unwrap().rgb.data, 32, 24);
        let got: Vec<f32> = first.images.slice([0..1]).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, want);
    }
}
