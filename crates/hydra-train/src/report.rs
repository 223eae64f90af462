//! `RUN/report.html`: one self-contained page about a run, written at the end of training
//! and by `hydra report RUN`. It is made from the run folder's files only (so the same folder
//! always gives the same page): the status, best and final metrics, the per-class IoU table
//! of the latest validation, every plot (SVG, embedded), the latest prediction panel
//! (embedded) with links to the others beside it, timings and images/s, the machines and
//! backends of each session (`run.json`), and the resolved configuration.

mod html;

use std::path::{Path, PathBuf};

use serde_json::Value;

use html::{data_uri, escape, table};

/// The report could not be made or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path, message: impl Into<String>) -> ReportError {
    ReportError { path: path.to_path_buf(), message: message.into() }
}

/// The order plots appear in; other SVGs of `plots/` follow, sorted by name.
const PLOT_ORDER: &[&str] = &[
    "loss",
    "task_losses",
    "loss_by_iteration",
    "val_segmentation",
    "val_depth_rmse",
    "val_depth_ratios",
    "iou_per_class",
    "confusion",
    "depth_error_histogram",
    "learning_rate",
    "task_weights",
    "gradient_conflict",
    "gradient_norms",
    "throughput",
];

/// What the page is made of, read from the run folder.
struct Run {
    dir: PathBuf,
    /// What links to the run folder's files start with: "" when the page is in it.
    base: String,
    config: String,
    epochs: Vec<Value>,
    iters: Vec<Value>,
    best: Option<Value>,
    validation: Option<Value>,
    finished: bool,
}

fn read_json(path: &Path) -> Option<Value> {
    hydra_model::fsio::read_text(path).ok().and_then(|t| serde_json::from_str(&t).ok())
}

impl Run {
    fn read(dir: &Path, base: String) -> Result<Self, ReportError> {
        let jsonl = dir.join("metrics.jsonl");
        if !jsonl.is_file() {
            return Err(err(dir, "not a hydra run folder (it has no metrics.jsonl)"));
        }
        let (epochs, iters) = crate::runlog::read_records(&jsonl).map_err(|e| err(&jsonl, e.to_string()))?;
        let config_path = dir.join("config.toml");
        let config = hydra_model::fsio::read_text(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            base,
            config,
            epochs,
            iters,
            best: read_json(&dir.join("best.json")),
            validation: read_json(&dir.join("plots").join("validation.json")),
            finished: dir.join("final.bpk").is_file(),
        })
    }

    fn config_value(&self, section: &str, key: &str) -> Option<toml::Value> {
        let t: toml::Table = toml::from_str(&self.config).ok()?;
        t.get(section)?.get(key).cloned()
    }
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix seconds (the proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

fn status(run: &Run) -> String {
    let done = run.epochs.last().and_then(|e| e["epoch"].as_u64()).unwrap_or(0);
    let planned = run.config_value("training", "epochs").and_then(|v| v.as_integer()).map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    let iterations = run.epochs.last().and_then(|e| e["iteration"].as_u64()).unwrap_or(0);
    let state = if run.finished { "finished (final.bpk written)" } else { "not finished: interrupted or still running (continue with hydra train --resume)" };
    format!("<p id=\"status\">{done} of {planned} epochs, {iterations} iterations; {}</p>\n", escape(state))
}

/// Rows of the metrics table: name, better, key in a validation record, key path in best.json.
const METRICS: &[(&str, &str, &str, &[&str])] = &[
    ("mIoU", "higher", "miou", &["segmentation", "miou"]),
    ("pixel accuracy", "higher", "pixel_acc", &["segmentation", "pixel_acc"]),
    ("mean class accuracy", "higher", "mean_acc", &["segmentation", "mean_acc"]),
    ("depth RMSE (m)", "lower", "rmse", &["depth", "rmse"]),
    ("depth abs rel", "lower", "abs_rel", &["depth", "abs_rel"]),
    ("depth δ < 1.25", "higher", "delta1", &["depth", "delta1"]),
    ("validation loss", "lower", "loss", &["loss"]),
];

fn metrics_section(run: &Run) -> String {
    let last_val = run.epochs.iter().rev().find(|e| e.get("val").is_some());
    let best = run.best.as_ref();
    let best_metrics = best.and_then(|b| b.get("metrics"));
    let rows: Vec<Vec<String>> = METRICS
        .iter()
        .filter_map(|(name, better, key, path)| {
            let fin = last_val.and_then(|e| num(&e["val"], &[key]));
            let bst = best_metrics.and_then(|m| num(m, path));
            (fin.is_some() || bst.is_some()).then(|| vec![escape(name), fixed(bst, 4), fixed(fin, 4), better.to_string()])
        })
        .collect();
    let best_epoch = best.and_then(|b| b["epoch"].as_u64()).map(|e| e.to_string()).unwrap_or_else(|| "–".into());
    let final_epoch = last_val.and_then(|e| e["epoch"].as_u64()).map(|e| e.to_string()).unwrap_or_else(|| "–".into());
    let monitor = best.and_then(|b| b["monitor"].as_str()).unwrap_or("–");
    let mut s = String::from("<section id=\"metrics\">\n<h2>Validation metrics</h2>\n");
    if rows.is_empty() {
        s.push_str("<p>No validation yet.</p>\n");
    } else {
        s.push_str(&format!(
            "<p>Best: epoch {best_epoch} (monitor <code>{}</code>); latest validation: epoch {final_epoch}.</p>\n",
            escape(monitor)
        ));
        s.push_str(&table("metrics", &["metric", "best weights", "latest validation", "better"], &rows));
    }
    s.push_str("</section>\n");
    s
}

fn iou_section(run: &Run) -> String {
    let mut s = String::from("<section id=\"iou\">\n<h2>Per-class IoU</h2>\n");
    let Some(v) = &run.validation else {
        s.push_str("<p>No validation yet.</p>\n</section>\n");
        return s;
    };
    let names: Vec<String> = v["class_names"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let iou = v["metrics"]["segmentation"]["iou"].as_array().cloned().unwrap_or_default();
    if iou.is_empty() {
        s.push_str("<p>Segmentation was not evaluated.</p>\n</section>\n");
        return s;
    }
    let classes = v["confusion"]["classes"].as_u64().unwrap_or(0) as usize;
    let counts: Vec<u64> = v["confusion"]["counts"].as_array().map(|a| a.iter().filter_map(|c| c.as_u64()).collect()).unwrap_or_default();
    let row_sum = |k: usize| (counts.len() == classes * classes && k < classes).then(|| counts[k * classes..(k + 1) * classes].iter().sum::<u64>());
    let rows: Vec<Vec<String>> = iou
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let name = names.get(k).cloned().unwrap_or_else(|| format!("class_{k}"));
            let pixels = row_sum(k);
            let acc = pixels.filter(|&p| p > 0).map(|p| counts[k * classes + k] as f64 / p as f64);
            vec![k.to_string(), escape(&name), x.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "absent".into()), fixed(acc, 4), pixels.map(|p| p.to_string()).unwrap_or_default()]
        })
        .collect();
    s.push_str(&format!("<p>Epoch {} (the latest validation).</p>\n", v["epoch"]));
    s.push_str(&table("iou", &["class", "name", "IoU", "accuracy", "true pixels"], &rows));
    s.push_str("</section>\n");
    s
}

