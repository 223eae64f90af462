//! A run killed before its first checkpoint is not stuck: its folder holds nothing to
//! continue, so `train` (with or without `--resume`) starts it over, and since data order,
//! augmentation and initialisation derive from the seed, it ends bit-identical to a run that
//! was never interrupted.

mod common;

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn train_and_resume_both_start_over_and_end_as_an_uninterrupted_run() {
    let dir = scratch("killed-early");
    let cfg = tiny_config(&dir, &dir.join("whole"), "");
    let c = cfg.to_str().unwrap();
    let o = hydra_env(&["train", "--config", c], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let whole = std::fs::read(dir.join("whole/final.bpk")).unwrap();

    for (name, resume) in [("again", false), ("resumed", true)] {
        let run = dir.join(name);
        let set = format!("output.dir={}", run.display());
        // Dies at iteration 2 of epoch 1: logs and config written, no checkpoint.
        let o = hydra_env(&["train", "--config", c, "--set", &set], &[("HYDRA_FAULT_NAN_AT", "2")]);
        assert!(!o.status.success());
        assert!(run.join("config.toml").exists() && run.join("metrics.jsonl").exists());
        assert!(!run.join("checkpoints").exists() || std::fs::read_dir(run.join("checkpoints")).unwrap().count() == 0);
        let mut args = vec!["train", "--config", c, "--set", &set];
        if resume {
            args.push("--resume");
        }
        let o = hydra_env(&args, &[]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{name}: {err}");
        assert!(out.contains("stopped before its first checkpoint; starting the run over"), "{out}");
        assert!(std::fs::read(run.join("final.bpk")).unwrap() == whole, "{name}: differs from the uninterrupted run");
        let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let firsts = log.lines().filter(|l| l.contains("\"kind\":\"iter\"") && l.contains("\"iteration\":1,")).count();
        assert_eq!(firsts, 1, "the log reads as one run: {log}");
    }
    // An empty folder still has nothing to resume.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = hydra_env(&["train", "--config", c, "--set", &format!("output.dir={}", empty.display()), "--resume"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("no complete checkpoint to resume from"), "{}", text(&o).1);
}
