//! The run folder: what it holds (a run of hydra's, nothing, or somebody else's files), a lock
//! held for the life of a run, and which configuration changes a resumed run can take
//! without losing exact continuation.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".hydra.lock";

/// Names hydra itself writes into a run folder.
const RUN_ENTRIES: &[&str] =
    &["config.toml", "metrics.jsonl", "metrics.csv", "plots", "checkpoints", "best.bpk", "best.json", "final.bpk", "tb", "panels", "report.html", "run.json"];

/// What a run folder holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    /// The folder does not exist.
    Absent,
    /// It exists and holds nothing of a run (at most a lock or scratch files of hydra's).
    Empty,
    /// Only hydra's own files, of a run.
    Run,
    /// Something that is not hydra's: `entry` is the first such entry; `run` when a hydra run
    /// is there too (a user's notes beside their run: it may be resumed, not trained into anew).
    Foreign { entry: PathBuf, run: bool },
}

fn is_hydra_entry(name: &str) -> bool {
    RUN_ENTRIES.contains(&name)
        || name == LOCK_FILE
        || (name.starts_with("config-before-") && name.ends_with(".toml"))
        || (name.starts_with('.') && name.ends_with(".tmp"))
}

/// Classify `dir`. A path that exists but is not a folder is reported as foreign.
pub fn contents(dir: &Path) -> std::io::Result<Contents> {
    let meta = match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::Absent),
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        return Ok(Contents::Foreign { entry: dir.to_path_buf(), run: false });
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    names.sort();
    let run = names.iter().any(|n| RUN_ENTRIES.contains(&n.as_str()));
    if let Some(foreign) = names.iter().find(|n| !is_hydra_entry(n)) {
        return Ok(Contents::Foreign { entry: dir.join(foreign), run });
    }
    Ok(if run { Contents::Run } else { Contents::Empty })
}

/// An exclusive lock on a run folder, held until dropped (or the process ends, however it
/// ends: the OS releases it). The lock file holds the owner's process id.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a run folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir}: another hydra process{} is using this run folder; wait for it to finish, or choose another output.dir", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl RunLock {
    /// Lock `dir` (which must exist), or say which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |e| LockError::Io { path: path.clone(), source: e };
        let dest = hydra_model::fsio::destination(&path).map_err(io)?;
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&dest).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held { dir: dir.to_path_buf(), pid: text.trim().parse().ok() });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).and_then(|_| file.flush()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// One difference between a run's saved configuration and the one it is resumed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub before: String,
    pub after: String,
    /// Whether the run still continues exactly as it would have with the saved configuration.
    pub keeps_exactness: bool,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} → {}", self.key, self.before, self.after)
    }
}

/// Keys that change what is logged, kept or when the run ends, never the arithmetic of the
/// steps it takes (but for the order of additions: `training.devices`).
const HARMLESS: &[&str] = &[
    "training.log_interval",
    "training.val_interval",
    "checkpoint.interval",
    "checkpoint.keep_last",
    "data.workers",
    "output.dir",
    "output.samples",
    "early_stopping.enabled",
    "early_stopping.patience",
    "early_stopping.min_delta",
    // The replicas a run continues on: the same run up to the order of additions in the
    // gradient average and SyncBatchNorm's sums, as with another number of MPI ranks.
    "training.devices",
];

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// The differences from `saved` to `now` (both resolved configurations as TOML), by key.
/// `training.epochs` keeps exactness only with a schedule that does not depend on the run's
/// length (constant, multistep).
pub fn changes(saved: &str, now: &str) -> Result<Vec<Change>, String> {
    let parse = |s: &str| s.parse::<toml::Table>().map(toml::Value::Table).map_err(|e| format!("unreadable saved configuration: {}", e.message()));
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &parse(saved)?, &mut a);
    flatten("", &parse(now)?, &mut b);
    let length_free = matches!(b.get("schedule.kind").map(String::as_str), Some("\"constant\"") | Some("\"multistep\"")) && a.get("schedule.kind") == b.get("schedule.kind");
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let absent = "(not set)".to_string();
    Ok(keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Change {
            key: k.clone(),
            before: a.get(k).unwrap_or(&absent).clone(),
            after: b.get(k).unwrap_or(&absent).clone(),
            keeps_exactness: HARMLESS.contains(&k.as_str()) || (k == "training.epochs" && length_free),
        })
        .collect())
}

/// The changes joined for a message.
pub fn list(changes: &[&Change]) -> String {
    changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_keys_and_judge_exactness() {
        let saved = "[training]\nepochs = 10\nbatch_size = 8\nlog_interval = 10\n[schedule]\nkind = \"constant\"\n";
        let now = "[training]\nepochs = 20\nbatch_size = 4\nlog_interval = 5\n[schedule]\nkind = \"constant\"\n";
        let c = changes(saved, now).unwrap();
        let by_key: BTreeMap<_, _> = c.iter().map(|c| (c.key.as_str(), c)).collect();
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(!by_key["training.batch_size"].keeps_exactness);
        assert_eq!(by_key["training.batch_size"].to_string(), "training.batch_size: 8 → 4");
        assert!(by_key["training.epochs"].keeps_exactness);
        assert!(by_key["training.log_interval"].keeps_exactness);
        let cosine = changes(&saved.replace("constant", "cosine"), &now.replace("constant", "cosine")).unwrap();
        assert!(!cosine.iter().find(|c| c.key == "training.epochs").unwrap().keeps_exactness, "a cosine schedule spans the run's length");
        assert!(changes(saved, saved).unwrap().is_empty());
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    #[test]
    fn hydras_entries_and_only_those_are_recognised() {
        for name in ["config.toml", "checkpoints", LOCK_FILE, "config-before-20261202T0101.toml", ".best.bpk.123.tmp"] {
            assert!(is_hydra_entry(name), "{name}");
        }
        // Each half of a pattern alone is not enough.
        for name in ["config-before-x.txt", "my-config.toml", ".hidden", "notes.tmp", "notes.txt"] {
            assert!(!is_hydra_entry(name), "{name}");
        }
    }

    #[test]
    fn a_missing_folder_is_absent_but_an_unreadable_path_is_an_error() {
        let dir = hydra_testkit::scratch("hydra-unit", "run-contents");
        assert_eq!(contents(&dir.path().join("nothing")).unwrap(), Contents::Absent);
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        // Below a regular file: "not a directory", which is no proof the folder is absent.
        assert!(contents(&file.join("run")).is_err());
        assert_eq!(contents(&file).unwrap(), Contents::Foreign { entry: file.clone(), run: false });
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join(LOCK_FILE), b"").unwrap();
        assert_eq!(contents(&run).unwrap(), Contents::Empty);
        std::fs::write(run.join("metrics.jsonl"), b"").unwrap();
        assert_eq!(contents(&run).unwrap(), Contents::Run);
        std::fs::write(run.join("notes.txt"), b"").unwrap();
        assert_eq!(contents(&run).unwrap(), Contents::Foreign { entry: run.join("notes.txt"), run: true });
    }
}
