//! Property tests (fuzzing) of the configuration parser and `--set` overrides: any text gives a
//! configuration or a one-line error naming a key, never a panic.

use hydra_train::config::Config;
use proptest::prelude::*;

const KEYS: [&str; 12] = [
    "model.num_classes", "model.tasks", "training.epochs", "training.batch_size", "optimizer.kind",
    "optimizer.momentum", "augment.scale", "augment.crop", "schedule.milestones", "loss.weighting",
    "data.train.kind", "early_stopping.patience",
];

proptest! {
    #[test]
    fn arbitrary_text(text in "[\\[\\]a-z_.=\"0-9, \n-]{0,300}") {
        if let Err(e) = Config::from_toml(&text, &[]) {
            prop_assert!(!e.0.is_empty());
        }
    }

    #[test]
    fn overrides(key in 0usize..KEYS.len(), value in "[a-z0-9.\\[\\], \"-]{0,20}") {
        let set = format!("{}={value}", KEYS[key]);
        match Config::from_toml("", &[set]) {
            Ok(c) => prop_assert!(c.training.epochs >= 1 && c.training.batch_size >= 1),
            Err(e) => prop_assert!(!e.0.contains('\n'), "{}", e.0),
        }
    }
}
