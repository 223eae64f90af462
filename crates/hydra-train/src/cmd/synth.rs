//! `hydra synth`

use std::path::PathBuf;

use anyhow::{bail, Result};
use hydra_train::limits;
use hydra_data::synthetic_source::{write_synthetic, SyntheticDataset};

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (rgb/, masks/, depth/, list.txt, classes.txt).
    #[arg(long)]
    out: PathBuf,
    /// Number of scenes.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Image size, HEIGHTxWIDTH.
    #[arg(long, default_value = "240x320")]
    size: String,
    /// Seed of the scene family.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// `--size HxW`, within the limits of `data.*.size`.
pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    limits::parse_size("--size", s).map_err(anyhow::Error::msg)
}

pub fn run(a: Args) -> Result<()> {
    let (h, w) = parse_size(&a.size)?;
    limits::check("--count", a.count, limits::SCENES).map_err(anyhow::Error::msg)?;
    limits::check("--workers", a.workers, limits::WORKERS).map_err(anyhow::Error::msg)?;
    // Never write into (and replace files of) a folder that already holds something.
    if let Ok(mut entries) = std::fs::read_dir(&a.out) {
        if let Some(e) = entries.next() {
            let name = e.map(|e| e.file_name().to_string_lossy().into_owned()).unwrap_or_default();
            bail!("{}: the folder exists and is not empty (it holds {name}); refusing to write scenes over it: choose a new folder", a.out.display());
        }
    } else if a.out.exists() {
        bail!("{}: exists and is not a folder", a.out.display());
    }
    let ds = SyntheticDataset::new(a.count, h, w, a.seed);
    write_synthetic(&a.out, &ds, a.workers.max(1))?;
    println!("wrote {} scenes of {h}x{w} (seed {}) to {}", a.count, a.seed, a.out.display());
    println!("use it with [data.train] kind = \"nyud\", root = \"{}\", list = \"list.txt\", depth_scale = 5000; palette = \"{}\"", a.out.display(), a.out.join("classes.txt").display());
    Ok(())
}
