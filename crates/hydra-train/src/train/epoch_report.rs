//! An epoch's record (for metrics.jsonl and the CSV) and its one-line summary.

use hydra_model::Task;
use serde_json::{json, Value};

use crate::metrics::{no_valid_pixels_note, EvalMetrics};
use crate::runlog::epoch_record;
use crate::train::epoch::EpochTotals;
use crate::train::Trainer;

impl Trainer {
    /// The record and summary line of the epoch just finished.
    pub fn epoch_report(&self, totals: &EpochTotals, train_time: f64, val: Option<(&EvalMetrics, bool)>) -> (Value, String) {
        let tasks = &self.tasks;
        let means = totals.means();
        let eff = self.objective.task_weights(self.module());
        let mut rec = json!({
            "train": {"loss": totals.mean_total()},
            "weights": tasks.iter().zip(&eff).map(|(t, v)| (t.key().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "lr_factor": self.sched.factor(self.iteration.saturating_sub(1)),
            "time_s": train_time,
        });
        for (t, m) in tasks.iter().zip(&means) {
            rec["train"][t.key()] = json!(m);
        }
        let mut summary = format!("epoch {:>4}/{} | loss {:.4}", self.epochs_done, self.config.training.epochs, totals.mean_total());
        for (t, m) in tasks.iter().zip(&means) {
            summary.push_str(&format!(" {} {:.4}", t.key(), m));
        }
        if let Some((m, improved)) = val {
            rec["val"] = Value::Object(val_record(m, tasks, &mut summary));
            if improved {
                summary.push_str(" *best*");
            }
        }
        summary.push_str(&format!(" | {:.1} s", train_time));
        (epoch_record(self.epochs_done, self.iteration, rec), summary)
    }
}

/// The validation part of an epoch's record; its figures are appended to `summary`.
fn val_record(m: &EvalMetrics, tasks: &[Task], summary: &mut String) -> serde_json::Map<String, Value> {
    let mut val_rec = serde_json::Map::new();
    if let Some(s) = &m.segmentation {
        val_rec.insert("miou".into(), json!(s.miou));
        val_rec.insert("pixel_acc".into(), json!(s.pixel_acc));
        val_rec.insert("mean_acc".into(), json!(s.mean_acc));
        summary.push_str(&format!(" | val mIoU {:.4} acc {:.4}", s.miou, s.pixel_acc));
    }
    if let Some(d) = &m.depth {
        val_rec.insert("rmse".into(), json!(d.rmse));
        val_rec.insert("abs_rel".into(), json!(d.abs_rel));
        val_rec.insert("delta1".into(), json!(d.delta1));
        summary.push_str(&format!(" rmse {:.4} absrel {:.4} δ1 {:.4}", d.rmse, d.abs_rel, d.delta1));
    }
    if let Some(l) = m.loss {
        val_rec.insert("loss".into(), json!(l));
    }
    for t in tasks.iter().filter(|t| m.has_no_valid_pixels(**t)) {
        summary.push_str(&format!(" | val {}", no_valid_pixels_note(*t)));
    }
    if !m.no_valid_pixels.is_empty() {
        val_rec.insert("no_valid_pixels".into(), json!(m.no_valid_pixels));
    }
    val_rec
}
