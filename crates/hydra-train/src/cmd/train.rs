//! `hydra train`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use hydra_model::Task;
use hydra_train::config::Config;
use hydra_train::dist::World;
use hydra_train::train::{train_in, train_replicated, Reporter, Resume, Silent, TrainOptions};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// Training configuration (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. `--set training.epochs=20` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run: from the newest complete checkpoint of the run folder, or from PATH.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Stop after this many epochs of this invocation (after writing a checkpoint).
    #[arg(long, value_name = "N")]
    stop_after_epochs: Option<usize>,
    /// Compute backend (overrides training.backend): flex, wgpu, cuda.
    #[arg(long)]
    backend: Option<String>,
    /// With --resume: continue even when the configuration differs from the run's in ways
    /// that break exact continuation (the differences are listed; the old config is kept).
    #[arg(long)]
    allow_config_change: bool,
    /// Plain log lines instead of progress bars (automatic when output is not a terminal).
    #[arg(long)]
    plain: bool,
}

/// Progress bars on a terminal.
struct Bars {
    bar: Option<ProgressBar>,
    start: Instant,
}

impl Reporter for Bars {
    fn info(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => crate::cmd::say_line(line),
        }
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        let b = ProgressBar::new(batches as u64);
        b.set_style(
            ProgressStyle::with_template("epoch {prefix} {bar:25} {pos}/{len} {msg} [{elapsed}<{eta}]").expect("template"),
        );
        b.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = Some(b);
        self.start = Instant::now();
    }

    fn iteration(&mut self, done: usize, losses: &[(Task, f64)], total: f64, ips: f64) {
        if let Some(b) = &self.bar {
            let parts: Vec<String> = losses.iter().map(|(t, v)| format!("{} {v:.3}", t.key())).collect();
            b.set_message(format!("loss {total:.3} ({}) {ips:.1} img/s", parts.join(", ")));
            b.set_position(done as u64);
        }
    }

    fn epoch_end(&mut self, summary: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        println!("{summary}");
    }
}

/// Plain lines, for logs and pipes.
struct Plain {
    interval: usize,
    batches: usize,
    epoch: usize,
    start: Instant,
}

impl Reporter for Plain {
    fn info(&mut self, line: &str) {
        println!("{line}");
    }

    fn epoch_start(&mut self, epoch: usize, _epochs: usize, batches: usize) {
        self.epoch = epoch;
        self.batches = batches;
        self.start = Instant::now();
    }

    fn iteration(&mut self, done: usize, losses: &[(Task, f64)], total: f64, ips: f64) {
        if done % self.interval == 0 || done == self.batches {
            let parts: Vec<String> = losses.iter().map(|(t, v)| format!("{} {v:.4}", t.key())).collect();
            let elapsed = self.start.elapsed().as_secs_f64();
            let eta = elapsed / done as f64 * (self.batches - done) as f64;
            println!("epoch {} iter {done}/{} loss {total:.4} ({}) {ips:.2} img/s eta {eta:.0} s", self.epoch, self.batches, parts.join(", "));
        }
    }
}

/// This process's place in the run: a rank of the MPI job that started it, or one process.
#[cfg(feature = "mpi")]
fn world() -> Result<World> {
    if !hydra_train::dist::launched_by_mpi() {
        return Ok(World::solo());
    }
    let mpi = hydra_train::dist::mpi::Mpi::init().ok_or_else(|| anyhow::anyhow!("MPI was initialised twice"))?;
    Ok(World::new(std::rc::Rc::new(mpi)))
}

#[cfg(not(feature = "mpi"))]
fn world() -> Result<World> {
    if hydra_train::dist::launched_by_mpi() {
        anyhow::bail!("started by an MPI launcher, but this hydra was built without the `mpi` feature (cargo build --release --features mpi): every rank would train its own run into the same folder");
    }
    Ok(World::solo())
}

pub fn run(a: Args) -> Result<()> {
    let world = world()?;
    if world.size() == 1 {
        return run_in(a, world);
    }
    let (rank, size) = (world.rank(), world.size());
    let comm = world.comm().clone();
    match run_in(a, world) {
        Ok(()) => Ok(()),
        Err(e) => {
            // One rank's failure stops them all (the others wait in a collective).
            crate::cmd::say_line(&format!("error: rank {rank} of {size}: {}", crate::cmd::one_line(&e)));
            comm.abort(1)
        }
    }
}

fn run_in(a: Args, world: World) -> Result<()> {
    let mut overrides = a.overrides.clone();
    if let Some(b) = &a.backend {
        overrides.push(format!("training.backend={b}"));
    }
    let config = Config::from_file(&a.config, &overrides)?;
    if config.eval.precision != "f32" {
        let mut backends = vec![config.training.backend.as_str()];
        backends.extend(config.training.devices.iter().map(String::as_str));
        let p = super::set_precision(&config.eval.precision, &backends).context("eval.precision")?;
        println!("validation in {p} (training in f32)");
    }
    config.check_training_files().map_err(|e| anyhow::anyhow!("{}: {}", a.config.display(), e.0))?;
    let resume = match a.resume {
        None => Resume::No,
        Some(None) => Resume::Latest,
        Some(Some(p)) => Resume::From(p),
    };
    let plain = a.plain || !std::io::stderr().is_terminal();
    let interval = config.training.log_interval;
    let opts = TrainOptions { config, resume, stop_after_epochs: a.stop_after_epochs, allow_config_change: a.allow_config_change };
    let devices = opts.config.training.devices.len();
    if devices > 1 {
        if world.size() > 1 {
            anyhow::bail!("training.devices with several MPI ranks: give each rank one device (leave training.devices out), or run one process");
        }
        println!("data parallel: {devices} replicas on {} in one process, global batch {} = {} per replica", opts.config.training.devices.join(", "), opts.config.training.batch_size, opts.config.training.batch_size / devices);
        let summary = if plain {
            train_replicated(opts, &mut Plain { interval, batches: 0, epoch: 0, start: Instant::now() })?
        } else {
            train_replicated(opts, &mut Bars { bar: None, start: Instant::now() })?
        };
        return done(&summary);
    }
    let root = world.is_root();
    if world.size() > 1 && root {
        println!("data parallel: {} ranks (MPI), global batch {} = {} per rank", world.size(), opts.config.training.batch_size, opts.config.training.batch_size / world.size());
    }
    let summary = if !root {
        train_in(opts, &mut Silent, world)?
    } else if plain {
        train_in(opts, &mut Plain { interval, batches: 0, epoch: 0, start: Instant::now() }, world)?
    } else {
        train_in(opts, &mut Bars { bar: None, start: Instant::now() }, world)?
    };
    if !root {
        return Ok(());
    }
    done(&summary)
}

fn done(summary: &hydra_train::train::TrainSummary) -> Result<()> {
    println!(
        "done: {} epochs, {} iterations{}; run folder {}",
        summary.epochs_done,
        summary.iterations,
        if summary.stopped_early { " (stopped early)" } else { "" },
        summary.run_dir.display()
    );
    if let Some((epoch, _)) = summary.best {
        println!("best weights (epoch {epoch}): {}", summary.run_dir.join("best.bpk").display());
    }
    Ok(())
}
