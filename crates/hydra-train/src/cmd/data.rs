//! `hydra data check`

use std::path::PathBuf;

use anyhow::{bail, Result};
use hydra_data::dataset::OpenReport;
use hydra_data::synthetic_source::SyntheticDataset;
use hydra_model::Task;
use hydra_train::config::{Config, SourceSection};
use hydra_train::setup;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Validate the configured datasets and report counts, sizes, classes and depth.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Training configuration (its [data] section is checked).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

/// The configured tasks for which a split has no valid pixel, each with why: segmentation
/// needs a label other than the ignore value; depth a measurement > 0, and on the validation
/// split also ≤ `eval.max_depth` (what evaluation counts).
fn without_valid_pixels(r: &OpenReport, config: &Config, max_depth: f64) -> Vec<(Task, String)> {
    let tasks = config.tasks();
    let mut out = Vec::new();
    if tasks.contains(&Task::Segmentation) && r.labelled_pixels() == 0 {
        out.push((Task::Segmentation, format!("every pixel is unlabelled or has the ignore label {}", config.data.ignore_index)));
    }
    if tasks.contains(&Task::Depth) && !r.has_depth_within(max_depth) {
        let why = match r.depth_range() {
            Some((lo, _)) => format!("every measured depth (from {lo:.3} m) is beyond eval.max_depth = {max_depth} m"),
            None => "no pixel has a depth measurement (> 0)".to_string(),
        };
        out.push((Task::Depth, why));
    }
    out
}

/// Open and report one split; `max_depth` is the depth limit its pixels are counted under
/// (evaluation's `eval.max_depth` on val, none on train, whose loss uses every measurement).
fn describe(name: &str, s: &SourceSection, config: &Config, names: &[String], max_depth: f64) -> Result<Option<OpenReport>> {
    let (ds, mut report) = match setup::open_source(s, config) {
        Ok(x) => x,
        Err(e) => {
            println!("{name}: FAILED: {e}");
            return Ok(None);
        }
    };
    if s.kind == "synthetic" {
        report = SyntheticDataset::new(s.count, s.size[0], s.size[1], s.seed).full_report(config.data.workers.max(1));
    }
    println!("{name}: {}", ds.describe());
    print_report(&report, names);
    for (task, why) in without_valid_pixels(&report, config, max_depth) {
        println!("  WARNING {}: {why}", hydra_train::metrics::no_valid_pixels_note(task));
    }
    Ok(Some(report))
}

/// What a model that learned nothing from the image scores on `val`: the training set's most
/// frequent class everywhere, and its mean depth everywhere.
fn print_baselines(train: &OpenReport, val: &OpenReport, names: &[String], max_depth: f64) {
    let hist = train.class_histogram();
    if let Some((c, _)) = hist.iter().enumerate().max_by_key(|(_, n)| **n) {
        if let Some((acc, miou)) = val.constant_class_scores(c) {
            let name = names.get(c).cloned().unwrap_or(format!("class_{c}"));
            println!("trivial baselines on val: always `{name}`: mIoU {miou:.4}, pixel acc {acc:.4}");
        }
    }
    if let (Some(m), true) = (train.depth_mean(), val.has_depth_within(max_depth)) {
        if let Some(rmse) = val.constant_depth_rmse(m) {
            println!("trivial baselines on val: always the mean training depth {m:.3} m: RMSE {rmse:.4}");
        }
    }
}

fn print_report(r: &OpenReport, names: &[String]) {
    let n = r.samples.len();
    let labels = r.samples.iter().filter(|s| s.has_label).count();
    let depth = r.samples.iter().filter(|s| s.has_depth).count();
    println!("  samples: {n} ({labels} with labels, {} missing; {depth} with depth, {} missing)", n - labels, n - depth);
    for (size, count) in r.sizes() {
        println!("  size {}x{} (HxW): {count}", size[0], size[1]);
    }
    if let Some((lo, hi)) = r.depth_range() {
        let valid: u64 = r.samples.iter().map(|s| s.depth_valid).sum();
        let total: u64 = r.samples.iter().filter(|s| s.has_depth).map(|s| (s.size[0] * s.size[1]) as u64).sum();
        println!("  depth: {lo:.3} – {hi:.3} m, {:.1} % of pixels measured", 100.0 * valid as f64 / total.max(1) as f64);
    }
    let hist = r.class_histogram();
    let ignored: u64 = r.samples.iter().map(|s| s.ignored).sum();
    let total: u64 = hist.iter().sum::<u64>() + ignored;
    if total > 0 {
        println!("  class histogram (share of labelled pixels):");
        for (i, &c) in hist.iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or(format!("class_{i}"));
            println!("    {i:>3} {name:<18} {:>6.2} %", 100.0 * c as f64 / total as f64);
        }
        println!("    ignore                 {:>6.2} %", 100.0 * ignored as f64 / total as f64);
    }
    for s in &r.skipped {
        println!("  BAD {}: {}", s.what, s.reason);
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Check(a) => {
            let config = Config::from_file(&a.config, &a.overrides)?;
            let names = setup::palette(&config)?.names;
            let clean = |r: &Option<OpenReport>, max_depth: f64| {
                r.as_ref().is_some_and(|r| r.skipped.is_empty() && without_valid_pixels(r, &config, max_depth).is_empty())
            };
            let train = describe("train", &config.data.train, &config, &names, 0.0)?;
            let mut ok = clean(&train, 0.0);
            if let Some(v) = &config.data.val {
                let val = describe("val", v, &config, &names, config.eval.max_depth)?;
                ok &= clean(&val, config.eval.max_depth);
                if let (Some(t), Some(v)) = (&train, &val) {
                    print_baselines(t, v, &names, config.eval.max_depth);
                }
            }
            if !ok {
                bail!("the data has problems (listed above)");
            }
            println!("data ok");
            Ok(())
        }
    }
}
