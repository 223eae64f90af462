//! `hydra synth`

use std::path::PathBuf;

use anyhow::{Context, Result};
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

pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("--size {s}: expected HEIGHTxWIDTH, e.g. 240x320"))?;
    let h: usize = h.trim().parse().with_context(|| format!("--size {s}: bad height"))?;
    let w: usize = w.trim().parse().with_context(|| format!("--size {s}: bad width"))?;
    anyhow::ensure!((8..=8192).contains(&h) && (8..=8192).contains(&w), "--size {s}: each side must be in 8..=8192");
    Ok((h, w))
}

pub fn run(a: Args) -> Result<()> {
    let (h, w) = parse_size(&a.size)?;
    anyhow::ensure!(a.count > 0, "--count must be positive");
    let ds = SyntheticDataset::new(a.count, h, w, a.seed);
    write_synthetic(&a.out, &ds, a.workers.max(1))?;
    println!("wrote {} scenes of {h}x{w} (seed {}) to {}", a.count, a.seed, a.out.display());
    println!("use it with [data.train] kind = \"nyud\", root = \"{}\", list = \"list.txt\", depth_scale = 5000; palette = \"{}\"", a.out.display(), a.out.join("classes.txt").display());
    Ok(())
}
