//! `hydra`: train, evaluate, predict, export and benchmark HydraNet from the command line.

mod cmd;
mod malloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Multi-task dense prediction (semantic segmentation + depth) with HydraNet.
#[derive(Parser)]
#[command(name = "hydra", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Predict segmentation and depth for images.
    Predict(cmd::predict::Args),
    /// Export weights to safetensors (PyTorch-loadable) or hydra's native format.
    Export(cmd::export::Args),
    /// Describe a weight file: format, architecture, tasks, classes, parameters.
    Info(cmd::info::Args),
    /// Train from a TOML configuration (resumable).
    Train(cmd::train::Args),
    /// Evaluate weights on a split: mIoU, per-class IoU, depth metrics.
    Eval(cmd::eval::Args),
    /// Write synthetic scenes in the authors' dataset layout.
    Synth(cmd::synth::Args),
    /// Benchmark inference, a training step, the input pipeline or synthetic generation.
    Bench(cmd::bench::Args),
    /// Write a run folder's one-page HTML report (metrics, plots, panels, timings, machine).
    Report(cmd::report::Args),
    /// Check a device against the PyTorch references in fixtures/ (inference, one training step).
    Selftest(cmd::selftest::Args),
    /// Dataset tools.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
}

/// Make the main thread worker 0 of rayon's global pool instead of a client that sleeps
/// while the pool runs each parallel operation and wakes when it ends: one handoff less per
/// operation (training step ~6 % faster, A/B). The thread count is unchanged
/// (`RAYON_NUM_THREADS`, else one per core). Only with two threads or more: the loader's
/// threads may submit work (image decoding) while the main thread waits for a batch, and a
/// second worker must be there to run it.
fn join_compute_pool() {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads >= 2 {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).use_current_thread().build_global();
    }
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        // A panic contained around a third-party decoder is reported as that file's error.
        if hydra_core::contain::is_contained() {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        cmd::say_line(&format!("internal error: {msg}{at} (this is a bug in hydra; please report it)"));
    }));
    malloc::tune();
    join_compute_pool();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(a) => cmd::predict::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Data(c) => cmd::data::run(c),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Selftest(a) => cmd::selftest::run(a),
        Command::Report(a) => cmd::report::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cmd::say_line(&format!("error: {}", cmd::one_line(&e)));
            ExitCode::FAILURE
        }
    }
}
