//! The run folder's logs: JSON lines (every N iterations and every epoch), a CSV of epochs,
//! and PNG plots of losses and metrics over time.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The logs of one run.
pub struct RunLog {
    dir: PathBuf,
    jsonl: PathBuf,
    /// Epoch records, for the CSV and the plots.
    epochs: Vec<Value>,
    /// Iteration records (total loss per logged iteration), for the plots.
    iters: Vec<(f64, f64)>,
}

impl RunLog {
    /// Open the logs of `dir`. When resuming at `iteration`, records written after it (by
    /// the interrupted run) are dropped so that the logs read as one uninterrupted run.
    pub fn open(dir: &Path, resume_iteration: Option<u64>) -> std::io::Result<Self> {
        let jsonl = dir.join("metrics.jsonl");
        let mut keep = Vec::new();
        if let Some(limit) = resume_iteration {
            if let Ok(text) = std::fs::read_to_string(&jsonl) {
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
        let iters = keep.iter().filter(|v| v["kind"] == "iter").filter_map(|v| Some((v["iteration"].as_f64()?, v["loss"].as_f64()?))).collect();
        Ok(Self { dir: dir.into(), jsonl, epochs, iters })
    }

    fn append(&self, v: &Value) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&self.jsonl)?;
        writeln!(f, "{v}")?;
        f.flush()
    }

    /// Log an iteration record.
    pub fn iteration(&mut self, v: Value) -> std::io::Result<()> {
        if let (Some(i), Some(l)) = (v["iteration"].as_f64(), v["loss"].as_f64()) {
            self.iters.push((i, l));
        }
        self.append(&v)
    }

    /// Log an epoch record, rewrite the CSV and the plots.
    pub fn epoch(&mut self, v: Value) -> std::io::Result<()> {
        self.append(&v)?;
        self.epochs.push(v);
        self.write_csv()?;
        self.write_plots()
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

    fn write_plots(&self) -> std::io::Result<()> {
        let dir = self.dir.join("plots");
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, title: &str, x: &str, pts: &[(f64, f64)]| -> std::io::Result<()> {
            hydra_model::fsio::write_atomic(&dir.join(format!("{name}.png")), &crate::plot::line_plot(title, x, pts)).map_err(|(_, e)| e)
        };
        if !self.iters.is_empty() {
            write("train_loss_by_iteration", "training loss (total)", "iteration", &self.iters)?;
        }
        for col in self.columns() {
            if col == "epoch" || col == "iteration" || col.starts_with("time") {
                continue;
            }
            let pts: Vec<(f64, f64)> = self
                .epochs
                .iter()
                .filter_map(|e| {
                    let mut f = Vec::new();
                    Self::flat(e, "", &mut f);
                    let y = f.iter().find(|(k, _)| *k == col)?.1;
                    Some((e["epoch"].as_f64()?, y))
                })
                .collect();
            if !pts.is_empty() {
                write(&col.replace('.', "_"), &col, "epoch", &pts)?;
            }
        }
        Ok(())
    }
}

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
