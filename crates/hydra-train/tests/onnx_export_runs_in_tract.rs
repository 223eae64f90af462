//! `hydra export --out X.onnx` writes a graph that an independent runtime (tract, pure Rust)
//! runs to hydra's own outputs, on the real fixture frame (480×640), a KITTI frame (370×1226)
//! and an odd crop (251×333); dynamic and static files, BatchNorm folded and kept; compared
//! with the same network in hydra (folded for a folded file).
//!
//! Two networks, two bounds from one principle (an independent runtime sums in its own
//! order, so it may differ by the network's own float32 rounding, never more):
//! - a well-conditioned one (Kaiming initialisation, seeded): 1e-4 × max |reference| (tract
//!   measured 1.2e-6 to 1.7e-6);
//! - the PyTorch-made fixture checkpoint (NYUv2, 40 classes, N(0, 0.01²) weights): it amplifies
//!   rounding: moving its input by one ulp moves its outputs by 4.1e-4 (segm) and 6.1e-4
//!   (depth) × max, PyTorch's own float32 is 3.4e-4 / 5.5e-4 from float64
//!   (scripts/parity_budget.py). The bound is twice that one-ulp spread, measured in the same
//!   run for each frame and network (`selftest::nudge_spread`, as for the PyTorch
//!   comparisons).
//!
//! `--postprocess` labels equal `hydra predict`'s on ≥ 99.99 % of pixels. The structural test
//! decodes the file with tract's own protobuf messages.

mod common;

use burn::tensor::Device;
use common::{fixtures, hydra_env, max_errors, scratch, text};
use hydra_data::image_io::{read_rgb, RgbImage};
use hydra_data::normalize::normalize_chw;
use hydra_model::HydraNet;
use hydra_train::predict::{predict, ImagePrediction};
use prost::Message;
use tract_onnx::prelude::*;

/// The bar on a well-conditioned network, × max |reference|.
const BOUND: f32 = 1e-4;

/// Bounds for an ill-conditioned network on `img`, × max |reference|: twice the spread of its
/// outputs when the input moves by one ulp, in hydra.
fn spread_bounds(model: &HydraNet, img: &RgbImage) -> [f32; 2] {
    let s = hydra_train::selftest::nudge_spread(model, &Device::flex(), img);
    assert!(s.iter().all(|&v| v > 0.0 && v < 2e-3), "{s:?}");
    s.map(|v| 2.0 * v as f32)
}

fn export(dir: &std::path::Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    export_weights(dir, &fixtures().join("pytorch/hydranet40_s0.ckpt"), name, extra)
}

fn export_weights(dir: &std::path::Path, weights: &std::path::Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut args = vec!["export", "--weights", weights.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = hydra_env(&args, &[]);
    assert!(o.status.success(), "{name}: {}", text(&o).1);
    assert!(text(&o).0.contains("ONNX opset"), "{}", text(&o).0);
    out
}

/// The top-left `h × w` of `img`.
fn crop(img: &RgbImage, h: usize, w: usize) -> RgbImage {
    let mut data = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        data.extend_from_slice(&img.data[y * img.width * 3..(y * img.width + w) * 3]);
    }
    RgbImage { width: w, height: h, data }
}

/// Run `path` in tract on `img`: the outputs in graph order, as f32 (labels converted).
fn run_tract(path: &std::path::Path, img: &RgbImage) -> Vec<(Vec<usize>, Vec<f32>)> {
    let (h, w) = (img.height, img.width);
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), tvec![1, 3, h, w]))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input: Tensor = tract_ndarray::Array4::from_shape_vec((1, 3, h, w), normalize_chw(&img.data, w, h)).unwrap().into();
    let outputs = model.run(tvec!(input.into())).unwrap();
    outputs
        .iter()
        .map(|t| {
            let shape = t.shape().to_vec();
            let values = if t.datum_type() == i64::datum_type() {
                t.to_plain_array_view::<i64>().unwrap().iter().map(|&v| v as f32).collect()
            } else {
                t.to_plain_array_view::<f32>().unwrap().iter().copied().collect()
            };
            (shape, values)
        })
        .collect()
}

fn check(what: &str, got: &(Vec<usize>, Vec<f32>), shape: &[usize], want: &[f32], bound: f32) {
    assert_eq!(got.0, shape, "{what}: shape");
    let (err, scale) = max_errors(&got.1, want);
    eprintln!("{what}: max |tract − hydra| {err:e}, max |hydra| {scale:.4}, ratio {:e} (bound {bound:e})", err / scale);
    assert!(scale > 0.0 && err <= bound * scale, "{what}: {err} > {bound} × {scale}");
}

