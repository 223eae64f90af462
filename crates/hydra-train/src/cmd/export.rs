//! `hydra export`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hydra_model::onnx::{self, OnnxOptions};
use hydra_model::weights;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    net: super::WeightsArgs,
    /// Output: `.safetensors` (loads into the official PyTorch module), `.bpk` (hydra native)
    /// or `.onnx` (ONNX Runtime, TensorRT).
    #[arg(long)]
    out: PathBuf,
    /// ONNX: a fixed input size HxW (e.g. 480x640); default: batch, height and width symbolic.
    #[arg(long, value_name = "HxW")]
    size: Option<String>,
    /// ONNX: the batch of a fixed-size input (with --size; default 1).
    #[arg(long)]
    batch: Option<usize>,
    /// ONNX: keep BatchNormalization nodes (default: BatchNorm folded into the convolutions).
    #[arg(long)]
    no_fold_bn: bool,
    /// ONNX: also output `labels` (argmax of the logits upsampled to the input size) and
    /// `depth_map` (|depth| upsampled to the input size), as `hydra predict` computes them.
    #[arg(long)]
    postprocess: bool,
    /// ONNX: the opset of the default domain (13 to 21).
    #[arg(long, default_value_t = 17)]
    opset: i64,
    /// ONNX: class names for the metadata: `nyud`, `kitti`, a palette file or an `.npy` colour
    /// map (default: the config's palette, else by the number of classes).
    #[arg(long)]
    colormap: Option<String>,
}

/// `480x640` → `[480, 640]`.
fn parse_size(s: &str) -> Result<[usize; 2]> {
    let bad = || anyhow::anyhow!("--size {s}: expected HEIGHTxWIDTH, e.g. 480x640, each from 32 to 16384");
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (h, w) = (h.trim().parse::<usize>().map_err(|_| bad())?, w.trim().parse::<usize>().map_err(|_| bad())?);
    if !(32..=16384).contains(&h) || !(32..=16384).contains(&w) {
        return Err(bad());
    }
    Ok([h, w])
}

fn is_onnx(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("onnx")
}

pub fn run(a: Args) -> Result<()> {
    let onnx = is_onnx(&a.out);
    if !onnx {
        weights::export_format(&a.out).with_context(|| format!("{}: unknown export extension: use .safetensors, .bpk or .onnx", a.out.display()))?;
        let onnx_only = [(a.size.is_some(), "--size"), (a.batch.is_some(), "--batch"), (a.no_fold_bn, "--no-fold-bn"), (a.postprocess, "--postprocess"), (a.opset != 17, "--opset"), (a.colormap.is_some(), "--colormap")];
        if let Some((_, flag)) = onnx_only.iter().find(|(on, _)| *on) {
            bail!("{flag} applies to an .onnx export only ({} is {})", a.out.display(), weights::export_format(&a.out).expect("checked").short_name());
        }
    }
    let fixed = match (&a.size, a.batch) {
        (Some(s), b) => {
            let [h, w] = parse_size(s)?;
            let b = b.unwrap_or(1);
            if !(1..=4096).contains(&b) {
                bail!("--batch {b}: must be from 1 to 4096");
            }
            Some([b, h, w])
        }
        (None, Some(_)) => bail!("--batch fixes the batch of a fixed-size input: give --size too"),
        (None, None) => None,
    };
    if !onnx::OPSETS.contains(&a.opset) {
        bail!("--opset {}: hydra writes opsets {} to {}", a.opset, onnx::OPSETS.start(), onnx::OPSETS.end());
    }
    let mut inputs = a.net.inputs();
    if let Some(c) = &a.colormap {
        inputs.add(Path::new(c));
    }
    super::check_output(&a.out, &inputs)?;
    let device = burn::tensor::Device::flex();
    let (model, file, config) = a.net.load(&device)?;
    if !onnx {
        let format = weights::save(&model, &a.out)?;
        println!(
            "exported {} ({}, {} tensors, {} parameters) to {} ({format})",
            a.net.weights.display(),
            file.format,
            model.state_dict().len(),
            model.parameter_count(),
            a.out.display()
        );
        return Ok(());
    }
    let net = model.config();
    let source = a.net.weights.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut metadata = vec![("source".to_string(), format!("{source} ({})", file.format))];
    if net.has(hydra_model::Task::Segmentation) {
        let palette = super::palette_for(&net, a.colormap.as_deref(), config.as_ref())?;
        let names: Vec<&str> = palette.names.iter().take(net.num_classes).map(String::as_str).collect();
        metadata.push(("class_names".to_string(), serde_json::to_string(&names).expect("names are JSON")));
    }
    let opts = OnnxOptions { fixed, fold_bn: !a.no_fold_bn, postprocess: a.postprocess, opset: a.opset };
    let bytes = onnx::export(&model, &opts, &metadata);
    hydra_model::fsio::write_atomic(&a.out, &bytes).map_err(|(p, e)| anyhow::anyhow!("{}: cannot write: {e}", p.display()))?;
    let input = match fixed {
        Some([n, h, w]) => format!("[{n}, 3, {h}, {w}]"),
        None => "[batch, 3, height, width]".to_string(),
    };
    println!(
        "exported {} ({}) to {} (ONNX opset {}, input {input}, BatchNorm {}{}, {:.1} MB)",
        a.net.weights.display(),
        file.format,
        a.out.display(),
        a.opset,
        if opts.fold_bn { "folded" } else { "kept" },
        if a.postprocess { ", with labels and depth_map" } else { "" },
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
