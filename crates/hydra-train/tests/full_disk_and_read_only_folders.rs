//! A full disk or an unwritable run folder: a clear error naming the file, and the earlier
//! checkpoints intact and resumable.

mod common;

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn disk_full_while_writing_a_checkpoint() {
    let dir = scratch("enospc");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    // Writes of the epoch-2 checkpoint fail with ENOSPC halfway, as on a full disk.
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[("HYDRA_FAULT_ENOSPC_MATCH", "epoch-00002")]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("epoch-00002.bpk") && err.contains("No space left on device"), "{err}");
    let ckpts = run.join("checkpoints");
    let mut names: Vec<String> = std::fs::read_dir(&ckpts).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["epoch-00001.bpk", "epoch-00001.ok"], "no partial file, the earlier checkpoint intact");
    // Space is back: the run continues from the intact checkpoint.
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap(), "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("resumed from") && text(&o).0.contains("epoch-00001.bpk"), "{}", text(&o).0);
}

#[test]
fn run_folder_on_a_read_only_file_system() {
    let dir = scratch("readonly");
    // /proc is a read-only file system for new files and folders, even for root.
    let cfg = tiny_config(&dir, std::path::Path::new("/proc/hydra-run"), "");
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/proc/hydra-run"), "{err}");
}