fn plots_section(run: &Run) -> Result<String, ReportError> {
    let dir = run.dir.join("plots");
    let mut names: Vec<String> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut found: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".svg").map(str::to_string)).collect();
        found.sort();
        names.extend(PLOT_ORDER.iter().map(|s| s.to_string()).filter(|n| found.contains(n)));
        names.extend(found.into_iter().filter(|n| !PLOT_ORDER.contains(&n.as_str())));
    }
    let mut s = String::from("<section id=\"plots\">\n<h2>Plots</h2>\n");
    for n in &names {
        let path = dir.join(format!("{n}.svg"));
        let svg = hydra_model::fsio::read_input(&path, 64 << 20).map_err(|e| err(&path, e.to_string()))?;
        s.push_str(&format!(
            "<figure><img src=\"{}\" alt=\"{n}\"><figcaption><a href=\"{b}plots/{n}.svg\">{n}.svg</a> · <a href=\"{b}plots/{n}.png\">PNG</a></figcaption></figure>\n",
            data_uri("image/svg+xml", &svg),
            b = escape(&run.base)
        ));
    }
    if names.is_empty() {
        s.push_str("<p>No plots yet.</p>\n");
    }
    s.push_str("</section>\n");
    Ok(s)
}

fn panels_section(run: &Run) -> Result<String, ReportError> {
    let dir = run.dir.join("panels");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str().filter(|n| n.starts_with("epoch_") && n.ends_with(".png")).map(str::to_string)).collect())
        .unwrap_or_default();
    files.sort();
    let mut s = String::from("<section id=\"panels\">\n<h2>Predictions on fixed validation images</h2>\n");
    match files.last() {
        Some(last) => {
            let path = dir.join(last);
            let png = hydra_model::fsio::read_input(&path, 256 << 20).map_err(|e| err(&path, e.to_string()))?;
            s.push_str(&format!("<figure><img class=\"panel\" src=\"{}\" alt=\"{last}\"><figcaption>{last} (the latest)</figcaption></figure>\n", data_uri("image/png", &png)));
            s.push_str("<p>Every validation: ");
            let links: Vec<String> = files.iter().map(|f| format!("<a href=\"{}panels/{f}\">{}</a>", escape(&run.base), f.trim_end_matches(".png"))).collect();
            s.push_str(&links.join(" · "));
            s.push_str("</p>\n");
        }
        None => s.push_str("<p>No panels (none validated yet, or <code>output.samples = 0</code>).</p>\n"),
    }
    s.push_str("</section>\n");
    Ok(s)
}

