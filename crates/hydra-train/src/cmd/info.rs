//! `hydra info`

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use hydra_model::weights::{self, KeyLayout, LoadScope};

#[derive(clap::Args)]
pub struct Args {
    /// Weight file (PyTorch .pth/.ckpt, safetensors, or hydra .bpk).
    #[arg(long)]
    weights: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let file = weights::read(&a.weights)?;
    println!("file:        {}", file.path.display());
    println!("format:      {}", file.format);
    let layout = match file.layout {
        KeyLayout::Reference => "reference (official HydraNet keys)",
        KeyLayout::Torchvision => "torchvision MobileNetV2 (converted to the reference encoder)",
    };
    println!("key layout:  {layout}");
    if !file.container.is_empty() {
        println!("container:   tensors under `{}`", file.container);
    }
    if let Some(p) = &file.stripped_prefix {
        println!("prefix:      `{p}` removed from every key");
    }
    println!("tensors:     {}", file.state.len());
    if !file.has_decoder() {
        let n: usize = file.state.iter().filter(|(k, _)| weights::is_encoder_key(k) && !hydra_model::state::is_buffer_key(k)).map(|(_, t)| t.numel()).sum();
        println!("contents:    MobileNetV2 encoder only ({n} parameters): usable as model.encoder_weights");
        return Ok(());
    }
    let net = file.config()?;
    let (model, _) = file.apply(net.init(&Device::flex()), LoadScope::Full)?;
    println!("architecture: MobileNetV2 encoder + Light-Weight RefineNet decoder ({} CRP stages, width {})", net.crp_stages, net.decoder_width);
    let tasks: Vec<String> = net.tasks.iter().map(|t| t.to_string()).collect();
    println!("tasks:       {}", tasks.join(", "));
    if net.has(hydra_model::Task::Segmentation) {
        println!("classes:     {}", net.num_classes);
    }
    println!("parameters:  {}", model.parameter_count());
    println!("output stride: 4 (480x640 -> 120x160)");
    Ok(())
}
