//! Every data reader takes regular files only: a FIFO (which would block a plain read
//! forever), a symbolic link to an endless device (which would be read until memory runs out)
//! or a folder is refused at once with an error naming the path. A JPEG cut short is refused
//! as a truncated PNG is, instead of being decoded with grey filled in. A list file saved with
//! a UTF-8 byte-order mark reads like one without, and its paths are reported without it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_data::image_io::{self, Plane};
use hydra_data::palette::Palette;
use hydra_data::{list_file, npy, DataError};

/// Run `f` on its own thread; a reader that blocks (as on a FIFO without a writer) fails the
/// test after a few seconds instead of hanging the suite.
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what}: still reading after 10 s (blocked or reading without end)"))
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The hostile inputs: (name for messages, path) of a FIFO, a symlink to `/dev/zero`, a folder.
fn hostile(dir: &Path, stem: &str, ext: &str) -> Vec<(&'static str, PathBuf)> {
    let fifo = dir.join(format!("{stem}_fifo.{ext}"));
    mkfifo(&fifo);
    let zero = dir.join(format!("{stem}_zero.{ext}"));
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let folder = dir.join(format!("{stem}_folder.{ext}"));
    std::fs::create_dir(&folder).unwrap();
    vec![("a FIFO", fifo), ("a character device", zero), ("a folder", folder)]
}

type Reader = fn(&Path) -> Result<(), DataError>;

fn readers() -> Vec<(&'static str, &'static str, Reader)> {
    vec![
        ("read_rgb", "png", |p| image_io::read_rgb(p).map(drop)),
        ("read_label", "png", |p| image_io::read_label(p).map(drop)),
        ("read_depth16", "png", |p| image_io::read_depth16(p).map(drop)),
        ("list_file::read", "txt", |p| list_file::read(p).map(drop)),
        ("Palette::from_file", "txt", |p| Palette::from_file(p).map(drop)),
        ("Palette::from_npy", "npy", |p| Palette::from_npy(p).map(drop)),
        ("npy::read", "npy", |p| npy::read(p).map(drop)),
    ]
}

#[test]
fn every_reader_refuses_fifos_devices_and_folders_at_once_naming_the_path() {
    let dir = hydra_testkit::scratch("hydra-data-hostile", "readers");
    for (name, ext, read) in readers() {
        for (kind, path) in hostile(&dir, &name.replace("::", "_"), ext) {
            let p = path.clone();
            let e = promptly(&format!("{name} on {kind}"), move || read(&p).map_err(|e| e.to_string()));
            let e = e.expect_err(&format!("{name} accepted {kind}"));
            assert!(e.starts_with(&path.display().to_string()), "{name} on {kind}: the error must name the path: {e}");
            assert!(e.contains(kind) && e.contains("not a regular file"), "{name} on {kind}: {e}");
        }
    }
}

#[test]
fn a_palette_spec_naming_a_fifo_is_refused() {
    let dir = hydra_testkit::scratch("hydra-data-hostile", "palette-spec");
    for ext in ["npy", "txt"] {
        let fifo = dir.join(format!("cmap.{ext}"));
        mkfifo(&fifo);
        let spec = fifo.display().to_string();
        let e = promptly("Palette::resolve", move || Palette::resolve(&spec).map(drop).map_err(|e| e.to_string())).unwrap_err();
        assert!(e.contains("cmap.") && e.contains("a FIFO"), "{e}");
    }
}

fn good_frame(dir: &Path) {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/samples/nyud");
    for f in ["000464.png", "segm_gt_000464.png", "depth_gt_000464.png"] {
        std::fs::copy(fx.join(f), dir.join(f)).unwrap();
    }
}

fn open_list(root: &Path, list: &str) -> Result<usize, String> {
    let spec = SourceSpec::List { root: root.into(), list: list.into(), depth_scale: 5000.0, label_palette: None };
    let opts = OpenOptions { num_classes: Some(40), ..Default::default() };
    promptly("open a list dataset", move || open(&spec, &opts).map(|(d, _)| d.len()).map_err(|e| e.to_string()))
}