/// tract's raw outputs `segm`, `depth` against hydra's prediction on the same image.
fn check_raw(what: &str, got: &[(Vec<usize>, Vec<f32>)], want: &ImagePrediction, [segm, depth]: [f32; 2]) {
    let [oh, ow] = want.output_size;
    check(&format!("{what} segm"), &got[0], &[1, 40, oh, ow], want.segm_logits.as_ref().unwrap(), segm);
    check(&format!("{what} depth"), &got[1], &[1, 1, oh, ow], want.depth_raw.as_ref().unwrap(), depth);
}

fn frames() -> Vec<(&'static str, RgbImage)> {
    let nyud = read_rgb(&fixtures().join("samples/nyud/000464.png")).unwrap();
    let kitti = read_rgb(&fixtures().join("samples/kitti/000099.png")).unwrap();
    let odd = crop(&nyud, 251, 333);
    vec![("nyud 480×640", nyud), ("kitti", kitti), ("crop 251×333", odd)]
}

fn network() -> (HydraNet, Device) {
    let device = Device::flex();
    let (model, _) = hydra_model::weights::load_model(&fixtures().join("pytorch/hydranet40_s0.ckpt"), None, &device).unwrap();
    (model, device)
}

/// Dynamic files, folded and kept, of `model` (saved to `weights`) at every size.
/// `bounds`: fixed, or `None` for twice each frame's one-ulp spread.
fn dynamic_files_agree(dir: &std::path::Path, weights: &std::path::Path, model: &HydraNet, bounds: Option<[f32; 2]>) {
    let device = Device::flex();
    let folded = export_weights(dir, weights, "folded.onnx", &[]);
    let kept = export_weights(dir, weights, "kept.onnx", &["--no-fold-bn"]);
    let model_folded = model.fold_batch_norm();
    for (name, img) in frames() {
        let b = bounds.unwrap_or_else(|| spread_bounds(&model_folded, &img));
        check_raw(&format!("folded, {name}"), &run_tract(&folded, &img), &predict(&model_folded, &device, &img), b);
        let b = bounds.unwrap_or_else(|| spread_bounds(model, &img));
        check_raw(&format!("kept, {name}"), &run_tract(&kept, &img), &predict(model, &device, &img), b);
    }
}

#[test]
fn dynamic_files_give_hydras_outputs_at_every_size() {
    assert_eq!(read_rgb(&fixtures().join("samples/kitti/000099.png")).unwrap().height, 370, "the KITTI frame is 370 rows high");
    let dir = scratch("onnx-dynamic");
    let net = hydra_model::HydraNetConfig::new(40).with_init(hydra_model::InitScheme::Kaiming).with_seed(3).init(&Device::flex());
    let bpk = dir.path().join("kaiming.bpk");
    hydra_model::weights::save(&net, &bpk).unwrap();
    dynamic_files_agree(dir.path(), &bpk, &net, Some([BOUND, BOUND]));
    let (model, _) = network();
    dynamic_files_agree(dir.path(), &fixtures().join("pytorch/hydranet40_s0.ckpt"), &model, None);
}

#[test]
fn static_files_and_postprocessing_give_hydras_outputs_and_labels() {
    let dir = scratch("onnx-static");
    let (model, device) = network();
    let folded = model.fold_batch_norm();
    let frames = frames();
    let (_, odd) = &frames[2];
    let fixed = export(dir.path(), "fixed.onnx", &["--size", "251x333"]);
    let bounds = spread_bounds(&folded, odd);
    check_raw("static folded, 251×333", &run_tract(&fixed, odd), &predict(&folded, &device, odd), bounds);

    let (_, nyud) = &frames[0];
    let bounds = spread_bounds(&model, nyud);
    let post = export(dir.path(), "post.onnx", &["--size", "480x640", "--no-fold-bn", "--postprocess"]);
    let got = run_tract(&post, nyud);
    let want = predict(&model, &device, nyud);
    check_raw("static kept, postprocess", &got, &want, bounds);
    assert_eq!(got.len(), 4, "segm, depth, labels, depth_map");
    assert_eq!(got[2].0, [1, 480, 640], "labels shape");
    let labels = want.labels.as_ref().unwrap();
    let same = got[2].1.iter().zip(&labels.data).filter(|&(a, &b)| *a == b as f32).count();
    let agree = same as f64 / labels.data.len() as f64;
    eprintln!("labels: {same} of {} pixels equal hydra predict's ({:.4} %)", labels.data.len(), agree * 100.0);
    assert!(agree >= 0.9999, "{agree}");
    check("depth_map", &got[3], &[1, 1, 480, 640], &want.depth.as_ref().unwrap().data, bounds[1]);

    let dyn_post = export(dir.path(), "dyn_post.onnx", &["--postprocess"]);
    let got = run_tract(&dyn_post, odd);
    let want = predict(&folded, &device, odd);
    let bounds = spread_bounds(&folded, odd);
    assert_eq!(got[2].0, [1, 251, 333]);
    check("dynamic depth_map", &got[3], &[1, 1, 251, 333], &want.depth.as_ref().unwrap().data, bounds[1]);
    let labels = want.labels.as_ref().unwrap();
    let same = got[2].1.iter().zip(&labels.data).filter(|&(a, &b)| *a == b as f32).count();
    assert!(same as f64 >= 0.9999 * labels.data.len() as f64, "{same} of {}", labels.data.len());
}

