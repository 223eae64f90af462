//! `hydra predict`

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hydra_data::image_io;
use hydra_train::predict::{output_names, predict, render, write_group, WriteOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    net: super::WeightsArgs,
    /// Colours of the classes: `nyud`, `kitti`, a palette file (`R G B [name]` per line) or an `.npy` colour map.
    #[arg(long)]
    colormap: Option<String>,
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Also write the raw network outputs as .npy (float32, output resolution).
    #[arg(long)]
    raw: bool,
    /// Values of `_depth16.png` per metre.
    #[arg(long, default_value_t = 5000.0)]
    depth_scale: f32,
    /// Compute backend: flex (CPU), wgpu, cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Arithmetic of the 1×1 convolutions: f32, or bf16 (CPU with AMX-BF16 or AVX512-BF16).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Images (PNG or JPEG, any size).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
}

pub fn run(a: Args) -> Result<()> {
    if !(a.depth_scale.is_finite() && a.depth_scale > 0.0) {
        bail!("--depth-scale {}: must be a positive number", a.depth_scale);
    }
    // Check every input before writing anything, and that no output would replace an input.
    let mut inputs = a.net.inputs();
    if let Some(c) = &a.colormap {
        inputs.add(Path::new(c));
    }
    let mut stems = std::collections::HashSet::new();
    for img in &a.images {
        image_io::read_rgb(img)?;
        inputs.add(img);
        if !stems.insert(stem(img)) {
            bail!("{}: another input has the same file name; outputs would overwrite each other", img.display());
        }
    }
    for s in &stems {
        for name in output_names(s) {
            super::check_output(&a.out.join(name), &inputs)?;
        }
    }
    let device = super::device(&a.backend)?;
    let precision = super::set_precision(&a.precision, &[&a.backend])?;
    if precision != "f32" {
        eprintln!("precision {precision}");
    }
    let (model, _, config) = a.net.load(&device)?;
    let palette = super::palette_for(&model.config(), a.colormap.as_deref(), config.as_ref())?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create the output folder", a.out.display()))?;
    let probe = a.out.join(format!(".hydra-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("{}: output folder is not writable", a.out.display()))?;
    let _ = std::fs::remove_file(&probe);

    let opts = WriteOptions { palette, depth16_scale: a.depth_scale, raw: a.raw };
    let bar = (a.images.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(a.images.len() as u64);
        b.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed}<{eta} {msg}").expect("template"));
        b
    });
    for img_path in &a.images {
        let img = image_io::read_rgb(img_path)?;
        let pred = predict(&model, &device, &img);
        let s = stem(img_path);
        let (files, range) = render(&pred, &s, &a.out, &opts);
        write_group(&files, &inputs).map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        let mut msg = format!("{}: {}x{}", img_path.display(), img.width, img.height);
        if let Some(r) = range {
            msg.push_str(&format!(", depth {:.3}-{:.3} m", r.min, r.max));
        }
        msg.push_str(&format!(" -> {}", files.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")));
        match &bar {
            Some(b) => {
                b.set_message(s);
                b.inc(1);
                b.println(msg);
            }
            None => println!("{msg}"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}
