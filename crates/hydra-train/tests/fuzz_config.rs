//! Property tests (fuzzing) of the configuration parser and `--set` overrides: any text gives a
//! configuration (that loads again as itself) or a one-line error, never a panic.

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
        match Config::from_toml(&text, &[]) {
            // What loads is a configuration that loads again as itself.
            Ok(c) => prop_assert_eq!(Config::from_toml(&c.to_toml(), &[]).unwrap(), c),
            Err(e) => prop_assert!(!e.0.trim().is_empty() && !e.0.contains('\n'), "not one line: {:?}", e.0),
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
