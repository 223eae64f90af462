//! Before a run starts: its folder (checked, locked, and where it resumes from), a resumed
//! configuration compared with the checkpoint's, and the memory a step will need.

use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::config::Config;
use crate::run_folder::{self, Contents, RunLock};
use crate::train::error::io;
use crate::train::{Reporter, Resume, TrainError};

/// Check `run_dir` (not empty, not somebody else's files), create and lock it, and decide
/// where the run starts: a checkpoint to resume from, or `None` for the beginning. A folder
/// whose run stopped before its first checkpoint holds nothing to continue: the run starts
/// over (the same seed gives the same run), whether or not `--resume` was given.
pub(crate) fn open_run_folder(run_dir: &Path, resume: &Resume, report: &mut dyn Reporter) -> Result<(RunLock, Option<PathBuf>), TrainError> {
    if run_dir.as_os_str().is_empty() {
        return Err(TrainError::BadRunFolder { dir: run_dir.into(), reason: "empty (the run would be written into the working directory)".into() });
    }
    let state = run_folder::contents(run_dir).map_err(io(run_dir))?;
    match &state {
        Contents::Foreign { run: true, .. } if *resume != Resume::No => {}
        Contents::Foreign { entry, .. } if entry == run_dir => {
            return Err(TrainError::BadRunFolder { dir: run_dir.into(), reason: "exists and is not a folder".into() });
        }
        Contents::Foreign { entry, .. } => return Err(TrainError::ForeignRunFolder { dir: run_dir.into(), entry: entry.clone() }),
        Contents::Absent if *resume == Resume::Latest => return Err(TrainError::NoCheckpoint { dir: run_dir.into() }),
        _ => {}
    }
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    let lock = RunLock::acquire(run_dir)?;
    // Under the lock: what the folder holds now (another run may have ended meanwhile).
    let state = run_folder::contents(run_dir).map_err(io(run_dir))?;
    if state == Contents::Empty && *resume == Resume::Latest {
        return Err(TrainError::NoCheckpoint { dir: run_dir.into() });
    }
    let ckpt_dir = run_dir.join("checkpoints");
    let complete = checkpoint::complete_checkpoints(&ckpt_dir);
    let from = match resume {
        Resume::From(p) => Some(p.clone()),
        Resume::No if !complete.is_empty() => return Err(TrainError::RunExists { dir: run_dir.into() }),
        Resume::Latest if !complete.is_empty() => Some(checkpoint::newest_valid(&ckpt_dir).ok_or_else(|| TrainError::NoCheckpoint { dir: run_dir.into() })?.1),
        _ => {
            if matches!(state, Contents::Run | Contents::Foreign { run: true, .. }) {
                report.info(&format!("{}: its run stopped before its first checkpoint; starting the run over from the beginning", run_dir.display()));
            }
            None
        }
    };
    Ok((lock, from))
}

/// Compare the configuration a run is resumed with to the checkpoint's: changes that keep
/// exact continuation are listed; others stop the run unless `allow` (then the previous
/// configuration is kept beside the new one as `config-before-epoch-N.toml`).
pub(crate) fn check_config_change(ck: &Checkpoint, config: &Config, from: &Path, run_dir: &Path, allow: bool, report: &mut dyn Reporter) -> Result<(), TrainError> {
    let saved = &ck.meta.config;
    // Through today's schema first, so that a key added since the run was written compares
    // as its default (a run of an older hydra resumes); as written where that fails.
    let normalised = Config::from_toml(saved, &[]).map(|c| c.to_toml()).unwrap_or_else(|_| saved.clone());
    let changes = run_folder::changes(&normalised, &config.to_toml()).map_err(|e| TrainError::Checkpoint(CheckpointError::Invalid { path: from.into(), detail: e }))?;
    if changes.is_empty() {
        return Ok(());
    }
    let (harmless, breaking): (Vec<&run_folder::Change>, Vec<&run_folder::Change>) = changes.iter().partition(|c| c.keeps_exactness);
    if !breaking.is_empty() && !allow {
        return Err(TrainError::ConfigChanged { checkpoint: from.into(), saved: run_dir.join("config.toml"), list: run_folder::list(&breaking) });
    }
    if !harmless.is_empty() {
        report.info(&format!("note: configuration changed since the checkpoint, exact continuation kept: {}", run_folder::list(&harmless)));
    }
    if !breaking.is_empty() {
        report.info(&format!("warning: continuing with a changed configuration (--allow-config-change); the run no longer continues exactly: {}", run_folder::list(&breaking)));
        let keep = run_dir.join(format!("config-before-epoch-{:05}.toml", ck.meta.epochs_done));
        hydra_model::fsio::write_atomic(&keep, saved.as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })?;
    }
    Ok(())
}

/// Estimate the memory of a training step on the CPU (the first training image, scaled up to
/// `augment.scale`'s maximum, cropped) and refuse a configuration this machine cannot hold
/// before it is run out of memory; warn above half of what is available.
pub(crate) fn check_training_memory(config: &Config, ds: &dyn hydra_data::dataset::Dataset, backend: crate::backend::Backend, report: &mut dyn Reporter) -> Result<(), TrainError> {
    if backend != crate::backend::Backend::Flex {
        return Ok(());
    }
    let first = ds.get(0)?;
    let (h, w) = (first.rgb.height as f64, first.rgb.width as f64);
    let a = &config.augment;
    let s = a.scale[1];
    let scaled = ((h * s).ceil() * (w * s).ceil()) as u64;
    let crop = a.crop[0] > 0 && a.crop[1] > 0;
    let pixels = if crop { (a.crop[0] * a.crop[1]) as u64 } else { scaled };
    let need = crate::limits::training_bytes(config.training.batch_size, pixels, scaled, config.data.workers);
    let what = format!(
        "training.batch_size = {} of {}×{} images{} (augment.scale up to {s})",
        config.training.batch_size,
        (h * s).ceil(),
        (w * s).ceil(),
        if crop { format!(" cropped to {}×{}", a.crop[0], a.crop[1]) } else { String::new() }
    );
    let lower = "lower training.batch_size or augment.scale, or set augment.crop";
    let avail = crate::limits::check_memory(need, &what, lower).map_err(TrainError::Config)?;
    if let Some(avail) = avail.filter(|&a| need > a / 2) {
        report.info(&format!("warning: {what} needs about {} of the {} of memory available", crate::limits::gb(need), crate::limits::gb(avail)));
    }
    Ok(())
}

