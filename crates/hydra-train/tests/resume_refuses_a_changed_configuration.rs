//! Resume with a changed configuration: the configuration is compared with the checkpoint's;
//! changes that break exact continuation (optimiser, batch size, seed, data, ...) are refused
//! with the differences listed unless `--allow-config-change` asks for them (then the old
//! configuration is kept beside the new one); changes that keep it (logging, checkpoint
//! interval, workers, more epochs with a constant schedule) are listed and accepted.

mod common;

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn changes_are_listed_and_only_harmless_ones_pass_without_the_flag() {
    let dir = scratch("resume-change");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    let c = cfg.to_str().unwrap();
    let o = hydra_env(&["train", "--config", c, "--stop-after-epochs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let saved = std::fs::read(run.join("config.toml")).unwrap();

    let o = hydra_env(&["train", "--config", c, "--resume", "--set", "training.batch_size=2", "--set", "training.seed=5"], &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in ["epoch-00001.bpk", "break exact continuation", "training.batch_size: 4 → 2", "training.seed: 0 → 5", "--allow-config-change"] {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), saved, "the saved config was rewritten");
    assert!(!run.join("checkpoints/epoch-00002.bpk").exists());

    let o = hydra_env(&["train", "--config", c, "--resume", "--set", "optimizer.kind=adam", "--allow-config-change", "--stop-after-epochs", "1"], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("no longer continues exactly: optimizer.kind: \"sgd\" → \"adam\""), "{out}");
    assert_eq!(std::fs::read(run.join("config-before-epoch-00001.toml")).unwrap(), saved, "the old config is kept");
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("kind = \"adam\""));

    let o = hydra_env(&["train", "--config", c, "--resume", "--set", "optimizer.kind=adam", "--set", "training.log_interval=2", "--set", "data.workers=1"], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("exact continuation kept: data.workers: 2 → 1; training.log_interval: 1 → 2"), "{out}");

    // The user's notes beside their run: it still resumes (and the notes stay), but a new run
    // is not trained into the folder.
    std::fs::write(run.join("notes.txt"), b"lr sweep 3").unwrap();
    let o = hydra_env(&["train", "--config", c, "--resume", "--set", "optimizer.kind=adam"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(std::fs::read(run.join("notes.txt")).unwrap(), b"lr sweep 3");
    let o = hydra_env(&["train", "--config", c, "--set", "optimizer.kind=adam"], &[]);
    assert!(!o.status.success() && text(&o).1.contains("notes.txt"), "{}", text(&o).1);
}
