//! `hydra selftest`

use std::path::PathBuf;

use anyhow::{bail, Result};
use hydra_train::backend::Backend;
use hydra_train::reduction_check::ReductionCheck;
use hydra_train::selftest::{self, Fixtures, StepReport};
use serde_json::json;

/// Check a device against the PyTorch references in fixtures/: inference on a real frame and
/// one SGD step of the authors' recipe (see the `selftest` module for the bounds).
#[derive(clap::Args)]
pub struct Args {
    /// Compute backend to check: flex, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// The repository's fixtures folder.
    #[arg(long, default_value = "fixtures")]
    fixtures: PathBuf,
    /// On flex, take the portable path (what the GPU backends compute) instead of hydra's CPU
    /// kernels, and hold it to the GPU bounds.
    #[arg(long)]
    portable: bool,
    /// Also write the measurements as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

struct Checks {
    results: Vec<serde_json::Value>,
    failed: usize,
}

impl Checks {
    fn record(&mut self, name: &str, passed: bool, line: String, details: serde_json::Value) {
        println!("{} {name}: {line}", if passed { "PASS" } else { "FAIL" });
        self.failed += usize::from(!passed);
        self.results.push(json!({"check": name, "passed": passed, "result": line, "details": details}));
    }

    /// A step's report, held to twice `spread` (`StepReport::within_spread`).
    fn step(&mut self, name: &str, r: &StepReport, spread: &StepReport) {
        let verdict = r.within_spread(spread);
        let excess = verdict.as_ref().err().map(|e| format!(" — {e}")).unwrap_or_default();
        let line = format!("{}; bound twice flex's 1-ulp spread: {}{excess}", r.summary(), spread.summary());
        self.record(name, verdict.is_ok(), line, json!({"report": r, "spread": spread}));
    }
}

pub fn run(a: Args) -> Result<()> {
    let backend = Backend::parse(&a.backend).map_err(anyhow::Error::msg)?;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    if a.portable && backend != Backend::Flex {
        bail!("--portable applies to --backend flex (the other backends always take the portable path)");
    }
    hydra_model::kernels::set_portable_only(a.portable);
    let portable = backend != Backend::Flex || a.portable;
    let checkpoint = Fixtures::checkpoint_in(&a.fixtures);
    if !checkpoint.is_file() {
        bail!("{}: not found; give the repository's fixtures folder with --fixtures", checkpoint.display());
    }
    if let Some(p) = &a.json {
        super::check_output(p, &Default::default())?;
    }
    let fx = Fixtures::open(&a.fixtures)?;
    let mut checks = Checks { results: Vec::new(), failed: 0 };

    // 1. Inference: hydra's CPU kernels are held to the parity bar, the portable path (GPUs)
    // to twice the outputs' own 1-ulp spread (about PyTorch's spread between its CPU kernels).
    let bounds = if portable {
        let s = selftest::inference_nudge_spread(&fx)?;
        [2.0 * s[0], 2.0 * s[1]]
    } else {
        [1e-4, 1e-4]
    };
    let [segm, depth] = selftest::inference_errors(&fx, &device)?;
    let ok = segm <= bounds[0] && depth <= bounds[1];
    let line = format!("max |error| / max |PyTorch| segm {segm:.2e} (bound {:.2e}), depth {depth:.2e} (bound {:.2e})", bounds[0], bounds[1]);
    checks.record("inference on frame 000464 against PyTorch", ok, line, json!({"segm": segm, "depth": depth, "bounds": bounds}));

    // 2. Long reductions, before any training step on this device.
    let train = device.autodiff();
    let full = [2, 480, 640];
    let encoder = hydra_model::HydraNetConfig::new(40).init(&train).encoder;
    let refused = if portable { ReductionCheck::default().check(&encoder, &train, full).err() } else { None };
    if portable {
        let line = refused.as_ref().map_or("exact at batch 2 × 480×640".into(), |e| e.to_string());
        checks.record("long reductions (reduction_check)", refused.is_none(), line, json!({}));
    }

    // 3. One SGD step at 2 × 480×640 against PyTorch.
    if refused.is_none() {
        let flex = selftest::flex_step(&fx, &fx.step_batch(None)?)?;
        let r = selftest::step_against_pytorch(&fx, &train)?;
        checks.step("SGD step at 2 × 480×640 against PyTorch", &r, &flex.spread);
    } else {
        println!("SKIP SGD step at 2 × 480×640 against PyTorch: the device fails the reduction check there");
    }

    // 4. The same step on 240×320 crops against flex (short enough for any driver).
    if backend != Backend::Flex {
        let name = "SGD step on 2 × 240×320 crops against flex";
        match ReductionCheck::default().check(&encoder, &train, [2, 240, 320]) {
            Err(e) => checks.record(name, false, e.to_string(), json!({})),
            Ok(()) => {
                let host = fx.step_batch(Some([240, 320]))?;
                let flex = selftest::flex_step(&fx, &host)?;
                let (losses, state) = selftest::sgd_step(&fx, &train, &host)?;
                let r = selftest::compare_step(&fx, losses, &state, flex.losses, &flex.state)?;
                checks.step(name, &r, &flex.spread);
            }
        }
    }

    if let Some(p) = &a.json {
        let doc = json!({"backend": backend.name(), "portable": portable, "checks": checks.results, "failed": checks.failed});
        hydra_model::fsio::write_atomic(p, serde_json::to_string_pretty(&doc)?.as_bytes()).map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    if checks.failed > 0 {
        bail!("{} of {} checks failed on {}", checks.failed, checks.results.len(), backend.name());
    }
    println!("all {} checks passed on {}", checks.results.len(), backend.name());
    Ok(())
}
