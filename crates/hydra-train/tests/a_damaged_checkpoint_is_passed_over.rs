//! A checkpoint whose bytes no longer match its completion marker (same length, one byte
//! changed: only the hash can tell) is never resumed from: `--resume` takes the newest intact
//! one, and naming the damaged one is refused in one line that says why.

mod common;

use common::{assert_refused, hydra_env, scratch, text, tiny_config};
use hydra_train::checkpoint::newest_valid;

#[test]
fn resume_skips_a_checkpoint_whose_hash_does_not_match() {
    let dir = scratch("damaged-checkpoint");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "[checkpoint]\nkeep_last = 3\n");
    let t = std::fs::read_to_string(&cfg).unwrap().replace("epochs = 3", "epochs = 4");
    std::fs::write(&cfg, t).unwrap();
    let c = cfg.to_str().unwrap();
    let o = hydra_env(&["train", "--config", c, "--stop-after-epochs", "3"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let ckpts = run.join("checkpoints");
    assert_eq!(newest_valid(&ckpts).map(|(e, _)| e), Some(3));

    let newest = ckpts.join("epoch-00003.bpk");
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, &bytes).unwrap();
    assert_eq!(newest_valid(&ckpts).map(|(e, _)| e), Some(2), "the damaged newest one is passed over");

    let o = hydra_env(&["train", "--config", c, "--resume", newest.to_str().unwrap()], &[]);
    assert_refused(&o, &["epoch-00003.bpk", "does not match its completion marker"]);
    let o = hydra_env(&["train", "--config", c, "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let out = text(&o).0;
    assert!(out.contains("resumed from") && out.contains("epoch-00002.bpk"), "{out}");
    assert!(out.contains("done: 4 epochs"), "{out}");
}
