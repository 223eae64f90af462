//! The authors' list files: one sample per line, tab-separated paths relative to the dataset
//! root: `rgb<TAB>mask<TAB>depth`. An empty or `-` field marks a missing annotation.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// One line of a list file.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    /// 1-based line number.
    pub line: usize,
    /// RGB image path (relative to the root).
    pub rgb: PathBuf,
    /// Label PNG, if annotated.
    pub mask: Option<PathBuf>,
    /// 16-bit depth PNG, if annotated.
    pub depth: Option<PathBuf>,
}

fn field(s: &str) -> Option<PathBuf> {
    let s = s.trim();
    (!s.is_empty() && s != "-").then(|| PathBuf::from(s))
}

/// Parse list-file text. Blank lines and lines starting with `#` are skipped. Fields are
/// separated by tabs; a line without tabs is split on whitespace.
pub fn parse(text: &str, list: &Path) -> Result<Vec<ListEntry>, DataError> {
    // A byte-order mark (as some Windows editors write) is not part of the first path.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = if line.contains('\t') { line.split('\t').collect() } else { line.split_whitespace().collect() };
        if fields.len() != 3 {
            return Err(DataError::BadSample {
                list: list.into(),
                line: i + 1,
                detail: format!(
                    "expected 3 tab-separated fields (rgb, mask, depth; `-` for a missing annotation), found {}: `{line}`",
                    fields.len()
                ),
            });
        }
        let rgb = field(fields[0]).ok_or_else(|| DataError::BadSample {
            list: list.into(),
            line: i + 1,
            detail: "the RGB field is empty".into(),
        })?;
        out.push(ListEntry { line: i + 1, rgb, mask: field(fields[1]), depth: field(fields[2]) });
    }
    if out.is_empty() {
        return Err(DataError::bad_file(list, "the list file names no samples"));
    }
    Ok(out)
}

/// Read and parse a list file: a regular UTF-8 file of at most
/// [`hydra_core::fsio::MAX_TEXT_BYTES`] (a FIFO or a link to a device is refused at once).
pub fn read(list: &Path) -> Result<Vec<ListEntry>, DataError> {
    let text = hydra_core::fsio::read_text(list).map_err(|e| DataError::io(list, e))?;
    parse(&text, list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_authors_layout_and_missing_fields() {
        let text = "rgb/1.png\tmasks/1.png\tdepth/1.png\n\n# comment\nrgb/2.png\t-\tdepth/2.png\nrgb/3.png\tmasks/3.png\t\n";
        let e = parse(text, Path::new("l.txt")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].mask.as_deref(), Some(Path::new("masks/1.png")));
        assert_eq!(e[1].line, 4);
        assert_eq!(e[1].mask, None);
        assert_eq!(e[2].depth, None);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_path() {
        let e = parse("\u{feff}rgb/1.png\tm.png\td.png\n", Path::new("l.txt")).unwrap();
        assert_eq!(e[0].rgb, PathBuf::from("rgb/1.png"));
    }

    #[test]
    fn wrong_field_count_names_the_line() {
        let e = parse("a\tb\tc\nx\ty\n", Path::new("l.txt")).unwrap_err().to_string();
        assert!(e.starts_with("l.txt:2: expected 3 tab-separated fields"), "{e}");
    }

    #[test]
    fn real_split_files_have_795_and_654_samples() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/samples/nyud");
        assert_eq!(read(&root.join("train_list.txt")).unwrap().len(), 795);
        assert_eq!(read(&root.join("val_list.txt")).unwrap().len(), 654);
    }
}