#[test]
fn a_list_dataset_naming_a_fifo_or_device_fails_on_its_line() {
    let dir = hydra_testkit::scratch("hydra-data-hostile", "list-dataset");
    good_frame(&dir);
    mkfifo(&dir.join("fifo.png"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.png")).unwrap();
    let good = "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n";
    for (line, needle) in [
        ("fifo.png\tsegm_gt_000464.png\tdepth_gt_000464.png", "fifo.png: is a FIFO"),
        ("000464.png\tzero.png\tdepth_gt_000464.png", "zero.png: is a character device"),
        ("000464.png\tsegm_gt_000464.png\tfifo.png", "fifo.png: is a FIFO"),
    ] {
        std::fs::write(dir.join("list.txt"), format!("{good}{line}\n")).unwrap();
        let e = open_list(&dir, "list.txt").unwrap_err();
        assert!(e.contains("list.txt:2: ") && e.contains(needle), "{e}");
    }
    // The list file itself.
    mkfifo(&dir.join("fifo_list.txt"));
    let e = open_list(&dir, "fifo_list.txt").unwrap_err();
    assert!(e.contains("fifo_list.txt: is a FIFO"), "{e}");
    // A control: the good line alone opens.
    std::fs::write(dir.join("list.txt"), good).unwrap();
    assert_eq!(open_list(&dir, "list.txt"), Ok(1));
}

#[test]
fn an_mtan_folder_with_a_fifo_or_device_is_refused_naming_the_file() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mtan/train");
    let dir = hydra_testkit::scratch("hydra-data-hostile", "mtan");
    for sub in ["image", "label", "depth"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(fx.join(sub).join("0.npy"), dir.join(sub).join("0.npy")).unwrap();
    }
    let open_mtan = |root: PathBuf| {
        promptly("open an MTAN folder", move || open(&SourceSpec::Mtan { root }, &OpenOptions::default()).map(|(d, _)| d.len()).map_err(|e| e.to_string()))
    };
    assert_eq!(open_mtan(dir.to_path_buf()), Ok(1));
    mkfifo(&dir.join("image/1.npy"));
    let e = open_mtan(dir.to_path_buf()).unwrap_err();
    assert!(e.contains("image/1.npy: is a FIFO"), "{e}");
    std::fs::remove_file(dir.join("image/1.npy")).unwrap();
    std::fs::remove_file(dir.join("label/0.npy")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("label/0.npy")).unwrap();
    let e = open_mtan(dir.to_path_buf()).unwrap_err();
    assert!(e.contains("label/0.npy: is a character device"), "{e}");
    // A dangling link is not a missing annotation: it is named.
    std::fs::remove_file(dir.join("label/0.npy")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.npy"), dir.join("label/0.npy")).unwrap();
    let e = open_mtan(dir.to_path_buf()).unwrap_err();
    assert!(e.contains("label/0.npy: No such file"), "{e}");
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).unwrap();
    out
}

#[test]
fn a_truncated_jpeg_is_refused_at_every_cut_and_a_whole_one_decodes() {
    let bytes = jpeg();
    let whole = image_io::decode_rgb(&bytes).unwrap();
    assert_eq!((whole.width, whole.height), (96, 64));
    let n = bytes.len();
    for cut in [n / 10, n / 4, n / 2, 3 * n / 4, 9 * n / 10, n - 10, n - 2, n - 1] {
        let e = image_io::decode_rgb(&bytes[..cut]).expect_err(&format!("a JPEG cut at {cut} of {n} bytes was accepted"));
        assert!(e.contains("truncated JPEG"), "cut at {cut}: {e}");
    }
    // Through a dataset, the error names the list line and the file.
    let dir = hydra_testkit::scratch("hydra-data-hostile", "jpeg");
    std::fs::write(dir.join("whole.jpg"), &bytes).unwrap();
    std::fs::write(dir.join("cut.jpg"), &bytes[..n / 2]).unwrap();
    std::fs::write(dir.join("list.txt"), "whole.jpg\t-\t-\ncut.jpg\t-\t-\n").unwrap();
    let e = open_list(&dir, "list.txt").unwrap_err();
    assert!(e.contains("list.txt:2: cut.jpg: truncated JPEG"), "{e}");
    let e = image_io::read_rgb(&dir.join("cut.jpg")).unwrap_err().to_string();
    assert!(e.starts_with(&dir.join("cut.jpg").display().to_string()), "{e}");
}

#[test]
fn a_list_file_with_a_byte_order_mark_reads_and_reports_paths_without_it() {
    let dir = hydra_testkit::scratch("hydra-data-hostile", "bom");
    good_frame(&dir);
    std::fs::write(dir.join("list.txt"), "\u{feff}000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n").unwrap();
    assert_eq!(open_list(&dir, "list.txt"), Ok(1));
    std::fs::write(dir.join("list.txt"), "\u{feff}missing.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n").unwrap();
    let e = open_list(&dir, "list.txt").unwrap_err();
    assert!(e.contains("list.txt:1: missing.png: No such file"), "{e}");
    assert!(!e.contains('\u{feff}'), "the byte-order mark leaked into the message: {e:?}");
    // Palette files too.
    std::fs::write(dir.join("classes.txt"), "\u{feff}1 2 3 first\n4 5 6\n").unwrap();
    let p = Palette::from_file(&dir.join("classes.txt")).unwrap();
    assert_eq!(p.colors, vec![[1, 2, 3], [4, 5, 6]]);
    assert_eq!(p.names[0], "first");
}

#[test]
fn a_depth_png_cut_short_is_refused() {
    // A control for the JPEG case: PNGs were already refused and stay so.
    let p = Plane { width: 64, height: 48, data: (0..64 * 48).map(|i| (i * 37 % 65536) as u16).collect() };
    let bytes = image_io::encode_gray16_png(&p, &[]);
    for cut in [bytes.len() / 3, bytes.len() / 2, 2 * bytes.len() / 3] {
        assert!(image_io::decode_depth16(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}
