//! Helpers shared by hydra's integration tests (a dev-dependency only, never shipped).

use std::path::{Path, PathBuf};

mod random;
pub use random::random;

/// A fresh, empty directory for one test under the system's temp folder, removed when the
/// value is dropped at the end of a passing test and kept when the test panics, for
/// inspection. (Left behind, the scratch folders of one run of the suite came to over a
/// gigabyte; repeated runs filled a disk.)
#[derive(Debug)]
pub struct Scratch(PathBuf);

/// `<temp>/<prefix>-<name>-<pid>`, emptied first.
pub fn scratch(prefix: &str, name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    Scratch(d)
}

impl Scratch {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: its files are kept in {}", self.0.display());
            return;
        }
        // Tests may leave read-only folders behind (the read-only and full-disk cases):
        // make everything writable again before removing it.
        make_writable(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::symlink_metadata(p) {
        if meta.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_removed_after_a_passing_test_even_when_read_only() {
        let s = scratch("hydra-testkit", "removed");
        let p = s.path().to_path_buf();
        std::fs::create_dir_all(p.join("ro/inner")).unwrap();
        std::fs::write(p.join("ro/inner/f"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        drop(s);
        assert!(!p.exists(), "{} should be gone", p.display());
    }

    #[test]
    fn scratch_is_kept_when_the_test_panics() {
        let p = std::thread::spawn(|| {
            let s = scratch("hydra-testkit", "kept");
            let p = s.path().to_path_buf();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _s = s;
                panic!("an intended panic: the scratch folder must survive it");
            }));
            assert!(r.is_err());
            p
        })
        .join()
        .unwrap();
        assert!(p.exists(), "kept for inspection");
        std::fs::remove_dir_all(&p).unwrap();
    }
}
