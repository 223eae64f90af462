//! Two runs never share a run folder: the folder is locked for the life of a run (and of a
//! `--resume`); a second run names the folder and the process that holds it, and writes
//! nothing. The lock goes with the process, however it ends.

mod common;

use std::time::{Duration, Instant};

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn a_second_run_in_a_locked_folder_names_the_holder_and_writes_nothing() {
    let dir = scratch("lock");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    // The first run pauses 20 s inside its first checkpoint write, holding the folder.
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_hydra"))
        .args(["train", "--config", cfg.to_str().unwrap()])
        .env("HYDRA_FAULT_CHECKPOINT_PAUSE_MS", "20000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = run.join(".hydra.lock");
    let pid = first.id().to_string();
    let start = Instant::now();
    while std::fs::read_to_string(&lock).map(|t| t.trim() != pid).unwrap_or(true) {
        assert!(start.elapsed() < Duration::from_secs(120), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log_before = std::fs::read(run.join("metrics.jsonl")).ok();
    for args in [vec!["train", "--config", cfg.to_str().unwrap()], vec!["train", "--config", cfg.to_str().unwrap(), "--resume"]] {
        let o = hydra_env(&args, &[]);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("(pid {pid})")) && err.contains(run.to_str().unwrap()), "{err}");
        assert!(err.contains("another hydra process"), "{err}");
    }
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).ok(), log_before, "the second run wrote into the folder");
    // Killed (before its first checkpoint), the first run releases the folder: the next run
    // takes it and starts the run over.
    first.kill().unwrap();
    first.wait().unwrap();
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
}
