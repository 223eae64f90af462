//! The run's data: the training loader (shuffled, augmented) and the validation loader,
//! opened and validated before anything is trained.

use hydra_data::loader::Loader;

use crate::config::Config;
use crate::setup;
use crate::train::{Reporter, TrainError};

/// The loaders of a run.
pub struct TrainData {
    pub train: Loader,
    pub val: Option<Loader>,
    /// Iterations per epoch.
    pub batches: usize,
}

impl TrainData {
    /// Open and validate `data.train` and `data.val`, reporting what they hold and any
    /// skipped samples.
    pub fn open(config: &Config, report: &mut dyn Reporter) -> Result<Self, TrainError> {
        let (train_ds, train_report) = setup::open_source(&config.data.train, config)?;
        report.info(&format!("train: {}", train_ds.describe()));
        for s in &train_report.skipped {
            report.info(&format!("skipped {}: {}", s.what, s.reason));
        }
        let val = match &config.data.val {
            Some(v) => {
                let (ds, r) = setup::open_source(v, config)?;
                report.info(&format!("val: {}", ds.describe()));
                for s in &r.skipped {
                    report.info(&format!("skipped {}: {}", s.what, s.reason));
                }
                Some(setup::eval_loader(ds, config, 1))
            }
            None => None,
        };
        let train = setup::train_loader(train_ds, config);
        let batches = train.batches_per_epoch();
        if batches == 0 {
            return Err(TrainError::Config(format!(
                "training.batch_size = {}: larger than the training set ({} samples)",
                config.training.batch_size,
                train.dataset().len()
            )));
        }
        Ok(Self { train, val, batches })
    }
}
