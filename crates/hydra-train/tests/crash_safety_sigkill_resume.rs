//! Nothing is lost on a crash: a training run killed with SIGKILL mid-epoch and in the middle
//! of writing a checkpoint resumes from the last complete checkpoint and ends with the same
//! weights as an uninterrupted run.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hydra_env, scratch, text, tiny_config};

fn spawn(cfg: &Path, resume: bool, env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hydra"));
    c.args(["train", "--config", cfg.to_str().unwrap()]);
    if resume {
        c.arg("--resume");
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn hydra")
}

/// Wait until `ready()` holds, then SIGKILL the child (std's `kill` sends SIGKILL on Unix).
fn kill_when(mut child: Child, ready: impl Fn() -> bool, what: &str) {
    let start = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("hydra exited ({status}) before {what}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().file_name().into_string().unwrap()).collect()).unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sigkill_mid_epoch_and_mid_checkpoint_then_resume_matches_an_uninterrupted_run() {
    let dir = scratch("crash");
    let whole = dir.join("whole");
    let crashed = dir.join("crashed");
    let extra = "[checkpoint]\ninterval = 1\nkeep_last = 3\n";
    let cfg_whole = tiny_config(&dir, &whole, extra);
    let text_cfg = std::fs::read_to_string(&cfg_whole).unwrap().replace("epochs = 3", "epochs = 4");
    std::fs::write(&cfg_whole, &text_cfg).unwrap();
    let cfg = dir.join("crashed.toml");
    std::fs::write(&cfg, text_cfg.replace(whole.to_str().unwrap(), crashed.to_str().unwrap())).unwrap();
    let o = hydra_env(&["train", "--config", cfg_whole.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);

    let ckpts = crashed.join("checkpoints");
    // 1. Kill in the middle of writing the checkpoint of epoch 2 (writes pause halfway).
    let child = spawn(&cfg, false, &[("HYDRA_FAULT_CHECKPOINT_PAUSE_MS", "2000")]);
    kill_when(child, || names(&ckpts).iter().any(|n| n.starts_with(".epoch-00002.bpk.") && n.ends_with(".tmp")), "the epoch-2 checkpoint write");
    let left = names(&ckpts);
    assert!(left.contains(&"epoch-00001.bpk".to_string()) && left.contains(&"epoch-00001.ok".to_string()), "{left:?}");
    assert!(!left.contains(&"epoch-00002.bpk".to_string()) && !left.contains(&"epoch-00002.ok".to_string()), "{left:?}");

    // 2. Resume, and kill again in the middle of epoch 3 (after some of its iterations are logged).
    let log = crashed.join("metrics.jsonl");
    let child = spawn(&cfg, true, &[]);
    kill_when(
        child,
        || std::fs::read_to_string(&log).is_ok_and(|t| t.lines().any(|l| l.contains("\"kind\":\"iter\"") && l.contains("\"epoch\":3"))),
        "iterations of epoch 3",
    );
    assert!(names(&ckpts).contains(&"epoch-00002.ok".to_string()));

    // 3. Resume to the end: the same weights and metrics as the uninterrupted run.
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap(), "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(std::fs::read(whole.join("final.bpk")).unwrap() == std::fs::read(crashed.join("final.bpk")).unwrap(), "final weights differ");
    let rows = |p: &Path| -> Vec<String> {
        let t = std::fs::read_to_string(p.join("metrics.csv")).unwrap();
        let header: Vec<String> = t.lines().next().unwrap().split(',').map(String::from).collect();
        let tcol = header.iter().position(|h| h == "time_s").unwrap();
        t.lines().map(|l| l.split(',').enumerate().filter(|(i, _)| *i != tcol).map(|(_, v)| v).collect::<Vec<_>>().join(",")).collect()
    };
    assert_eq!(rows(&whole), rows(&crashed), "the logs read as one run");
    // The scratch file of the interrupted write was cleaned up.
    assert!(!names(&ckpts).iter().any(|n| n.ends_with(".tmp")), "{:?}", names(&ckpts));
}
