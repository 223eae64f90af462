//! `hydra export`

use std::path::PathBuf;

use anyhow::{Context, Result};
use hydra_model::weights;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    net: super::WeightsArgs,
    /// Output: `.safetensors` (loads into the official PyTorch module) or `.bpk` (hydra native).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    weights::export_format(&a.out).with_context(|| format!("{}: unknown export extension: use .safetensors or .bpk", a.out.display()))?;
    super::check_output(&a.out, &a.net.inputs())?;
    let device = burn::tensor::Device::flex();
    let (model, file, _) = a.net.load(&device)?;
    let format = weights::save(&model, &a.out)?;
    println!(
        "exported {} ({}, {} tensors, {} parameters) to {} ({format})",
        a.net.weights.display(),
        file.format,
        model.state_dict().len(),
        model.parameter_count(),
        a.out.display()
    );
    Ok(())
}
