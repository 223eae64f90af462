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
