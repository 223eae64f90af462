//! Every kind of bad sample is an error naming the list line and the file, found when the
//! dataset opens (before any training); the opt-in skip policy drops and reports them.

use std::path::{Path, PathBuf};

use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_data::image_io::{encode_gray16_png, encode_gray8_png, Plane};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/samples/nyud")
}

/// A dataset root with the two good NYUv2 frames plus `extra` files; returns the root
/// (removed when the test passes).
fn dataset(name: &str, extra: &[(&str, Vec<u8>)]) -> hydra_testkit::Scratch {
    let d = hydra_testkit::scratch("hydra-bad", name);
    for f in ["000464.png", "segm_gt_000464.png", "depth_gt_000464.png", "000433.png", "segm_gt_000433.png", "depth_gt_000433.png"] {
        std::fs::copy(fixtures().join(f), d.join(f)).unwrap();
    }
    for (n, bytes) in extra {
        std::fs::write(d.join(n), bytes).unwrap();
    }
    d
}

const GOOD: &str = "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n";

fn open_list(root: &Path, list: &str, skip_bad: bool) -> Result<(usize, Vec<String>), String> {
    std::fs::write(root.join("list.txt"), list).unwrap();
    let spec = SourceSpec::List { root: root.into(), list: "list.txt".into(), depth_scale: 5000.0, label_palette: None };
    let opts = OpenOptions { num_classes: Some(40), skip_bad, ..Default::default() };
    open(&spec, &opts).map(|(d, r)| (d.len(), r.skipped.iter().map(|s| format!("{} {}", s.what, s.reason)).collect())).map_err(|e| e.to_string())
}

fn expect_error(root: &Path, bad_line: &str, needles: &[&str]) {
    let list = format!("{GOOD}{bad_line}\n");
    let e = open_list(root, &list, false).unwrap_err();
    assert!(e.contains("list.txt:2:"), "names the list line: {e}");
    for n in needles {
        assert!(e.contains(n), "`{n}` missing from: {e}");
    }
    // With the skip policy the good sample survives and the bad one is reported.
    let (n, skipped) = open_list(root, &list, true).unwrap();
    assert_eq!(n, 1);
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].contains("list.txt:2"), "{skipped:?}");
}

#[test]
fn truncated_png() {
    let good = std::fs::read(fixtures().join("000433.png")).unwrap();
    let root = dataset("truncated", &[("cut.png", good[..good.len() / 2].to_vec())]);
    expect_error(&root, "cut.png\tsegm_gt_000433.png\tdepth_gt_000433.png", &["cut.png", "decode"]);
}

#[test]
fn label_image_of_another_size() {
    let small = encode_gray8_png(&Plane { width: 320, height: 240, data: vec![1u8; 320 * 240] }, &[]);
    let root = dataset("size", &[("small_mask.png", small)]);
    expect_error(&root, "000433.png\tsmall_mask.png\tdepth_gt_000433.png", &["small_mask.png", "320x240 does not match the RGB image 000433.png (640x480)"]);
}

#[test]
fn eight_bit_depth_png() {
    let d8 = encode_gray8_png(&Plane { width: 640, height: 480, data: vec![3u8; 640 * 480] }, &[]);
    let root = dataset("depth8", &[("depth8.png", d8)]);
    expect_error(&root, "000433.png\tsegm_gt_000433.png\tdepth8.png", &["depth8.png", "16-bit"]);
}

#[test]
fn missing_file() {
    let root = dataset("missing", &[]);
    expect_error(&root, "000433.png\tsegm_gt_000433.png\tnope.png", &["nope.png", "No such file"]);
}

#[test]
fn list_line_with_the_wrong_number_of_fields() {
    let root = dataset("fields", &[]);
    let e = open_list(&root, &format!("{GOOD}000433.png\tsegm_gt_000433.png\n"), false).unwrap_err();
    assert!(e.contains("list.txt:2: expected 3 tab-separated fields"), "{e}");
}

#[test]
fn labels_beyond_the_class_count() {
    let mut data = vec![3u8; 640 * 480];
    data[10] = 41;
    data[11] = 77;
    data[12] = 255; // the ignore value is fine
    let mask = encode_gray8_png(&Plane { width: 640, height: 480, data }, &[]);
    let root = dataset("classes", &[("big_labels.png", mask)]);
    expect_error(&root, "000433.png\tbig_labels.png\tdepth_gt_000433.png", &["big_labels.png", "2 pixels have labels ≥ num_classes 40 (largest 77)"]);
}

#[test]
fn depth_png_written_here_reads_back_with_the_scale() {
    // A control for the checks above: a valid 16-bit depth PNG of the right size is accepted.
    let d16 = encode_gray16_png(&Plane { width: 640, height: 480, data: vec![10_000u16; 640 * 480] }, &[]);
    let root = dataset("control", &[("d16.png", d16)]);
    let (n, skipped) = open_list(&root, &format!("{GOOD}000433.png\tsegm_gt_000433.png\td16.png\n"), false).unwrap();
    assert_eq!((n, skipped.len()), (2, 0));
}
