//! `hydra report`

use std::path::{Path, PathBuf};

use anyhow::Result;
use hydra_model::fsio::Inputs;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (`output.dir` of its configuration).
    run: PathBuf,
    /// Where to write the page [default: RUN/report.html].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Every file of `dir` and of its sub-folders `plots/` and `panels/`: what the page is read from.
fn run_files(dir: &Path) -> Inputs {
    let mut inputs = Inputs::new();
    for d in [dir.to_path_buf(), dir.join("plots"), dir.join("panels")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                inputs.add(&e.path());
            }
        }
    }
    inputs
}

pub fn run(a: Args) -> Result<()> {
    if let Some(out) = &a.out {
        let mut inputs = run_files(&a.run);
        // The folder's own report may be replaced; its other files may not.
        let own = a.run.join("report.html");
        if own.exists() && std::fs::canonicalize(&own).ok() == std::fs::canonicalize(out).ok() {
            inputs = Inputs::new();
        }
        super::check_output(out, &inputs)?;
    }
    let path = hydra_train::report::write(&a.run, a.out.as_deref())?;
    println!("report: {}", path.display());
    Ok(())
}
