//! The run folder's logs: JSON lines (every N iterations and every epoch) and a CSV of epochs.
//! (The plots drawn from them: [`crate::plots`].)

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The logs of one run.
pub struct RunLog {
    dir: PathBuf,
    jsonl: PathBuf,
    /// Epoch records, for the CSV.
    epochs: Vec<Value>,
}

impl RunLog {
    /// Open the logs of `dir`. When resuming at `iteration`, records written after it (by
    /// the interrupted run) are dropped so that the logs read as one uninterrupted run.
    pub fn open(dir: &Path, resume_iteration: Option<u64>) -> std::io::Result<Self> {
        let jsonl = dir.join("metrics.jsonl");
        let mut keep = Vec::new();
        if let Some(limit) = resume_iteration {
            if let Ok(text) = read_log(&jsonl) {
                for line in text.lines() {
                    let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
                    if v["iteration"].as_u64().is_some_and(|i| i <= limit) {
                        keep.push(v);
                    }
                }
            }
        }
        let text: String = keep.iter().map(|v| format!("{v}\n")).collect();
        hydra_model::fsio::write_atomic(&jsonl, text.as_bytes()).map_err(|(_, e)| e)?;
        let epochs = keep.iter().filter(|v| v["kind"] == "epoch").cloned().collect();
        Ok(Self { dir: dir.into(), jsonl, epochs })
    }

    fn append(&self, v: &Value) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&self.jsonl)?;
        writeln!(f, "{v}")?;
        f.flush()
    }

    /// Log an iteration record.
    pub fn iteration(&mut self, v: Value) -> std::io::Result<()> {
        self.append(&v)
    }

    /// Log an epoch record and rewrite the CSV.
    pub fn epoch(&mut self, v: Value) -> std::io::Result<()> {
        self.append(&v)?;
        self.epochs.push(v);
        self.write_csv()
    }

    /// Flattened `key → number` pairs of an epoch record, keys joined by `.`.
    fn flat(v: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
        flatten(v, prefix, '.', out);
    }

    fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for e in &self.epochs {
            let mut f = Vec::new();
            Self::flat(e, "", &mut f);
            for (k, _) in f {
                if !cols.contains(&k) {
                    cols.push(k);
                }
            }
        }
        cols
    }

    fn write_csv(&self) -> std::io::Result<()> {
        let cols = self.columns();
        let mut text = cols.join(",") + "\n";
        for e in &self.epochs {
            let mut f = Vec::new();
            Self::flat(e, "", &mut f);
            let row: Vec<String> = cols.iter().map(|c| f.iter().find(|(k, _)| k == c).map(|(_, v)| format!("{v}")).unwrap_or_default()).collect();
            text.push_str(&(row.join(",") + "\n"));
        }
        hydra_model::fsio::write_atomic(&self.dir.join("metrics.csv"), text.as_bytes()).map_err(|(_, e)| e)
    }

}

/// The text of a run's log file (bounded, regular files only: see `fsio::read_input`).
pub fn read_log(path: &Path) -> std::io::Result<String> {
    let bytes = hydra_model::fsio::read_input(path, MAX_LOG_BYTES)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The epoch records and the logged-iteration records of the run log `path` (metrics.jsonl),
/// each in order; lines that are not JSON records are skipped.
pub fn read_records(path: &Path) -> std::io::Result<(Vec<Value>, Vec<Value>)> {
    let (mut epochs, mut iters) = (Vec::new(), Vec::new());
    for v in read_log(path)?.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        match v["kind"].as_str() {
            Some("epoch") => epochs.push(v),
            Some("iter") => iters.push(v),
            _ => {}
        }
    }
    Ok((epochs, iters))
}

/// The largest metrics.jsonl read back (about ten million logged iterations).
pub const MAX_LOG_BYTES: u64 = 4 << 30;

/// Every number (and boolean, as 0 or 1) of a JSON value as `(key, value)`, nested keys joined
/// by `sep` after `prefix`.
pub(crate) fn flatten(v: &Value, prefix: &str, sep: char, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}{sep}{k}") };
                flatten(x, &p, sep, out);
            }
        }
        Value::Number(n) => out.push((prefix.to_string(), n.as_f64().unwrap_or(f64::NAN))),
        Value::Bool(b) => out.push((prefix.to_string(), if *b { 1.0 } else { 0.0 })),
        _ => {}
    }
}

/// An epoch record with the common fields.
pub fn epoch_record(epoch: usize, iteration: u64, rest: Value) -> Value {
    let mut v = json!({"kind": "epoch", "epoch": epoch, "iteration": iteration});
    if let (Value::Object(m), Value::Object(r)) = (&mut v, rest) {
        m.extend(r);
    }
    v
}

/// The run folder's logs observe training: logged iterations and every epoch's record.
impl crate::observer::Observer for RunLog {
    fn iteration(&mut self, e: &crate::observer::IterationEvent<'_>) -> Result<(), crate::train::TrainError> {
        if !e.logged {
            return Ok(());
        }
        let dir = self.dir.clone();
        self.iteration(crate::train::iteration_record(e)).map_err(|source| crate::train::TrainError::Io { path: dir, source })
    }

    fn epoch_end(&mut self, e: &crate::observer::EpochEvent<'_>) -> Result<(), crate::train::TrainError> {
        let dir = self.dir.clone();
        self.epoch(e.record.clone()).map_err(|source| crate::train::TrainError::Io { path: dir, source })
    }
}
