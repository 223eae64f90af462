//! `hydra synth` and `hydra data check` as a user runs them.

mod common;

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn synth_writes_the_authors_layout_byte_identically_for_a_seed() {
    let dir = scratch("synth");
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    for (out, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        let o = hydra_env(&["synth", "--out", out.to_str().unwrap(), "--count", "3", "--size", "48x64", "--seed", seed], &[]);
        assert!(o.status.success(), "{}", text(&o).1);
    }
    for f in ["list.txt", "classes.txt", "rgb/000000.png", "masks/000001.png", "depth/000002.png"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    assert_ne!(std::fs::read(a.join("rgb/000000.png")).unwrap(), std::fs::read(c.join("rgb/000000.png")).unwrap());
    // The written dataset reads back through the list-file layout with its palette file,
    // and depth round-trips through 16-bit PNG at 1/5000 m.
    let spec = hydra_data::SourceSpec::List {
        root: a.clone(),
        list: "list.txt".into(),
        depth_scale: 5000.0,
        label_palette: None,
    };
    let (ds, report) = hydra_data::open(&spec, &hydra_data::OpenOptions { num_classes: Some(6), ..Default::default() }).unwrap();
    assert_eq!(ds.len(), 3);
    let direct = hydra_data::synthetic_source::SyntheticDataset::new(3, 48, 64, 5).scene(1);
    let read = ds.get(1).unwrap();
    assert_eq!(read.rgb, direct.rgb);
    assert_eq!(read.label, direct.label);
    let (d0, d1) = (read.depth.unwrap().data, direct.depth.unwrap().data);
    assert!(d0.iter().zip(&d1).all(|(a, b)| (a - b).abs() <= 0.5 / 5000.0 + 1e-6));
    assert_eq!(report.sizes(), vec![([48, 64], 3)]);
    let palette = hydra_data::palette::Palette::from_file(&a.join("classes.txt")).unwrap();
    assert_eq!(palette.names, ["floor", "wall", "ceiling", "box", "sphere", "cylinder"]);
}

#[test]
fn data_check_reports_and_fails_on_problems() {
    let dir = scratch("datacheck");
    let cfg = tiny_config(&dir, &dir.join("run"), "");
    let o = hydra_env(&["data", "check", "--config", cfg.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in ["train: synthetic scenes (16 of 48x64, seed 1)", "samples: 16 (16 with labels, 0 missing", "class histogram", "wall", "trivial baselines on val", "data ok"] {
        assert!(out.contains(needle), "`{needle}` missing:\n{out}");
    }
    // A list with a broken line: the check fails, naming it.
    let nyud = common::fixtures().join("samples/nyud");
    std::fs::write(dir.join("list.txt"), "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tmissing.png\tdepth_gt_000433.png\n").unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        format!("[model]\nnum_classes = 40\n[data.train]\nkind = \"nyud\"\nroot = \"{}\"\nlist = \"{}\"\n", nyud.display(), dir.join("list.txt").display()),
    )
    .unwrap();
    let o = hydra_env(&["data", "check", "--config", bad.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("list.txt:2") && out.contains("missing.png"), "{out}");
    assert!(err.contains("the data has problems"), "{err}");
}