fn timings_section(run: &Run) -> String {
    let times: Vec<f64> = run.epochs.iter().filter_map(|e| e["time_s"].as_f64()).collect();
    let total: f64 = times.iter().sum();
    let batch = run.config_value("training", "batch_size").and_then(|v| v.as_integer()).unwrap_or(0) as f64;
    let mut prev = 0;
    let mut images = 0.0;
    for e in &run.epochs {
        let it = e["iteration"].as_u64().unwrap_or(prev);
        images += (it.saturating_sub(prev)) as f64 * batch;
        prev = it;
    }
    let mut speeds: Vec<f64> = run.iters.iter().filter_map(|i| i["images_per_s"].as_f64()).filter(|v| v.is_finite()).collect();
    speeds.sort_by(f64::total_cmp);
    let median = speeds.get(speeds.len() / 2).copied();
    let rows = vec![
        vec!["training time (epochs' steps, without validation)".into(), format!("{total:.1} s")],
        vec!["epochs timed".into(), times.len().to_string()],
        vec!["mean per epoch".into(), fixed((!times.is_empty()).then(|| total / times.len() as f64), 2) + " s"],
        vec!["images per second (all epochs)".into(), fixed((total > 0.0).then(|| images / total), 1)],
        vec!["images per second (median of logged iterations)".into(), fixed(median, 1)],
    ];
    format!("<section id=\"timings\">\n<h2>Timings</h2>\n{}</section>\n", table("timings", &["", "value"], &rows))
}

fn machine_section(run: &Run) -> String {
    let info = crate::run_info::read(&run.dir);
    let rows: Vec<Vec<String>> = info
        .sessions
        .iter()
        .map(|s| {
            vec![
                escape(&utc(s.started_unix)),
                s.resumed_at.map(|i| format!("resumed at iteration {i}")).unwrap_or_else(|| "new run".into()),
                escape(&format!("{} ({})", s.backend, s.device)),
                escape(&s.cpu),
                escape(&s.cpu_features.join(" ")),
                format!("{} / {}", s.threads, s.logical_cores),
                escape(&s.os),
                escape(&s.host),
                escape(&s.hydra_version),
            ]
        })
        .collect();
    let mut s = String::from("<section id=\"machine\">\n<h2>Machine and backend</h2>\n");
    if rows.is_empty() {
        s.push_str("<p>Not recorded (no run.json).</p>\n");
    } else {
        s.push_str(&table("machine", &["session started", "", "backend (device)", "CPU", "CPU features", "threads / cores", "OS", "host", "hydra"], &rows));
    }
    s.push_str("</section>\n");
    s
}

const STYLE: &str = "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\
h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}\
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}\
th{background:#f4f4f4}td:nth-child(n+2){font-variant-numeric:tabular-nums}\
figure{display:inline-block;margin:8px;vertical-align:top}figure img{max-width:520px;border:1px solid #eee}\
img.panel{max-width:1060px}figcaption{font-size:12px;color:#666}pre{background:#f7f7f7;padding:12px;overflow:auto;font-size:13px}";

/// The page of the run folder `dir`; links to its files start with `base` ("" for a page
/// inside the folder).
pub fn render(dir: &Path, base: &str) -> Result<String, ReportError> {
    let run = Run::read(dir, base.to_string())?;
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| dir.display().to_string());
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(&format!("<title>hydra run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n", escape(&name)));
    page.push_str(&format!("<h1>hydra run <code>{}</code></h1>\n", escape(&name)));
    page.push_str(&status(&run));
    page.push_str(&metrics_section(&run));
    page.push_str(&iou_section(&run));
    page.push_str(&plots_section(&run)?);
    page.push_str(&panels_section(&run)?);
    page.push_str(&timings_section(&run));
    page.push_str(&machine_section(&run));
    page.push_str(&format!("<section id=\"config\">\n<h2>Configuration (resolved)</h2>\n<pre>{}</pre>\n</section>\n", escape(&run.config)));
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// Write the page of run folder `dir` to `out` (default `dir/report.html`), atomically. A
/// page outside the folder links to its files by their absolute paths.
pub fn write(dir: &Path, out: Option<&Path>) -> Result<PathBuf, ReportError> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| dir.join("report.html"));
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inside = out.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).and_then(canonical) == canonical(dir);
    let base = if inside { String::new() } else { canonical(dir).map(|d| format!("{}/", d.display())).unwrap_or_default() };
    let page = render(dir, &base)?;
    hydra_model::fsio::write_atomic(&out, page.as_bytes()).map_err(|(p, e)| err(&p, e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_169_465), "2026-12-01 23:57:45 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
