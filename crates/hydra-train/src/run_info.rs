//! `RUN/run.json`: one entry per training session of a run (the first start and every
//! resume): when, from which iteration, hydra's version, the backend and device, and the
//! machine (CPU model and the vector features hydra's kernels use, cores, threads, OS), so
//! that a report names where its figures were measured.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One training session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Seconds since the Unix epoch when the session started.
    pub started_unix: u64,
    /// The iteration resumed at; `None` for a fresh start.
    pub resumed_at: Option<u64>,
    pub hydra_version: String,
    pub backend: String,
    pub device: String,
    pub cpu: String,
    /// Of `avx2`, `fma`, `avx512f`, `avx512_bf16`, `amx_tile`, `amx_bf16`: those present.
    pub cpu_features: Vec<String>,
    pub logical_cores: usize,
    pub threads: usize,
    pub os: String,
    pub host: String,
}

/// The sessions of a run, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub sessions: Vec<Session>,
}

fn first_line(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The CPU's model name and which of the features hydra looks at it has (from
/// `/proc/cpuinfo`; the architecture's name and no features elsewhere).
pub fn cpu() -> (String, Vec<String>) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string());
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags: Vec<String> = field("flags").unwrap_or_default().split_whitespace().map(str::to_string).collect();
    let wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"];
    (model, wanted.iter().filter(|w| flags.iter().any(|f| f == *w)).map(|w| w.to_string()).collect())
}

/// This machine's host name ("localhost" when it cannot be read).
pub fn host() -> String {
    first_line("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into())
}

/// This session, on this machine.
pub fn this_session(backend: &str, device: &str, resumed_at: Option<u64>) -> Session {
    let (cpu, cpu_features) = cpu();
    Session {
        started_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        resumed_at,
        hydra_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: backend.to_string(),
        device: device.to_string(),
        cpu,
        cpu_features,
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: rayon::current_num_threads(),
        os: format!("{} {}", std::env::consts::OS, first_line("/proc/sys/kernel/osrelease").unwrap_or_default()).trim().to_string(),
        host: host(),
    }
}

/// Read `run_dir/run.json` (empty when absent or unreadable: it only describes).
pub fn read(run_dir: &Path) -> RunInfo {
    hydra_model::fsio::read_text(&run_dir.join("run.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Append `session` to `run_dir/run.json` (written atomically).
pub fn record(run_dir: &Path, session: Session) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    let mut info = read(run_dir);
    info.sessions.push(session);
    let text = serde_json::to_string_pretty(&info).unwrap_or_default() + "\n";
    hydra_model::fsio::write_atomic(&run_dir.join("run.json"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_accumulate_in_order() {
        let dir = std::env::temp_dir().join(format!("hydra-run-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        record(&dir, this_session("flex", "cpu", None)).unwrap();
        record(&dir, this_session("flex", "cpu", Some(40))).unwrap();
        let info = read(&dir);
        assert_eq!(info.sessions.len(), 2);
        assert_eq!(info.sessions[0].resumed_at, None);
        assert_eq!(info.sessions[1].resumed_at, Some(40));
        assert!(!info.sessions[0].cpu.is_empty());
        assert!(info.sessions[1].threads >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
