//! Atomic file writes: a temporary file beside the destination, fsynced, then renamed over it.
//! A reader never sees a half-written file, and a crash leaves the previous file intact.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary path used while writing `path` (same directory, so the rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Fault injection for the disk-full tests: with `HYDRA_FAULT_ENOSPC_MATCH=s` set, writes to
/// paths containing `s` fail with "No space left on device" after half the bytes, as a full
/// disk would. Never set by hydra itself.
fn injected_enospc(path: &Path) -> bool {
    std::env::var("HYDRA_FAULT_ENOSPC_MATCH").is_ok_and(|m| !m.is_empty() && path.to_string_lossy().contains(&m))
}

/// Write `bytes` to `path` atomically. On error the destination is untouched and the
/// temporary file removed; the error is the OS error for the path that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        if injected_enospc(path) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err((path.to_path_buf(), e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err((path.to_path_buf(), e));
    }
    // Make the rename itself durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("hydra-fsio-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_names_the_path_and_keeps_the_old_file() {
        let p = Path::new("/nonexistent-dir-hydra/x.bin");
        let (path, _) = write_atomic(p, b"x").unwrap_err();
        assert_eq!(path, p);
    }
}
