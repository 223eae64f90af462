//! `hydra eval`

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hydra_model::weights::{self, LoadScope};
use hydra_train::config::Config;
use hydra_train::eval::evaluate;
use hydra_train::metrics::{delta_m, EvalMetrics};
use hydra_train::setup;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Configuration whose [model] and [data] sections describe the network and the split.
    #[arg(long)]
    config: PathBuf,
    /// Weights: a hydra .bpk/.safetensors, a run checkpoint, or an official PyTorch checkpoint.
    #[arg(long)]
    weights: PathBuf,
    /// Split: `val` (data.val) or `train` (data.train, without augmentation).
    #[arg(long, default_value = "val")]
    split: String,
    /// Also write the metrics as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Compute backend: flex, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Arithmetic of the 1×1 convolutions (overrides eval.precision): f32, or bf16 (CPU with
    /// AMX-BF16 or AVX512-BF16).
    #[arg(long)]
    precision: Option<String>,
    /// Override a config value (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

fn load_net(a: &Args, config: &Config, device: &burn::tensor::Device) -> Result<hydra_model::HydraNet> {
    let net = config.network().init(device);
    // A run checkpoint holds the network under `model/`; anything else is a weight file.
    if let Ok(ck) = hydra_train::checkpoint::Checkpoint::load(&a.weights) {
        let mut l = hydra_model::state::StateLoader::new(&ck.model);
        let net = hydra_model::state::ReferenceKeys::import_state(net, "", &mut l);
        let r = l.finish();
        if let Some(i) = r.issues.first() {
            bail!("{}: checkpoint does not fit the configured network: {i}", a.weights.display());
        }
        return Ok(net);
    }
    let file = weights::read(&a.weights)?;
    Ok(file.apply(net, LoadScope::Full)?.0)
}

pub fn run(a: Args) -> Result<()> {
    let config = Config::from_file(&a.config, &a.overrides)?;
    if let Some(out) = &a.json {
        let mut inputs = hydra_model::fsio::Inputs::new();
        for p in [a.config.clone(), a.weights.clone()].into_iter().chain(config.input_files()) {
            inputs.add(&p);
        }
        super::check_output(out, &inputs)?;
    }
    let device = super::device(&a.backend)?;
    let precision_name = a.precision.clone().unwrap_or_else(|| config.eval.precision.clone());
    let precision = super::set_precision(&precision_name, &[&a.backend])?;
    let net = load_net(&a, &config, &device)?;
    let source = match a.split.as_str() {
        "val" => config.data.val.clone().context("the config has no [data.val] source; use --split train or add one")?,
        "train" => config.data.train.clone(),
        other => bail!("--split {other}: expected val or train"),
    };
    let (ds, report) = setup::open_source(&source, &config)?;
    for s in &report.skipped {
        eprintln!("skipped {}: {}", s.what, s.reason);
    }
    let loader = setup::eval_loader(ds.clone(), &config, 1);
    let spec = hydra_train::components::eval_spec(&config);
    let palette = setup::palette(&config)?;
    eprintln!("evaluating {} on {} ({precision})", a.weights.display(), ds.describe());
    let metrics = evaluate(&net, &device, &loader, &spec, |_, _| {})?;
    print_table(&metrics, &palette.names);
    let mut baselines = Vec::new();
    for p in &config.eval.baselines {
        let text = hydra_model::fsio::read_text(p).with_context(|| p.display().to_string())?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
        let m: EvalMetrics = serde_json::from_value(v.get("metrics").cloned().unwrap_or(v)).with_context(|| format!("{}: not a metrics file", p.display()))?;
        baselines.push(m);
    }
    let dm = delta_m(&metrics, &baselines);
    if let Some(d) = dm {
        println!("multi-task gain Δm: {:+.2} %", d * 100.0);
    }
    if let Some(path) = &a.json {
        let per_class: serde_json::Map<String, serde_json::Value> = metrics
            .segmentation
            .as_ref()
            .map(|s| s.iou.iter().enumerate().map(|(i, v)| (palette.names.get(i).cloned().unwrap_or(format!("class_{i}")), json!(v))).collect())
            .unwrap_or_default();
        let out = json!({"weights": a.weights, "split": a.split, "samples": ds.len(), "metrics": metrics, "iou_by_class": per_class, "delta_m": dm, "precision": precision_name, "computed_as": precision});
        hydra_model::fsio::write_atomic(path, serde_json::to_string_pretty(&out)?.as_bytes()).map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_table(m: &EvalMetrics, names: &[String]) {
    if let Some(s) = &m.segmentation {
        println!("segmentation ({} pixels)", s.pixels);
        println!("  mIoU        {:.4}", s.miou);
        println!("  pixel acc   {:.4}", s.pixel_acc);
        println!("  mean acc    {:.4}", s.mean_acc);
        println!("  IoU by class:");
        for (i, iou) in s.iou.iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or(format!("class_{i}"));
            match iou {
                Some(v) => println!("    {i:>3} {name:<18} {v:.4}"),
                None => println!("    {i:>3} {name:<18}    -   (absent)"),
            }
        }
    }
    for t in [hydra_model::Task::Segmentation, hydra_model::Task::Depth, hydra_model::Task::Normals] {
        if m.has_no_valid_pixels(t) {
            println!("{}", hydra_train::metrics::no_valid_pixels_note(t));
        }
    }
    if let Some(d) = &m.depth {
        println!("depth ({} pixels)", d.pixels);
        println!("  abs rel     {:.4}", d.abs_rel);
        println!("  sq rel      {:.4}", d.sq_rel);
        println!("  RMSE        {:.4}", d.rmse);
        println!("  RMSE log    {:.4}", d.rmse_log);
        println!("  log10       {:.4}", d.log10);
        println!("  δ < 1.25    {:.4}", d.delta1);
        println!("  δ < 1.25²   {:.4}", d.delta2);
        println!("  δ < 1.25³   {:.4}", d.delta3);
    }
}
