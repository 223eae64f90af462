//! `hydra bench`

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use hydra_data::augment::AugmentSpec;
use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_data::loader::{Loader, LoaderSpec};
use hydra_data::synthetic::render_scene;
use hydra_train::bench::{self, peak_rss, Timing};
use hydra_train::limits;
use serde_json::json;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum What {
    /// Inference latency (forward pass).
    Infer,
    /// Training step: forward, backward, SGD update.
    Train,
    /// Input pipeline: decode + augment + batch of real 480×640 NYUv2 frames.
    Data,
    /// Synthetic scene generation.
    Synth,
}

#[derive(clap::Args)]
pub struct Args {
    /// What to measure (one per invocation, so that peak memory is that of the measurement).
    #[arg(value_enum)]
    what: What,
    /// Input size HEIGHTxWIDTH (default: 480x640 for infer and data, 256x256 for train, 240x320 for synth).
    #[arg(long)]
    size: Option<String>,
    /// Batch size (default: 1 for infer, 4 for train and data).
    #[arg(long)]
    batch: Option<usize>,
    /// Classes of the segmentation head.
    #[arg(long, default_value_t = 40)]
    classes: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Compute backend: flex, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Worker threads of the input pipeline (data).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Inference with BatchNorm folded into the convolutions.
    #[arg(long)]
    fold_bn: bool,
    /// Inference with every inverted residual block run as its three layers (by default the
    /// large blocks run fused per band of rows): to measure the fused blocks.
    #[arg(long)]
    no_fuse: bool,
    /// Inference: arithmetic of the 1×1 convolutions, f32 or bf16 (CPU with AMX-BF16 or
    /// AVX512-BF16).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Training step: how the task losses become the gradient (a `loss.weighting` name:
    /// fixed, rlw, gls, ew, mgda, pcgrad, ...), with the method's defaults.
    #[arg(long)]
    weighting: Option<String>,
    /// Training step: the gradient method combines representation gradients (`loss.rep_grad`).
    #[arg(long)]
    rep_grad: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn report(name: &str, t: &Timing, unit_per_run: f64, unit: &str) -> serde_json::Value {
    let rate = unit_per_run / t.median;
    let peak = peak_rss();
    println!(
        "{name}: median {:.4} s (min {:.4}, max {:.4}, {} runs) = {rate:.2} {unit}/s; peak RSS {}",
        t.median,
        t.min,
        t.max,
        t.repeats,
        peak.map(|b| format!("{:.0} MB", b as f64 / 1e6)).unwrap_or("unknown".into())
    );
    json!({"name": name, "timing_s": t, "rate": rate, "rate_unit": format!("{unit}/s"), "peak_rss_bytes": peak})
}

/// The command line's numbers within hydra's limits, the memory the measurement needs
/// within what the machine has, and the JSON destination writable: before any work.
fn check_limits(a: &Args, batch: usize, h: usize, w: usize) -> Result<()> {
    let lim = |what: &str, v: usize, r| limits::check(what, v, r).map_err(anyhow::Error::msg);
    lim("--batch", batch, limits::BATCH)?;
    lim("--classes", a.classes, limits::NUM_CLASSES)?;
    lim("--workers", a.workers, limits::WORKERS)?;
    lim("--warmup", a.warmup, limits::REPEATS)?;
    lim("--repeats", a.repeats, 1..=*limits::REPEATS.end())?;
    if (a.weighting.is_some() || a.rep_grad) && a.what != What::Train {
        anyhow::bail!("--weighting and --rep-grad are for `hydra bench train`");
    }
    if a.precision != "f32" && a.what != What::Infer {
        anyhow::bail!("--precision is for `hydra bench infer` (training computes in f32)");
    }
    if a.no_fuse && a.what != What::Infer {
        anyhow::bail!("--no-fuse is for `hydra bench infer` (training runs the layers one by one)");
    }
    if a.rep_grad && a.weighting.is_none() {
        anyhow::bail!("--rep-grad needs --weighting with a gradient method");
    }
    let pixels = (h * w) as u64;
    let lower = "lower --batch or --size";
    match a.what {
        What::Train => limits::check_memory(limits::training_bytes(batch, pixels, pixels, 0), &format!("a training step on {batch} images of {h}x{w}"), lower),
        What::Infer => limits::check_memory(limits::inference_bytes(batch, pixels), &format!("an inference on {batch} images of {h}x{w}"), lower),
        _ => Ok(None),
    }
    .map_err(anyhow::Error::msg)?;
    if let Some(p) = &a.json {
        super::check_output(p, &Default::default())?;
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let default_size = match a.what {
        What::Infer | What::Data => "480x640",
        What::Train => "256x256",
        What::Synth => "240x320",
    };
    let (h, w) = super::synth::parse_size(a.size.as_deref().unwrap_or(default_size))?;
    let batch = a.batch.unwrap_or(if a.what == What::Infer { 1 } else { 4 });
    check_limits(&a, batch, h, w)?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    println!("hydra bench {:?}: {h}x{w}, batch {batch}, backend {}, threads {threads}, hydra CPU kernels {}", a.what, a.backend, hydra_model::kernels::active_level());
    let result = match a.what {
        What::Infer => {
            let device = super::device(&a.backend)?;
            let precision = super::set_precision(&a.precision, &[&a.backend])?;
            println!("precision {precision}");
            if a.no_fuse {
                hydra_model::kernels::set_fusion(hydra_model::kernels::Fusion::Never);
            }
            let t = bench::inference(&device, a.classes, batch, [h, w], a.warmup, a.repeats, a.fold_bn);
            println!("inverted residual blocks fused: {} runs", hydra_model::kernels::fused_runs());
            let suffix = format!("{}{}{}", if a.fold_bn { "_foldbn" } else { "" }, if a.precision == "bf16" { "_bf16" } else { "" }, if a.no_fuse { "_nofuse" } else { "" });
            report(&format!("infer_{h}x{w}_b{batch}{suffix}"), &t, batch as f64, "images")
        }
        What::Train => {
            let device = super::device(&a.backend)?;
            let objective = match &a.weighting {
                None => None,
                Some(m) => {
                    let text = format!("[loss]\nweighting = {m:?}\nrep_grad = {}\n", a.rep_grad);
                    let config = hydra_train::config::Config::from_toml(&text, &[]).map_err(|e| anyhow::anyhow!("--weighting {m}: {e}"))?;
                    Some(hydra_train::components::objective(&config, &[hydra_model::Task::Segmentation, hydra_model::Task::Depth]))
                }
            };
            let name = match &a.weighting {
                Some(m) => format!("train_step_{h}x{w}_b{batch}_{m}{}", if a.rep_grad { "_rep" } else { "" }),
                None => format!("train_step_{h}x{w}_b{batch}"),
            };
            let t = bench::train_step(&device, a.classes, batch, [h, w], a.warmup, a.repeats, objective);
            report(&name, &t, batch as f64, "images")
        }
        What::Data => {
            // The two real frames, listed many times: decode + augment + collate at full size.
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/samples/nyud");
            let list = std::env::temp_dir().join(format!("hydra-bench-list-{}.txt", std::process::id()));
            let lines: String = (0..32).map(|i| if i % 2 == 0 { "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n" } else { "000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n" }).collect();
            std::fs::write(&list, lines).with_context(|| list.display().to_string())?;
            let spec = SourceSpec::List { root, list: list.clone(), depth_scale: 5000.0, label_palette: None };
            let (ds, _) = open(&spec, &OpenOptions { num_classes: Some(40), ..Default::default() })?;
            let _ = std::fs::remove_file(&list);
            let loader = Loader::new(
                Arc::clone(&ds),
                LoaderSpec {
                    batch_size: batch,
                    seed: 0,
                    shuffle: true,
                    drop_last: true,
                    augment: Some(AugmentSpec { scale: [0.5, 2.0], crop: Some([400, 400]), flip: true, jitter: 0.0 }),
                    pad_to: 1,
                    workers: a.workers,
                    ignore: 255,
                    max_batches: 0,
                },
            );
            let per_epoch = (loader.batches_per_epoch() * batch) as f64;
            let mut epoch = 0u64;
            let t = bench::time(1, a.repeats, || {
                epoch += 1;
                for b in loader.epoch(epoch, 0) {
                    b.expect("fixture frames load");
                }
            });
            report(&format!("data_{h}x{w}_b{batch}_workers{}", a.workers), &t, per_epoch, "samples")
        }
        What::Synth => {
            let mut i = 0u64;
            let t = bench::time(a.warmup, a.repeats.max(10), || {
                i += 1;
                render_scene(1, i, h, w);
            });
            report(&format!("synth_{h}x{w}"), &t, 1.0, "scenes")
        }
    };
    if let Some(p) = &a.json {
        hydra_model::fsio::write_atomic(p, serde_json::to_string_pretty(&result)?.as_bytes()).map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(())
}
