//! hydra's datasets in Burn's own data loader.
//!
//! ```text
//! cargo run --release -p hydra-data --example burn_dataloader            # 64 synthetic scenes
//! cargo run --release -p hydra-data --example burn_dataloader -- DIR     # an MTAN/LibMTL split (image/ label/ depth/)
//! ```
//!
//! A dataset opened (and validated) by hydra is wrapped in `BurnDataset`, which implements
//! `burn::data::dataset::Dataset<Sample>`; Burn's transforms and `DataLoaderBuilder` take it
//! from there, with `SampleBatcher` making `[B, 3, H, W]` images, `[B, H, W]` labels and depth.

use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::transform::PartialDataset;
use burn::data::dataset::Dataset as _;
use hydra_data::burn_dataset::{BurnDataset, SampleBatcher};
use hydra_data::dataset::{open, OpenOptions, SourceSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = match std::env::args().nth(1) {
        Some(dir) => SourceSpec::Mtan { root: dir.into() },
        None => SourceSpec::Synthetic { count: 64, height: 120, width: 160, seed: 1 },
    };
    let (dataset, report) = open(&spec, &OpenOptions::default())?;
    println!("{} ({} skipped)", dataset.describe(), report.skipped.len());

    // Burn's side: a Dataset, split with Burn's own transform, loaded by Burn's loader.
    let all = BurnDataset::new(Arc::clone(&dataset));
    let train = PartialDataset::new(all.clone(), 0, all.len() * 3 / 4);
    let val = PartialDataset::new(all.clone(), all.len() * 3 / 4, all.len());
    println!("burn dataset: {} samples = {} train + {} val", all.len(), train.len(), val.len());
    let loader = DataLoaderBuilder::new(SampleBatcher { ignore_index: 255 }).batch_size(8).shuffle(42).num_workers(2).build(train);

    let mut images = 0;
    for (k, batch) in loader.iter().enumerate() {
        // A sample that cannot be read is an error naming its file.
        let batch = batch?;
        let [b, c, h, w] = batch.images.dims();
        images += b;
        let labelled = batch.labels.as_ref().map(|l| l.clone().not_equal_elem(255).int().sum().into_scalar::<i64>()).unwrap_or(0);
        let mean_depth = batch.depth.as_ref().map(|d| d.clone().mean().into_scalar::<f32>()).unwrap_or(0.0);
        println!("batch {k}: images [{b}, {c}, {h}, {w}], {labelled} labelled pixels, mean depth {mean_depth:.3} m");
    }
    println!("one epoch: {images} images");
    Ok(())
}
