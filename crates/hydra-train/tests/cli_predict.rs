//! `hydra predict`, `hydra export`, `hydra info` as a user runs them.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixtures, max_errors, scratch};
use hydra_data::{image_io, npy};

fn hydra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydra")).args(args).output().expect("run hydra")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().file_name().into_string().unwrap()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn assert_clean_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "stderr should mention `{needle}`: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn predict_raw_reproduces_pytorch_and_writes_full_resolution_images() {
    let out_dir = scratch("predict");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let nyud = fixtures().join("samples/nyud/000464.png");
    let kitti = fixtures().join("samples/kitti/000099.png");
    let out = hydra(&["predict", "--weights", s(&ckpt), "--raw", "--out", s(&out_dir), s(&nyud), s(&kitti)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("000464.png: 640x480, depth "), "{stdout}");
    assert_eq!(
        files_in(&out_dir),
        [
            "000099_depth.npy", "000099_depth.png", "000099_depth16.png", "000099_segm.npy", "000099_segm.png",
            "000464_depth.npy", "000464_depth.png", "000464_depth16.png", "000464_segm.npy", "000464_segm.png",
        ]
    );
    // Raw outputs equal PyTorch's within the bar, as in tests/pytorch_parity.rs.
    let segm = npy::read(&out_dir.join("000464_segm.npy")).unwrap();
    assert_eq!(segm.shape, vec![40, 120, 160]);
    let reference = npy::read(&fixtures().join("pytorch/hydranet40_s0_000464_segm.npy")).unwrap();
    let (err, scale) = max_errors(&segm.to_f32(), &reference.to_f32());
    assert!(err <= 1e-4 * scale, "{err} vs {scale}");
    let depth = npy::read(&out_dir.join("000464_depth.npy")).unwrap();
    assert_eq!(depth.shape, vec![120, 160]);
    let reference = npy::read(&fixtures().join("pytorch/hydranet40_s0_000464_depth.npy")).unwrap();
    let (err, scale) = max_errors(&depth.to_f32(), &reference.to_f32());
    assert!(err <= 1e-4 * scale, "{err} vs {scale}");
    // KITTI-size input: raw outputs at stride 4 (93 × 307), images at the input size.
    assert_eq!(npy::read(&out_dir.join("000099_segm.npy")).unwrap().shape, vec![40, 93, 307]);
    let segm_png = image_io::read_rgb(&out_dir.join("000099_segm.png")).unwrap();
    assert_eq!((segm_png.width, segm_png.height), (1226, 370));
    // 16-bit depth: metres × 5000 of the upsampled |depth|; the range is in the metadata.
    let d16 = image_io::read_depth16(&out_dir.join("000464_depth16.png")).unwrap();
    assert_eq!((d16.width, d16.height), (640, 480));
    let bytes = std::fs::read(out_dir.join("000464_depth.png")).unwrap();
    let text = image_io::png_text(&bytes).unwrap();
    let max: f32 = text.iter().find(|(k, _)| k == "depth_max_m").unwrap().1.parse().unwrap();
    let d16_max = *d16.data.iter().max().unwrap() as f32 / 5000.0;
    assert!((d16_max - max).abs() <= 0.5 / 5000.0 + 1e-6, "{d16_max} vs {max}");
    // Every pixel: the raw depth (written beside it) upsampled to the input, |·| × 5000,
    // rounded; one unit of slack where the two roundings of a half straddle.
    let raw = burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(depth.to_f32(), [1, 1, 120, 160]), &burn::tensor::Device::flex());
    let up: Vec<f32> = hydra_model::resize::resize_bilinear(raw, [480, 640]).into_data().try_to_vec::<f32>().unwrap();
    let off = d16.data.iter().zip(&up).filter(|&(&got, &m)| (got as f32 - (m.abs() * 5000.0).round().min(65535.0)).abs() > 1.0).count();
    assert_eq!(off, 0, "pixels of depth16 that are not 5000 × the upsampled depth");
    let exact = d16.data.iter().zip(&up).filter(|&(&got, &m)| got as f32 == (m.abs() * 5000.0).round()).count();
    assert!(exact as f64 >= 0.999 * up.len() as f64, "{exact} of {} exact", up.len());
    // Labels: colours of the NYUv2 palette, argmax of the upsampled logits.
    let nyud_png = image_io::read_rgb(&out_dir.join("000464_segm.png")).unwrap();
    let palette = hydra_data::palette::Palette::nyud40();
    assert!(nyud_png.data.chunks(3).all(|c| palette.colors.contains(&[c[0], c[1], c[2]])));
}

