//! Which plots a run folder holds, and the observer that keeps them current: line charts
//! rewritten at every epoch's end from the epoch and logged-iteration records (as in
//! metrics.jsonl), and the figures of the latest validation (per-class IoU, confusion matrix,
//! depth errors) with the numbers behind them in `plots/validation.json`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{AnyFigure, BarChart, HeatMap, Histogram, LineChart, Series};
use crate::metrics::EvalMetrics;
use crate::observer::{EpochEvent, IterationEvent, Observer, ValidationEvent};
use crate::train::TrainError;

/// The plots of one run folder, `RUN/plots/`.
pub struct RunPlots {
    dir: PathBuf,
    class_names: Vec<String>,
    epochs: Vec<Value>,
    iters: Vec<Value>,
}

fn get(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn points(records: &[Value], x: &str, path: &[&str]) -> Vec<(f64, f64)> {
    records.iter().filter_map(|r| Some((r.get(x)?.as_f64()?, get(r, path)?))).collect()
}

/// Keys of the object at `key` across records, in first-seen order.
fn keys(records: &[Value], key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if let Some(m) = r.get(key).and_then(|v| v.as_object()) {
            for (k, v) in m {
                if v.is_number() && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
    }
    out
}

fn chart(title: &str, x: &str, y: &str, series: Vec<Series>) -> Option<LineChart> {
    let series: Vec<Series> = series.into_iter().filter(|s| !s.points.is_empty()).collect();
    (!series.is_empty()).then(|| LineChart { title: title.into(), x_label: x.into(), y_label: y.into(), series })
}

/// The line charts of a run: `(file name, chart)`, from its epoch records and logged
/// iteration records (see metrics.jsonl). Charts without data are left out.
pub fn line_charts(epochs: &[Value], iters: &[Value]) -> Vec<(String, LineChart)> {
    let mut out = Vec::new();
    let mut push = |name: &str, c: Option<LineChart>| {
        if let Some(c) = c {
            out.push((name.to_string(), c));
        }
    };
    push(
        "loss",
        chart(
            "Loss: training (epoch mean) and validation",
            "epoch",
            "loss (weighted total over tasks)",
            vec![Series::line("training", points(epochs, "epoch", &["train", "loss"])), Series::marked("validation", points(epochs, "epoch", &["val", "loss"]))],
        ),
    );
    let tasks: Vec<String> = keys(epochs, "train").into_iter().filter(|k| k != "loss").collect();
    push(
        "task_losses",
        chart("Training loss per task (epoch mean, unweighted)", "epoch", "loss", tasks.iter().map(|t| Series::line(t.as_str(), points(epochs, "epoch", &["train", t]))).collect()),
    );
    let mut by_iter = vec![Series::line("total (weighted)", points(iters, "iteration", &["loss"]))];
    by_iter.extend(keys(iters, "losses").iter().map(|t| Series::line(t.as_str(), points(iters, "iteration", &["losses", t]))));
    push("loss_by_iteration", chart("Training loss at logged iterations", "iteration", "loss", by_iter));
    push(
        "learning_rate",
        chart(
            "Learning rates",
            "iteration",
            "learning rate",
            vec![Series::line("encoder", points(iters, "iteration", &["lr_encoder"])), Series::line("decoder and heads", points(iters, "iteration", &["lr_decoder"]))],
        ),
    );
    push(
        "task_weights",
        chart("Task weights (effective, end of epoch)", "epoch", "weight", keys(epochs, "weights").iter().map(|t| Series::line(t.as_str(), points(epochs, "epoch", &["weights", t]))).collect()),
    );
    push(
        "gradient_norms",
        chart(
            "Task gradient norms on the shared parameters (logged iterations)",
            "iteration",
            "‖∇ L_t‖ (encoder and decoder)",
            keys(iters, "grad_norms").iter().map(|t| Series::line(t.as_str(), points(iters, "iteration", &["grad_norms", t]))).collect(),
        ),
    );
    push(
        "gradient_conflict",
        chart(
            "Gradient conflict: cosine of task gradients on the shared parameters",
            "iteration",
            "cosine (below 0: the tasks conflict)",
            keys(iters, "grad_cosines").iter().map(|t| Series::line(t.as_str(), points(iters, "iteration", &["grad_cosines", t]))).collect(),
        ),
    );
    push("throughput", chart("Training throughput", "iteration", "images / s", vec![Series::line("training", points(iters, "iteration", &["images_per_s"]))]));
    let val = keys(epochs, "val");
    let groups: [(&str, &str, &str, &[&str]); 3] = [
        ("val_segmentation", "Validation: segmentation", "score (0 to 1, higher is better)", &["miou", "pixel_acc", "mean_acc"]),
        ("val_depth_rmse", "Validation: depth RMSE", "RMSE (m, lower is better)", &["rmse"]),
        ("val_depth_ratios", "Validation: depth abs rel and δ < 1.25", "ratio (abs rel lower, δ1 higher is better)", &["abs_rel", "delta1"]),
    ];
    for (name, title, y, ks) in groups {
        push(name, chart(title, "epoch", y, ks.iter().filter(|k| val.iter().any(|v| v == *k)).map(|k| Series::marked(*k, points(epochs, "epoch", &["val", k]))).collect()));
    }
    for k in val.iter().filter(|k| k.as_str() != "loss" && !groups.iter().any(|g| g.3.contains(&k.as_str()))) {
        push(&format!("val_{k}"), chart(&format!("Validation: {k}"), "epoch", k, vec![Series::marked(k.as_str(), points(epochs, "epoch", &["val", k]))]));
    }
    out
}

/// The figures of one validation: `(file name, title, figure)`.
pub fn validation_figures(epoch: usize, m: &EvalMetrics, class_names: &[String]) -> Vec<(String, String, AnyFigure)> {
    let mut out = Vec::new();
    if let Some(s) = &m.segmentation {
        let bars = s.iou.iter().enumerate().map(|(k, v)| (class_names.get(k).cloned().unwrap_or_else(|| format!("class_{k}")), *v)).collect();
        let title = format!("IoU per class, epoch {epoch} (mIoU {:.4})", s.miou);
        out.push(("iou_per_class".into(), title.clone(), AnyFigure::Bars(BarChart { title, x_label: "intersection over union".into(), bars })));
    }
    if let Some(c) = &m.details.confusion {
        let names: Vec<String> = (0..c.classes).map(|k| class_names.get(k).cloned().unwrap_or_else(|| format!("class_{k}"))).collect();
        let title = format!("Confusion matrix, epoch {epoch} (% of each true class)");
        out.push(("confusion".into(), title.clone(), AnyFigure::Heat(HeatMap::confusion(&title, &names, &c.counts))));
    }
    if let Some(h) = &m.details.depth_errors {
        let title = format!("Depth error, epoch {epoch}");
        out.push(("depth_error_histogram".into(), title.clone(), AnyFigure::Hist(Histogram { title, hist: h.clone(), bars: 50 })));
    }
    out
}

/// The numbers behind the validation figures, as `plots/validation.json` holds them.
pub fn validation_record(epoch: usize, m: &EvalMetrics, class_names: &[String]) -> Value {
    let mut v = json!({"epoch": epoch, "class_names": class_names, "metrics": m});
    if let Some(c) = &m.details.confusion {
        v["confusion"] = json!({"classes": c.classes, "counts": c.counts});
    }
    if let Some(h) = &m.details.depth_errors {
        v["depth_errors"] = json!({"bin_m": crate::error_histogram::ErrorHistogram::BIN_M, "counts": h.counts});
    }
    v
}

impl RunPlots {
    /// The plots of `dir` (`dir/plots/`), continuing from the records in `dir/metrics.jsonl`
    /// (which [`crate::runlog::RunLog::open`] has already cut to the resumed iteration).
    pub fn open(dir: &Path, class_names: Vec<String>) -> Self {
        let (epochs, iters) = crate::runlog::read_records(&dir.join("metrics.jsonl")).unwrap_or_default();
        Self { dir: dir.join("plots"), class_names, epochs, iters }
    }

    fn io(&self) -> impl Fn(std::io::Error) -> TrainError + '_ {
        |source| TrainError::Io { path: self.dir.clone(), source }
    }

    fn write_line_charts(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for (name, c) in line_charts(&self.epochs, &self.iters) {
            super::write(&self.dir, &name, &c.title, &c)?;
        }
        Ok(())
    }

    fn write_validation(&self, epoch: usize, m: &EvalMetrics) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for (name, title, fig) in validation_figures(epoch, m, &self.class_names) {
            super::write(&self.dir, &name, &title, &fig)?;
        }
        let record = serde_json::to_string(&validation_record(epoch, m, &self.class_names)).unwrap_or_default() + "\n";
        hydra_model::fsio::write_atomic(&self.dir.join("validation.json"), record.as_bytes()).map_err(|(_, e)| e)
    }
}

impl Observer for RunPlots {
    fn iteration(&mut self, e: &IterationEvent<'_>) -> Result<(), TrainError> {
        if e.logged {
            self.iters.push(crate::train::iteration_record(e));
        }
        Ok(())
    }

    fn validation(&mut self, e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        self.write_validation(e.epoch, e.metrics).map_err(self.io())
    }

    fn epoch_end(&mut self, e: &EpochEvent<'_>) -> Result<(), TrainError> {
        self.epochs.push(e.record.clone());
        self.write_line_charts().map_err(self.io())
    }
}