#[test]
fn the_file_holds_standard_operators_names_shapes_and_metadata() {
    let dir = scratch("onnx-structure");
    let dynamic = export(dir.path(), "d.onnx", &["--postprocess"]);
    let fixed = export(dir.path(), "s.onnx", &["--size", "370x1226", "--batch", "2", "--no-fold-bn", "--opset", "13"]);
    let decode = |p: &std::path::Path| tract_onnx::pb::ModelProto::decode(std::fs::read(p).unwrap().as_slice()).unwrap();
    let dims = |v: &tract_onnx::pb::ValueInfoProto| -> Vec<String> {
        let t = v.r#type.as_ref().unwrap().value.as_ref().unwrap();
        let tract_onnx::pb::type_proto::Value::TensorType(t) = t;
        t.shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match d.value.as_ref().unwrap() {
                tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v) => v.to_string(),
                tract_onnx::pb::tensor_shape_proto::dimension::Value::DimParam(s) => s.clone(),
            })
            .collect()
    };
    let io = |m: &tract_onnx::pb::ModelProto| -> Vec<(String, Vec<String>)> {
        let g = m.graph.as_ref().unwrap();
        g.input.iter().chain(&g.output).map(|v| (v.name.clone(), dims(v))).collect()
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let d = decode(&dynamic);
    assert_eq!((d.ir_version, d.opset_import.len(), d.opset_import[0].domain.as_str(), d.opset_import[0].version), (8, 1, "", 17));
    assert_eq!(
        io(&d),
        vec![
            ("image".into(), s(&["batch", "3", "height", "width"])),
            ("segm".into(), s(&["batch", "40", "out_height", "out_width"])),
            ("depth".into(), s(&["batch", "1", "out_height", "out_width"])),
            ("labels".into(), s(&["batch", "height", "width"])),
            ("depth_map".into(), s(&["batch", "1", "height", "width"])),
        ]
    );
    let f = decode(&fixed);
    assert_eq!((f.ir_version, f.opset_import[0].version), (7, 13));
    assert_eq!(io(&f), vec![("image".into(), s(&["2", "3", "370", "1226"])), ("segm".into(), s(&["2", "40", "93", "307"])), ("depth".into(), s(&["2", "1", "93", "307"]))]);

    for (m, folded) in [(&d, true), (&f, false)] {
        let g = m.graph.as_ref().unwrap();
        let ops: std::collections::BTreeSet<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        for op in &ops {
            assert!(hydra_model::onnx::OPERATORS.contains(op), "{op} is not a listed operator");
        }
        assert!(g.node.iter().all(|n| n.domain.is_empty()), "no custom domain");
        assert_eq!(ops.contains("BatchNormalization"), !folded);
        // 52 convolutions with BatchNorm in the encoder; 6 lateral, 4 × 4 CRP, 3 adaptation
        // convolutions; 2 per head.
        assert_eq!(g.node.iter().filter(|n| n.op_type == "Conv").count(), 52 + 6 + 16 + 3 + 4);
        assert_eq!(g.node.iter().filter(|n| n.op_type == "BatchNormalization").count(), if folded { 0 } else { 52 });
        assert_eq!(g.node.iter().filter(|n| n.op_type == "MaxPool").count(), 16);
        // Dynamic sizes come from Shape; a static file has none.
        assert_eq!(ops.contains("Shape"), folded);
        let resize: Vec<_> = g.node.iter().filter(|n| n.op_type == "Resize").collect();
        assert_eq!(resize.len(), if folded { 5 } else { 3 }, "three in the decoder, two with post-processing");
        for r in resize {
            let attr = |k: &str| String::from_utf8(r.attribute.iter().find(|a| a.name == k).unwrap().s.clone()).unwrap();
            assert_eq!((attr("mode").as_str(), attr("coordinate_transformation_mode").as_str()), ("linear", "half_pixel"));
            assert_eq!(r.input.len(), 4, "sizes given, not scales");
            assert_eq!((r.input[1].as_str(), r.input[2].as_str()), ("", ""));
        }
        // Every node input is a graph input, an initializer, an earlier node's output or omitted.
        let mut known: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).chain(g.input.iter().map(|v| v.name.as_str())).collect();
        known.insert("");
        for n in &g.node {
            for i in &n.input {
                assert!(known.contains(i.as_str()), "{}: input {i} is not defined before it", n.name);
            }
            known.extend(n.output.iter().map(String::as_str));
        }
        for o in &g.output {
            assert!(known.contains(o.name.as_str()), "output {} is produced", o.name);
        }
        let meta: std::collections::HashMap<&str, &str> = m.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert_eq!(meta["tasks"], "segm,depth");
        assert_eq!(meta["num_classes"], "40");
        assert_eq!(meta["depth.unit"], "metres");
        assert_eq!(meta["input.mean"], "[0.485, 0.456, 0.406]");
        assert_eq!(meta["input.std"], "[0.229, 0.224, 0.225]");
        assert_eq!(meta["hydra.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(meta["batch_norm"], if folded { "folded" } else { "kept" });
        let names: Vec<String> = serde_json::from_str(meta["class_names"]).unwrap();
        assert_eq!((names.len(), names[0].as_str(), names[39].as_str()), (40, "wall", "otherprop"));
    }
    // The unfolded file's weights are the checkpoint's tensors under their PyTorch keys.
    let g = f.graph.as_ref().unwrap();
    let w = g.initializer.iter().find(|t| t.name == "layer1.0.weight").unwrap();
    assert_eq!(w.dims, [32, 3, 3, 3]);
    let file = hydra_model::weights::read(&fixtures().join("pytorch/hydranet40_s0.ckpt")).unwrap();
    let want: Vec<u8> = file.state.get("layer1.0.weight").unwrap().to_f32().iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(w.raw_data, want);
}

#[test]
fn bad_export_options_are_refused_in_one_line() {
    let dir = scratch("onnx-refused");
    let weights = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let w = weights.to_str().unwrap();
    let out = dir.path().join("x.onnx");
    let o = out.to_str().unwrap();
    let st = dir.path().join("x.safetensors");
    for (args, needle) in [
        (vec!["--out", o, "--size", "480"], "--size 480: expected HEIGHTxWIDTH"),
        (vec!["--out", o, "--size", "4x640"], "each from 32 to 16384"),
        (vec!["--out", o, "--opset", "9"], "--opset 9: hydra writes opsets 13 to 21"),
        (vec!["--out", o, "--batch", "2"], "give --size too"),
        (vec!["--out", st.to_str().unwrap(), "--postprocess"], "--postprocess applies to an .onnx export only"),
    ] {
        let mut a = vec!["export", "--weights", w];
        a.extend(args);
        common::assert_refused(&hydra_env(&a, &[]), &[needle]);
        assert!(!out.exists() && !st.exists(), "nothing written");
    }
}


#[test]
fn three_task_files_output_normals() {
    let dir = scratch("onnx-three");
    let device = Device::flex();
    let tasks = vec![hydra_model::Task::Segmentation, hydra_model::Task::Depth, hydra_model::Task::Normals];
    let net = hydra_model::HydraNetConfig::new(40).with_tasks(tasks).with_init(hydra_model::InitScheme::Kaiming).with_seed(5).init(&device);
    let bpk = dir.path().join("three.bpk");
    hydra_model::weights::save(&net, &bpk).unwrap();
    let file = export_weights(dir.path(), &bpk, "three.onnx", &["--postprocess"]);
    let m = tract_onnx::pb::ModelProto::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let names: Vec<&str> = m.graph.as_ref().unwrap().output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["segm", "depth", "normal", "labels", "depth_map"]);
    let (_, img) = frames().remove(2);
    let got = run_tract(&file, &img);
    let want = predict(&net.fold_batch_norm(), &device, &img);
    check_raw("three tasks", &got, &want, [BOUND, BOUND]);
    let [oh, ow] = want.output_size;
    check("three tasks normal", &got[2], &[1, 3, oh, ow], want.normal_raw.as_ref().unwrap(), BOUND);
}
