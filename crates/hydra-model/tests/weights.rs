//! Weight import and export: formats recognised by content, strict loads, exact round trips.

use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_model::state::TensorValues;
use hydra_model::weights::{self, KeyLayout, LoadScope, WeightFormat};
use hydra_model::{HydraNetConfig, WeightsError};

mod common;
use common::{fixtures, scratch};

fn outputs(net: &hydra_model::HydraNet, x: Tensor<4>) -> Vec<f32> {
    let o = net.forward(x);
    let mut v = o.segm.unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    v.extend(o.depth.unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
    v
}

#[test]
fn torchvision_mobilenet_imports_exactly_into_the_reference_encoder() {
    let tv = weights::read(&fixtures().join("mobilenet_v2_tv_s0.pth")).unwrap();
    assert_eq!(tv.format, WeightFormat::TorchZip);
    assert_eq!(tv.layout, KeyLayout::Torchvision);
    let reference = weights::read(&fixtures().join("mobilenet_v2_tv_s0_as_reference.safetensors")).unwrap();
    assert_eq!(reference.format, WeightFormat::Safetensors);

    let device = Device::flex();
    let (net, _) = tv.apply(HydraNetConfig::new(40).init(&device), LoadScope::EncoderOnly).unwrap();
    let ours = net.state_dict();
    assert_eq!(reference.state.len(), 260);
    for (key, expected) in reference.state.iter() {
        let got = ours.get(key).unwrap_or_else(|| panic!("encoder lacks {key}"));
        assert_eq!(got.shape, expected.shape, "{key}");
        assert_eq!(got.to_f32(), expected.to_f32(), "{key} differs");
    }
}

#[test]
fn official_layout_in_zip_f16_with_module_prefix_loads() {
    // The same weights as the legacy fixture, saved by PyTorch as a zip archive, top-level
    // dict, `module.` prefix, float16 (scripts/make_import_fixtures.py).
    let zip = weights::read(&fixtures().join("hydranet40_s0_zip_f16_module.pth")).unwrap();
    assert_eq!(zip.format, WeightFormat::TorchZip);
    assert_eq!(zip.stripped_prefix.as_deref(), Some("module."));
    assert_eq!(zip.container, "");
    let legacy = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    assert_eq!(zip.state.len(), legacy.state.len());
    for (key, t) in legacy.state.iter() {
        let z = zip.state.get(key).unwrap();
        assert_eq!(z.shape, t.shape, "{key}");
        match (&t.values, &z.values) {
            (TensorValues::F32(a), TensorValues::F32(b)) => {
                for (x, y) in a.iter().zip(b) {
                    // PyTorch rounded to f16; our f16 decoding must give that value exactly.
                    assert_eq!(half::f16::from_f32(*x).to_f32(), *y, "{key}");
                }
            }
            (TensorValues::I64(a), TensorValues::I64(b)) => assert_eq!(a, b, "{key}"),
            _ => panic!("{key}: dtype kind differs"),
        }
    }
}

#[test]
fn export_and_reimport_give_identical_outputs() {
    let device = Device::flex();
    let (net, _) = weights::load_model(&fixtures().join("hydranet40_s0.ckpt"), None, &device).unwrap();
    let x = hydra_testkit::random::<4>([1, 3, 96, 128], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
    let before = outputs(&net, x.clone());
    let dir = scratch("export");
    for name in ["w.safetensors", "w.bpk"] {
        let path = dir.join(name);
        weights::save(&net, &path).unwrap();
        let (again, file) = weights::load_model(&path, None, &device).unwrap();
        assert!(file.state == net.state_dict(), "{name}: tensors differ");
        assert_eq!(outputs(&again, x.clone()), before, "{name}: outputs differ");
    }
    // No temporary files are left beside the exports.
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["w.bpk", "w.safetensors"]);
}

#[test]
fn strict_load_names_the_key_and_both_shapes() {
    let device = Device::flex();
    let file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    let err = file.apply(HydraNetConfig::new(6).init(&device), LoadScope::Full).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("hydranet40_s0.ckpt"), "{msg}");
    assert!(msg.contains("`segm.weight`: the file has [40, 256, 3, 3], the model expects [6, 256, 3, 3]"), "{msg}");
    assert!(msg.contains("set num_classes = 40"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    match err {
        WeightsError::Mismatch { report, more, .. } => {
            assert_eq!(more, 1);
            assert!(report.contains("segm.bias"), "{report}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_and_unexpected_keys_are_errors() {
    let device = Device::flex();
    let mut file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    file.state = file.state.map_keys(|k| (k != "conv4.weight").then(|| k.replace("crp2.", "crp9.")));
    let err = file.apply(HydraNetConfig::new(40).init(&device), LoadScope::Full).unwrap_err();
    let WeightsError::Mismatch { report, .. } = err else { panic!() };
    assert!(report.contains("missing key `conv4.weight`"), "{report}");
    assert!(report.contains("missing key `crp2.0.1_outvar_dimred.weight`"), "{report}");
    assert!(report.contains("unexpected key `crp9.0.1_outvar_dimred.weight`"), "{report}");
}

#[test]
fn encoder_only_load_fine_tunes_to_another_class_count() {
    let device = Device::flex();
    let file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    let (net, report) = file.apply(HydraNetConfig::new(6).init(&device), LoadScope::EncoderOnly).unwrap();
    assert_eq!(report.applied, 52 * 5 - 0 /* conv + 4 BN tensors per ConvBn */);
    let sd = net.state_dict();
    assert_eq!(sd.get("layer5.2.output.1.0.weight").unwrap(), file.state.get("layer5.2.output.1.0.weight").unwrap());
    assert_ne!(sd.get("conv3.weight").unwrap(), file.state.get("conv3.weight").unwrap());
    assert_eq!(sd.get("segm.weight").unwrap().shape, vec![6, 256, 3, 3]);
}

#[test]
fn encoder_only_files_are_refused_for_a_full_load() {
    let device = Device::flex();
    let file = weights::read(&fixtures().join("mobilenet_v2_tv_s0.pth")).unwrap();
    let e = file.apply(HydraNetConfig::new(40).init(&device), LoadScope::Full).unwrap_err().to_string();
    assert!(e.contains("only an encoder"), "{e}");
}

#[test]
fn unknown_formats_are_named() {
    let dir = scratch("unknown");
    let p = dir.join("x.pth");
    std::fs::write(&p, b"hello world, not weights").unwrap();
    let e = weights::read(&p).unwrap_err();
    assert!(matches!(e, WeightsError::UnknownFormat { .. }), "{e:?}");
    assert!(e.to_string().contains("x.pth"));
    let e = weights::read(&dir.join("missing.pth")).unwrap_err();
    assert!(matches!(e, WeightsError::Io { .. }) && e.to_string().contains("missing.pth"), "{e}");
}

#[test]
fn folded_batch_norm_exports_to_the_reference_layout_exactly() {
    let device = Device::flex();
    let (net, _) = weights::load_model(&fixtures().join("hydranet40_s0.ckpt"), None, &device).unwrap();
    let x = hydra_testkit::random::<4>([1, 3, 64, 96], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
    let folded = net.fold_batch_norm();
    let want = outputs(&folded, x.clone());
    let unfolded = outputs(&net, x.clone());
    let rel = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max) / b.iter().map(|v| v.abs()).fold(0f32, f32::max);
    assert!(rel(&want, &unfolded) < 1e-3, "folding changes the function: {}", rel(&want, &unfolded));
    let dir = scratch("folded");
    let path = dir.join("folded.safetensors");
    weights::save(&folded, &path).unwrap();
    let (again, _) = weights::load_model(&path, None, &device).unwrap();
    assert!(rel(&outputs(&again, x), &want) < 1e-5);
}
