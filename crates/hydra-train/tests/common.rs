//! Shared helpers of the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Max |a − b| and max |b|.
pub fn max_errors(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0f32, f32::max);
    (err, scale)
}

/// A fresh empty directory for one test, removed when the test passes.
pub fn scratch(name: &str) -> hydra_testkit::Scratch {
    hydra_testkit::scratch("hydra-test", name)
}

/// Run the `hydra` binary with `args` and extra environment variables.
pub fn hydra_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hydra"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run hydra")
}

/// A small synthetic training config writing to `run_dir`, with extra TOML appended.
pub fn tiny_config(dir: &Path, run_dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[model]
num_classes = 6
[data]
palette = "synthetic"
workers = 2
[data.train]
kind = "synthetic"
count = 16
size = [48, 64]
seed = 1
[data.val]
kind = "synthetic"
count = 4
size = [48, 64]
seed = 2
[augment]
scale = [0.8, 1.25]
crop = [48, 48]
jitter = 0.2
[training]
epochs = 3
batch_size = 4
log_interval = 1
[output]
dir = "{}"
{extra}"#,
        run_dir.display()
    );
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The command failed cleanly: exit code 1 (an error, not an abort), one line on stderr that
/// contains every needle.
pub fn assert_refused(o: &std::process::Output, needles: &[&str]) {
    let (_, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "a clean error exit: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

/// stdout and stderr as text.
pub fn text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The repository's fixtures for `hydra_train::selftest`.
pub fn selftest_fixtures() -> hydra_train::selftest::Fixtures {
    hydra_train::selftest::Fixtures::open(fixtures()).unwrap()
}

/// The learned parameters of a state dict (BatchNorm's buffers left out), as `(key, values)`.
pub fn parameters(sd: &hydra_model::StateDict) -> Vec<(String, Vec<f32>)> {
    sd.iter().filter(|(k, _)| !hydra_model::state::is_buffer_key(k)).map(|(k, t)| (k.to_string(), t.to_f32())).collect()
}
