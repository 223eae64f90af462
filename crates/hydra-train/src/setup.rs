//! From a [`Config`] to datasets, loaders and palettes.

use std::sync::Arc;

use hydra_data::augment::AugmentSpec;
use hydra_data::dataset::{self, Dataset, OpenOptions, OpenReport, SourceSpec};
use hydra_data::loader::{Loader, LoaderSpec};
use hydra_data::palette::Palette;
use hydra_data::synthetic_source::synthetic_palette;
use hydra_data::DataError;
use hydra_model::Task;

use crate::config::{Config, SourceSection};

/// Whether `spec` names a built-in palette rather than a file.
pub fn is_builtin_palette(spec: &str) -> bool {
    spec == "synthetic" || Palette::builtin(spec).is_some()
}

/// A palette by name (`synthetic`, `nyud`, `nyud13`, `kitti`), palette file or `.npy` colour map.
pub fn palette_named(spec: &str) -> Result<Palette, DataError> {
    match spec {
        "synthetic" => Ok(synthetic_palette()),
        other => Palette::resolve(other),
    }
}

/// The palette named by `data.palette` (`synthetic`, a built-in name, or a file), extended
/// to the model's class count.
pub fn palette(config: &Config) -> Result<Palette, DataError> {
    Ok(palette_named(&config.data.palette)?.extended_to(config.model.num_classes))
}

/// The data crate's description of a configured source.
pub fn source_spec(s: &SourceSection) -> Result<SourceSpec, DataError> {
    Ok(match s.kind.as_str() {
        "nyud" => SourceSpec::List {
            root: s.root.clone().expect("validated"),
            list: s.list.clone().expect("validated"),
            depth_scale: s.depth_scale,
            label_palette: s.label_palette.as_deref().map(palette_named).transpose()?,
        },
        "mtan" => SourceSpec::Mtan { root: s.root.clone().expect("validated") },
        _ => SourceSpec::Synthetic { count: s.count, height: s.size[0], width: s.size[1], seed: s.seed },
    })
}

/// Open and validate a source.
pub fn open_source(s: &SourceSection, config: &Config) -> Result<(Arc<dyn Dataset>, OpenReport), DataError> {
    let segm = config.tasks().contains(&Task::Segmentation);
    let options = OpenOptions {
        num_classes: segm.then_some(config.model.num_classes),
        ignore_index: config.data.ignore_index as u8,
        skip_bad: s.skip_bad,
        workers: config.data.workers.max(1),
    };
    dataset::open(&source_spec(s)?, &options)
}

/// The training loader: shuffled per epoch from the seed, augmented.
pub fn train_loader(ds: Arc<dyn Dataset>, config: &Config) -> Loader {
    let a = &config.augment;
    let crop = (a.crop[0] > 0 && a.crop[1] > 0).then(|| [a.crop[0], a.crop[1]]);
    Loader::new(
        ds,
        LoaderSpec {
            batch_size: config.training.batch_size,
            seed: config.training.seed,
            shuffle: true,
            drop_last: true,
            augment: Some(AugmentSpec { scale: [a.scale[0], a.scale[1]], crop, flip: a.flip, jitter: a.jitter }),
            pad_to: 1,
            workers: config.data.workers,
            ignore: config.data.ignore_index as u8,
            max_batches: config.training.iters_per_epoch,
        },
    )
}

/// An evaluation loader: dataset order, full resolution, padded to `eval.pad_to`.
pub fn eval_loader(ds: Arc<dyn Dataset>, config: &Config, batch_size: usize) -> Loader {
    Loader::new(
        ds,
        LoaderSpec {
            batch_size,
            seed: 0,
            shuffle: false,
            drop_last: false,
            augment: None,
            pad_to: config.eval.pad_to,
            workers: config.data.workers,
            ignore: config.data.ignore_index as u8,
            max_batches: 0,
        },
    )
}
