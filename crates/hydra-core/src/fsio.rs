//! File I/O that cannot harm what is not hydra's:
//! - reads take regular files of bounded size only (a FIFO, a device or `/dev/zero` behind a
//!   symlink is refused before a byte is read, never waited on or read without end);
//! - writes are atomic (a temporary file beside the destination, fsynced, then renamed over
//!   it) and replace only regular files: a destination that is a device, FIFO, socket or
//!   folder is refused, and a symlink is written through to the file it names;
//! - [`Inputs`] remembers the files a command reads, so that no output replaces one of them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Largest configuration, list, palette or other text file read (bytes).
pub const MAX_TEXT_BYTES: u64 = 64 << 20;
/// Largest image file read (bytes).
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// What a path names, in words, for messages ("a FIFO", "a folder", ...).
pub fn kind_of(ft: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn refused(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Open `path` for reading without blocking on a FIFO, and check on the open handle that it
/// is a regular file of at most `max` bytes. Returns the file and its size.
pub fn open_input(path: &Path, max: u64) -> io::Result<(File, u64)> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(0o4000); // O_NONBLOCK: opening a FIFO must not wait for a writer
    }
    let f = opts.open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(refused(format!("is {}, not a regular file; refusing to read it", kind_of(meta.file_type()))));
    }
    if meta.len() > max {
        return Err(refused(format!("is {} bytes, more than the {} bytes accepted for this kind of file", meta.len(), max)));
    }
    Ok((f, meta.len()))
}

/// Read a regular file of at most `max` bytes (see [`open_input`]). A file that grows while it
/// is read is cut off at `max + 1` bytes and refused.
pub fn read_input(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (f, len) = open_input(path, max)?;
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(refused(format!("grew past the {max} bytes accepted while it was read")));
    }
    Ok(bytes)
}

/// Read a UTF-8 text file of at most [`MAX_TEXT_BYTES`]; a leading byte-order mark is dropped.
pub fn read_text(path: &Path) -> io::Result<String> {
    let bytes = read_input(path, MAX_TEXT_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// The file a write to `path` must replace: `path` itself, or the file a symlink at `path`
/// names (followed to its end). Refuses a destination that exists and is not a regular file.
pub fn destination(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(m) if m.is_file() => return Ok(p),
            Ok(m) => return Err(refused(format!("exists and is {}; refusing to replace it with a file", kind_of(m.file_type())))),
        }
    }
    Err(refused("too many levels of symbolic links".into()))
}

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

/// Create the temporary file for `dest` (a fresh file; a stale regular one is replaced).
pub fn create_temp(dest: &Path) -> io::Result<(PathBuf, File)> {
    let tmp = temp_path(dest);
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
        fs::remove_file(&tmp)?;
    }
    let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((tmp, f))
}

/// Write `bytes` to `path` atomically. On error the destination is untouched and the
/// temporary file removed; the error is the OS error (or the refusal) for `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let fail = |e| (path.to_path_buf(), e);
    let dest = destination(path).map_err(fail)?;
    let (tmp, mut f) = create_temp(&dest).map_err(fail)?;
    let result = (|| {
        if injected_enospc(path) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::from_raw_os_error(28));
        }
        f.write_all(bytes)?;
        f.sync_all()
    })();
    drop(f);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    commit(&tmp, &dest).map_err(fail)
}

/// Rename a finished temporary file over `dest` (checked again just before, since the
/// destination may have changed while the temporary file was written) and make it durable.
pub fn commit(tmp: &Path, dest: &Path) -> io::Result<()> {
    let r = destination(dest).and_then(|d| if d == dest { fs::rename(tmp, dest) } else { Err(refused("changed into a symbolic link while it was written".into())) });
    if let Err(e) = r {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Identity of a file (device and inode): the same for every path and hard link to it.
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok()
}

/// The files a command reads: no output may replace one of them.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    #[cfg(unix)]
    ids: Vec<((u64, u64), PathBuf)>,
    #[cfg(not(unix))]
    ids: Vec<(PathBuf, PathBuf)>,
}

impl Inputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember `path` (a file that does not exist is nothing to protect).
    pub fn add(&mut self, path: &Path) {
        if let Some(id) = identity(path) {
            self.ids.push((id, path.to_path_buf()));
        }
    }

    /// The input that a write to `output` would replace, if any.
    pub fn replaced_by(&self, output: &Path) -> Option<&Path> {
        let id = identity(output)?;
        self.ids.iter().find(|(i, _)| *i == id).map(|(_, p)| p.as_path())
    }

    /// Refuse to write `output` over one of the inputs, naming both.
    pub fn check(&self, output: &Path) -> io::Result<()> {
        match self.replaced_by(output) {
            Some(input) => Err(refused(format!("is the input {}; refusing to overwrite an input with an output", input.display()))),
            None => Ok(()),
        }
    }
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
        // A write that fails halfway (a full disk, injected for this one file name) leaves
        // the old file whole and no temporary file beside it.
        let dir = std::env::temp_dir().join(format!("hydra-fsio-keep-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keep-the-old-one.bin");
        write_atomic(&p, b"the old content").unwrap();
        // SAFETY: no other test of this crate reads the variable or writes a file of this name.
        unsafe { std::env::set_var("HYDRA_FAULT_ENOSPC_MATCH", "keep-the-old-one") };
        let (path, e) = write_atomic(&p, b"the new content, much longer than the old").unwrap_err();
        unsafe { std::env::remove_var("HYDRA_FAULT_ENOSPC_MATCH") };
        assert_eq!((path.as_path(), e.raw_os_error()), (p.as_path(), Some(28)));
        assert_eq!(fs::read(&p).unwrap(), b"the old content");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
