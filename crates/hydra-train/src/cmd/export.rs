//! `hydra export`

use std::path::PathBuf;

use anyhow::{Context, Result};
use hydra_model::weights;

#[derive(clap::Args)]
pub struct Args {
    /// Weight file to convert.
    #[arg(long)]
    weights: PathBuf,
    /// Number of classes (default: from the file).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Training config whose [model] section describes the network.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output: `.safetensors` (loads into the official PyTorch module) or `.bpk` (hydra native).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    weights::export_format(&a.out).with_context(|| format!("{}: unknown export extension: use .safetensors or .bpk", a.out.display()))?;
    let device = burn::tensor::Device::flex();
    let (model, file, _) = super::load_network(&a.weights, a.num_classes, a.config.as_deref(), &device)?;
    let format = weights::save(&model, &a.out)?;
    println!(
        "exported {} ({}, {} tensors, {} parameters) to {} ({format})",
        a.weights.display(),
        file.format,
        model.state_dict().len(),
        model.parameter_count(),
        a.out.display()
    );
    Ok(())
}
