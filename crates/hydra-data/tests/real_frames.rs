//! Datasets read from real files: NYUv2 and KITTI frames in the authors' layout, the MTAN
//! packaging; reference values computed with PIL/NumPy.

use std::path::{Path, PathBuf};

use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_data::palette::Palette;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn scratch(name: &str) -> hydra_testkit::Scratch {
    hydra_testkit::scratch("hydra-data", name)
}

fn list_spec(root: &Path, list: &Path, depth_scale: f64, palette: Option<Palette>) -> SourceSpec {
    SourceSpec::List { root: root.into(), list: list.into(), depth_scale, label_palette: palette }
}

#[test]
fn nyud_frame_labels_depth_scale_and_size_are_read_exactly() {
    let dir = scratch("nyud");
    let list = dir.join("list.txt");
    std::fs::write(&list, "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\t-\tdepth_gt_000433.png\n").unwrap();
    let root = fixtures().join("samples/nyud");
    let opts = OpenOptions { num_classes: Some(40), ..Default::default() };
    let (ds, report) = open(&list_spec(&root, &list, 5000.0, None), &opts).unwrap();
    assert_eq!(ds.len(), 2);
    let s = ds.get(0).unwrap();
    assert_eq!(s.size(), [480, 640]);
    // Label histogram as numpy.unique gives on the PNG.
    let label = s.label.as_ref().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for &v in &label.data {
        *counts.entry(v).or_insert(0u64) += 1;
    }
    let expected: Vec<(u8, u64)> = vec![(0, 48888), (1, 86951), (5, 31699), (6, 24858), (10, 18981), (17, 4366), (34, 12579), (38, 40199), (39, 7668), (255, 31011)];
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), expected);
    // Depth: metres = value / 5000, 0 = no measurement.
    let depth = s.depth.as_ref().unwrap();
    assert_eq!(depth.data.iter().filter(|&&d| d == 0.0).count(), 113_674);
    let valid: Vec<f32> = depth.data.iter().copied().filter(|&d| d > 0.0).collect();
    assert_eq!(valid.iter().cloned().fold(f32::INFINITY, f32::min), 7587.0 / 5000.0);
    assert_eq!(valid.iter().cloned().fold(0.0, f32::max), 26142.0 / 5000.0);
    // The second sample has no mask: an asymmetric annotation.
    let s2 = ds.get(1).unwrap();
    assert!(s2.label.is_none() && s2.depth.is_some());
    assert_eq!(report.samples.len(), 2);
    assert!(report.samples[0].has_label && !report.samples[1].has_label);
    assert_eq!(report.samples[0].ignored, 31011);
    assert_eq!(report.sizes(), vec![([480, 640], 2)]);
}

#[test]
fn kitti_colour_coded_labels_map_through_the_palette() {
    let dir = scratch("kitti");
    let list = dir.join("list.txt");
    std::fs::write(&list, "000099.png\tsegm_gt_000099.png\t-\n").unwrap();
    let root = fixtures().join("samples/kitti");
    let opts = OpenOptions { num_classes: Some(6), ..Default::default() };
    let (ds, _) = open(&list_spec(&root, &list, 800.0, Some(Palette::kitti6())), &opts).unwrap();
    let s = ds.get(0).unwrap();
    assert_eq!(s.size(), [370, 1226]);
    let mut counts = [0u64; 7];
    for &v in &s.label.as_ref().unwrap().data {
        counts[if v == 255 { 6 } else { v as usize }] += 1;
    }
    // numpy.unique over the colour PNG: sky, building, road, sidewalk, vegetation, car, void.
    assert_eq!(counts, [19_966, 209_246, 51_540, 22_523, 31_651, 86_348, 32_346]);
}

#[test]
fn mtan_layout_reads_npy_samples() {
    let root = fixtures().join("mtan/train");
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("mtan/expected.json")).unwrap()).unwrap();
    let opts = OpenOptions { num_classes: Some(13), ..Default::default() };
    let (ds, report) = open(&SourceSpec::Mtan { root }, &opts).unwrap();
    assert_eq!(ds.len(), 3);
    for i in 0..3 {
        let s = ds.get(i).unwrap();
        let e = &expected[i];
        assert_eq!(s.size(), [24, 32]);
        let first: Vec<u64> = s.rgb.data[..3].iter().map(|&v| v as u64).collect();
        assert_eq!(first, e["rgb_first_pixel"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>());
        match e["label_sum"].as_u64() {
            None => assert!(s.label.is_none(), "sample {i} has no label file"),
            Some(sum) => {
                let l = s.label.as_ref().unwrap();
                assert_eq!(l.data.iter().filter(|&&v| v != 255).map(|&v| v as u64).sum::<u64>(), sum);
                assert_eq!(l.data.iter().filter(|&&v| v == 255).count() as u64, e["ignored"].as_u64().unwrap());
            }
        }
        let d = s.depth.as_ref().unwrap();
        assert_eq!(d.data.iter().filter(|&&v| v > 0.0).count() as u64, e["depth_valid"].as_u64().unwrap());
        assert_eq!(d.data.iter().cloned().fold(0.0, f32::max), e["depth_max"].as_f64().unwrap() as f32);
        let n = s.normal.as_ref().unwrap();
        let hw = 24 * 32;
        let got = [n[0], n[hw], n[2 * hw]];
        let want: Vec<f32> = e["normal_first"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(got.to_vec(), want);
    }
    assert_eq!(report.samples.iter().filter(|s| s.has_label).count(), 2);
}
