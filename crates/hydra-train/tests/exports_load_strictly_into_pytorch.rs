//! `hydra export` to safetensors writes exactly the state dict PyTorch's reference HydraNet has
//! (fixtures/pytorch/state_keys.json, made by scripts/make_state_keys_fixture.py from
//! scripts/hydranet_torch.py): the same keys, shapes and dtypes, BatchNorm buffers included,
//! which is what `load_state_dict(strict=True)` requires (scripts/check_export.py does that
//! load in PyTorch and compares outputs). For the official layouts: NYUDv2 40 classes with
//! two tasks (the PyTorch-made fixture checkpoint) and with normals, KITTI 6 classes. The file
//! is decoded here from the safetensors format itself, not by hydra's reader.

mod common;

use std::collections::BTreeMap;

use common::{fixtures, hydra_env, scratch, text};
use hydra_model::{HydraNetConfig, Task};

/// `name → (shape, dtype)` of a safetensors file: an 8-byte little-endian header length, then
/// the JSON header.
fn safetensors_index(bytes: &[u8]) -> BTreeMap<String, (Vec<usize>, String)> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out = BTreeMap::new();
    for (k, v) in header.as_object().unwrap() {
        if k == "__metadata__" {
            continue;
        }
        let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let dtype = match v["dtype"].as_str().unwrap() {
            "F32" => "float32",
            "I64" => "int64",
            other => panic!("{k}: dtype {other}"),
        };
        let [a, b] = [0, 1].map(|i| v["data_offsets"][i].as_u64().unwrap() as usize);
        let numel: usize = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).product();
        assert_eq!(b - a, numel * if dtype == "int64" { 8 } else { 4 }, "{k}: data size");
        out.insert(k.clone(), (shape, dtype.to_string()));
    }
    out
}

#[test]
fn exports_have_the_reference_state_dict_exactly() {
    let dir = scratch("strict-export");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("pytorch/state_keys.json")).unwrap()).unwrap();
    let device = burn::tensor::Device::flex();
    let three = dir.join("three.bpk");
    hydra_model::weights::save(&HydraNetConfig::new(40).with_tasks(vec![Task::Segmentation, Task::Depth, Task::Normals]).init(&device), &three).unwrap();
    let kitti = dir.join("kitti.bpk");
    hydra_model::weights::save(&HydraNetConfig::new(6).init(&device), &kitti).unwrap();
    for (layout, weights) in [("nyud40_segm_depth", fixtures().join("pytorch/hydranet40_s0.ckpt")), ("nyud40_segm_depth_normal", three), ("kitti6_segm_depth", kitti)] {
        let out = dir.join(format!("{layout}.safetensors"));
        let o = hydra_env(&["export", "--weights", weights.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{layout}: {}", text(&o).1);
        let got = safetensors_index(&std::fs::read(&out).unwrap());
        let want: BTreeMap<String, (Vec<usize>, String)> = reference[layout]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), (v[0].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(), v[1].as_str().unwrap().to_string())))
            .collect();
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let unexpected: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(missing.is_empty() && unexpected.is_empty(), "{layout}: missing {missing:?}, unexpected {unexpected:?}");
        for (k, w) in &want {
            assert_eq!(&got[k], w, "{layout}: {k}");
        }
    }
}

/// A safetensors file holding exactly the tensors of PyTorch's `layout` (keys, shapes and
/// dtypes from state_keys.json), written here byte by byte (not by hydra's writer): seeded
/// values in ±0.1 for weights, BatchNorm at γ = 1, β = 0, μ = 0, σ² = 1.
fn pytorch_layout_file(layout: &str, path: &std::path::Path) {
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("pytorch/state_keys.json")).unwrap()).unwrap();
    let mut rng = hydra_core::rng::SplitMix64::new(0x2545_F491_4F6C_DD1D);
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (k, v) in reference[layout].as_object().unwrap() {
        let shape: Vec<usize> = v[0].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let n: usize = shape.iter().product();
        let start = data.len();
        let dtype = if v[1] == "int64" {
            data.extend(std::iter::repeat_n(0u8, 8 * n));
            "I64"
        } else {
            for _ in 0..n {
                let value = if k.ends_with("running_var") || (k.ends_with(".1.weight") && !k.contains("outvar")) {
                    1.0
                } else if k.ends_with("running_mean") || k.ends_with(".1.bias") {
                    0.0
                } else {
                    rng.range(-0.1, 0.1) as f32
                };
                data.extend(value.to_le_bytes());
            }
            "F32"
        };
        header.insert(k.clone(), serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn pytorchs_kitti_and_three_task_layouts_load_and_predict() {
    let dir = scratch("pytorch-layouts");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    // KITTI: 6 classes read from the file; a 370×1226 frame gives 93×307 outputs.
    let kitti = dir.join("kitti6.safetensors");
    pytorch_layout_file("kitti6_segm_depth", &kitti);
    let o = hydra_env(&["info", "--weights", &s(&kitti)], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let field = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert_eq!((field("classes:"), field("tasks:"), field("tensors:")), ("6".into(), "segmentation, depth".into(), "343".into()), "{out}");
    let frame = fixtures().join("samples/kitti/000099.png");
    let o = hydra_env(&["predict", "--weights", &s(&kitti), "--colormap", "kitti", "--raw", "--out", &s(&dir.join("kitti")), &s(&frame)], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(hydra_data::npy::read(&dir.join("kitti/000099_segm.npy")).unwrap().shape, vec![6, 93, 307]);
    assert!(dir.join("kitti/000099_depth16.png").exists());
    // Three tasks: the normals head is found by its keys and `<stem>_normal.png` written.
    let three = dir.join("three.safetensors");
    pytorch_layout_file("nyud40_segm_depth_normal", &three);
    let img = fixtures().join("samples/nyud/000464.png");
    let o = hydra_env(&["predict", "--weights", &s(&three), "--raw", "--out", &s(&dir.join("three")), &s(&img)], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(hydra_data::npy::read(&dir.join("three/000464_normal.npy")).unwrap().shape, vec![3, 120, 160]);
    let png = hydra_data::image_io::read_rgb(&dir.join("three/000464_normal.png")).unwrap();
    assert_eq!((png.width, png.height), (160, 120), "the normals at the network's output size, as predict writes them");
}