#[test]
fn export_then_predict_gives_identical_outputs() {
    let dir = scratch("export-cli");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let img = fixtures().join("samples/nyud/000433.png");
    let st = dir.join("model.safetensors");
    let out = hydra(&["export", "--weights", s(&ckpt), "--out", s(&st)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = dir.join("a");
    let b = dir.join("b");
    assert!(hydra(&["predict", "--weights", s(&ckpt), "--raw", "--out", s(&a), s(&img)]).status.success());
    assert!(hydra(&["predict", "--weights", s(&st), "--raw", "--out", s(&b), s(&img)]).status.success());
    for f in ["000433_segm.npy", "000433_depth.npy", "000433_segm.png", "000433_depth16.png"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    let info = hydra(&["info", "--weights", s(&st)]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("format:      safetensors"), "{text}");
    assert!(text.contains("parameters:  3070057"), "{text}");
}

#[test]
fn unreadable_image_fails_cleanly_without_output() {
    let dir = scratch("bad-image");
    let bad = dir.join("broken.png");
    let good = std::fs::read(fixtures().join("samples/nyud/000464.png")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    let out_dir = dir.join("out");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let ok_img = fixtures().join("samples/nyud/000464.png");
    let out = hydra(&["predict", "--weights", s(&ckpt), "--out", s(&out_dir), s(&ok_img), s(&bad)]);
    assert_clean_failure(&out, "broken.png");
    assert!(files_in(&out_dir).is_empty(), "{:?}", files_in(&out_dir));
}

#[test]
fn bad_weights_fail_cleanly() {
    let dir = scratch("bad-weights");
    let img = fixtures().join("samples/nyud/000464.png");
    let junk = dir.join("junk.pth");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    let out_dir = dir.join("out");
    assert_clean_failure(&hydra(&["predict", "--weights", s(&junk), "--out", s(&out_dir), s(&img)]), "not a weight file");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let out = hydra(&["predict", "--weights", s(&ckpt), "--num-classes", "6", "--out", s(&out_dir), s(&img)]);
    assert_clean_failure(&out, "`segm.weight`: the file has [40, 256, 3, 3], the model expects [6, 256, 3, 3]");
    assert!(files_in(&out_dir).is_empty());
}

#[test]
fn unwritable_output_folder_fails_cleanly() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let img = fixtures().join("samples/nyud/000464.png");
    let out = hydra(&["predict", "--weights", s(&ckpt), "--out", s(&file.join("sub")), s(&img)]);
    assert_clean_failure(&out, "a-file/sub");
}

/// Pixels of an RGB image as colours.
fn colours(img: &image_io::RgbImage) -> Vec<[u8; 3]> {
    img.data.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

#[test]
fn colour_maps_depth_scale_and_config_change_only_what_they_name() {
    let dir = scratch("predict-options");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let img = fixtures().join("samples/nyud/000464.png");
    let run = |name: &str, weights: &Path, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec!["predict", "--weights", s(weights), "--out", s(&out)];
        args.extend_from_slice(extra);
        args.push(s(&img));
        let o = hydra(&args);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        out
    };
    // The same labels in another palette (a palette file) and depth at another scale.
    let palette = dir.join("classes.txt");
    let lines: String = (0..40).map(|k| format!("{} {} {} class {k}\n", k * 6, 255 - k * 6, (k * 37) % 256)).collect();
    std::fs::write(&palette, lines).unwrap();
    let nyud = run("nyud", &ckpt, &[]);
    let custom = run("custom", &ckpt, &["--colormap", s(&palette), "--depth-scale", "1000"]);
    let p_nyud = hydra_data::palette::Palette::nyud40();
    let a = colours(&image_io::read_rgb(&nyud.join("000464_segm.png")).unwrap());
    let c = colours(&image_io::read_rgb(&custom.join("000464_segm.png")).unwrap());
    let mut classes = std::collections::BTreeSet::new();
    for (x, y) in a.iter().zip(&c) {
        let k = p_nyud.colors.iter().position(|c| c == x).expect("a NYUDv2 colour");
        classes.insert(k);
        assert_eq!(*y, [(k * 6) as u8, (255 - k * 6) as u8, ((k * 37) % 256) as u8], "class {k}");
    }
    assert!(classes.len() >= 3, "the frame shows several classes: {classes:?}");
    let d5 = image_io::read_depth16(&nyud.join("000464_depth16.png")).unwrap();
    let d1 = image_io::read_depth16(&custom.join("000464_depth16.png")).unwrap();
    assert!(d5.data.iter().zip(&d1.data).all(|(&f, &o)| (f as f32 / 5.0 - o as f32).abs() <= 0.61), "depth16 is not depth × scale");
    assert_eq!(std::fs::read(nyud.join("000464_depth.png")).unwrap(), std::fs::read(custom.join("000464_depth.png")).unwrap(), "the colour depth image does not depend on the scale");
    // A palette with fewer colours than the network has classes is refused.
    let o = hydra(&["predict", "--weights", s(&ckpt), "--colormap", "kitti", "--out", s(&dir.join("x")), s(&img)]);
    assert_clean_failure(&o, "6 colours for a network of 40 classes");
    // A 6-class network: `--colormap kitti` and `--config` (the quickstart's synthetic palette)
    // colour the same labels.
    let six = dir.join("six.bpk");
    hydra_model::weights::save(&hydra_model::HydraNetConfig::new(6).init(&burn::tensor::Device::flex()), &six).unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/quickstart.toml");
    let k = colours(&image_io::read_rgb(&run("kitti", &six, &["--colormap", "kitti"]).join("000464_segm.png")).unwrap());
    let q = colours(&image_io::read_rgb(&run("config", &six, &["--config", s(&quickstart)]).join("000464_segm.png")).unwrap());
    let (p_kitti, p_synth) = (hydra_data::palette::Palette::kitti6(), hydra_train::setup::palette_named("synthetic").unwrap());
    for (x, y) in k.iter().zip(&q) {
        let class = p_kitti.colors.iter().position(|c| c == x).expect("a KITTI colour");
        assert_eq!(*y, p_synth.color(class), "class {class}");
    }
}

#[test]
fn an_image_s_files_appear_together_or_not_at_all() {
    let dir = scratch("predict-group");
    let (a, b, c) = (dir.join("x_segm.png"), dir.join("x_depth.png"), dir.join("x_depth16.png"));
    std::fs::write(&a, b"old segm").unwrap();
    // The third file's name is taken by a folder: the group fails there, before any commit.
    std::fs::create_dir(&c).unwrap();
    let group = vec![(a.clone(), b"new segm".to_vec()), (b.clone(), b"new depth".to_vec()), (c.clone(), b"new depth16".to_vec())];
    let (failed, _) = hydra_train::predict::write_group(&group, &hydra_model::fsio::Inputs::new()).unwrap_err();
    assert_eq!(failed, c);
    assert_eq!(std::fs::read(&a).unwrap(), b"old segm", "a file of the failed group was replaced");
    assert!(!b.exists(), "a file of the failed group appeared");
    assert_eq!(files_in(&dir), ["x_depth16.png", "x_segm.png"], "no temporary file is left");
    // With the way clear, the whole group appears.
    std::fs::remove_dir(&c).unwrap();
    hydra_train::predict::write_group(&group, &hydra_model::fsio::Inputs::new()).unwrap();
    for (p, bytes) in &group {
        assert_eq!(&std::fs::read(p).unwrap(), bytes);
    }
    assert_eq!(files_in(&dir).len(), 3);
}

/// `file` (safetensors) with every F32 tensor stored as F64 instead (the same values).
fn as_float64(file: &Path, out: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let (mut new_header, mut new_data) = (serde_json::Map::new(), Vec::new());
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort_by_key(|k| header[*k]["data_offsets"][0].as_u64().unwrap());
    for k in names {
        let v = &header[k];
        let [a, b] = [0, 1].map(|i| v["data_offsets"][i].as_u64().unwrap() as usize);
        let start = new_data.len();
        let dtype = if v["dtype"] == "F32" {
            for c in data[a..b].chunks_exact(4) {
                new_data.extend_from_slice(&(f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes());
            }
            "F64"
        } else {
            new_data.extend_from_slice(&data[a..b]);
            v["dtype"].as_str().unwrap()
        };
        new_header.insert(k.clone(), serde_json::json!({"dtype": dtype, "shape": v["shape"], "data_offsets": [start, new_data.len()]}));
    }
    // The metadata without hydra's checksum (of the float32 bytes), as another tool writes it.
    if let Some(serde_json::Value::Object(m)) = header.get("__metadata__") {
        let mut m = m.clone();
        m.remove("hydra.crc32");
        new_header.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    let mut h = serde_json::to_vec(&new_header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out_bytes = (h.len() as u64).to_le_bytes().to_vec();
    out_bytes.extend_from_slice(&h);
    out_bytes.extend_from_slice(&new_data);
    std::fs::write(out, out_bytes).unwrap();
}

#[test]
fn float64_weights_and_the_kitti_and_three_task_layouts_predict() {
    let dir = scratch("predict-layouts");
    let device = burn::tensor::Device::flex();
    // float64 safetensors (as `model.double()` then save_file writes): the same outputs, exactly.
    let st = dir.join("m.safetensors");
    assert!(hydra(&["export", "--weights", s(&fixtures().join("pytorch/hydranet40_s0.ckpt")), "--out", s(&st)]).status.success());
    let st64 = dir.join("m64.safetensors");
    as_float64(&st, &st64);
    let img = fixtures().join("samples/nyud/000464.png");
    for (name, w) in [("f32", &st), ("f64", &st64)] {
        let o = hydra(&["predict", "--weights", s(w), "--raw", "--out", s(&dir.join(name)), s(&img)]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["000464_segm.npy", "000464_depth.npy", "000464_segm.png", "000464_depth16.png"] {
        assert_eq!(std::fs::read(dir.join("f32").join(f)).unwrap(), std::fs::read(dir.join("f64").join(f)).unwrap(), "{f}");
    }
    // Three tasks: `<stem>_normal.png` is the raw normals made unit length, (n + 1) × 127.5.
    let three = dir.join("three.bpk");
    hydra_model::weights::save(&hydra_model::HydraNetConfig::new(40).with_tasks(vec![hydra_model::Task::Segmentation, hydra_model::Task::Depth, hydra_model::Task::Normals]).with_init(hydra_model::InitScheme::Kaiming).init(&device), &three).unwrap();
    let o = hydra(&["predict", "--weights", s(&three), "--raw", "--out", s(&dir.join("three")), s(&img)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let raw = npy::read(&dir.join("three/000464_normal.npy")).unwrap();
    assert_eq!(raw.shape, vec![3, 120, 160]);
    let n = raw.to_f32();
    let png = image_io::read_rgb(&dir.join("three/000464_normal.png")).unwrap();
    assert_eq!((png.width, png.height), (160, 120));
    for i in 0..120 * 160 {
        let v = [n[i], n[19200 + i], n[38400 + i]];
        let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        assert!(len > 1e-3, "pixel {i}: normals of length {len} say nothing");
        for c in 0..3 {
            let want = ((v[c] / len + 1.0) * 127.5).round();
            assert!((png.data[i * 3 + c] as f32 - want).abs() <= 1.0, "pixel {i} channel {c}");
        }
    }
    // KITTI: 6 classes on a 370×1226 frame: outputs at stride 4 (93×307), images at the input
    // size, in the KITTI palette.
    let kitti = dir.join("kitti.bpk");
    hydra_model::weights::save(&hydra_model::HydraNetConfig::new(6).init(&device), &kitti).unwrap();
    let frame = fixtures().join("samples/kitti/000099.png");
    let o = hydra(&["predict", "--weights", s(&kitti), "--colormap", "kitti", "--raw", "--out", s(&dir.join("kitti")), s(&frame)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(npy::read(&dir.join("kitti/000099_segm.npy")).unwrap().shape, vec![6, 93, 307]);
    let segm = image_io::read_rgb(&dir.join("kitti/000099_segm.png")).unwrap();
    assert_eq!((segm.width, segm.height), (1226, 370));
    let palette = hydra_data::palette::Palette::kitti6();
    assert!(colours(&segm).iter().all(|c| palette.colors.contains(c)));
}
