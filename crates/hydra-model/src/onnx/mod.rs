//! ONNX export of HydraNet, written from Rust (prost message structs, no protoc): a graph of
//! standard operators only (Conv, BatchNormalization, Clip, MaxPool, Resize, Add, and Shape /
//! Slice / Concat for dynamic sizes; ArgMax and Abs with post-processing) within what ONNX
//! Runtime and TensorRT 10 run.
//!
//! Input `image` float32 `[N, 3, H, W]`, normalised as for training (RGB / 255, then per
//! channel `(x − mean) / std` with ImageNet's mean and std); outputs per task at a quarter of
//! the input (`segm` `[N, C, h, w]` logits, `depth` `[N, 1, h, w]`, `normal` `[N, 3, h, w]`),
//! exactly what `hydra predict --raw` writes; with post-processing also `labels` `[N, H, W]`
//! int64 (argmax of the bilinearly upsampled logits) and `depth_map` `[N, 1, H, W]` (|depth|
//! bilinearly upsampled, metres), as `hydra predict` computes them.

mod graph;
mod network;
pub mod proto;

use prost::Message;

use crate::{HydraNet, Task};
use network::{Lowering, Value};
use proto::{data_type, Dimension, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto};

/// The operators an exported graph may contain.
pub const OPERATORS: [&str; 11] = ["Conv", "BatchNormalization", "Clip", "MaxPool", "Resize", "Add", "Shape", "Slice", "Concat", "ArgMax", "Abs"];

/// The opsets an export can target (Resize with optional `roi`/`scales` needs 13).
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// What the exported graph looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxOptions {
    /// A fixed input `[batch, 3, height, width]`; `None`: batch, height and width symbolic.
    pub fixed: Option<[usize; 3]>,
    /// BatchNorm folded into the preceding convolution (one Conv per layer) or kept as
    /// BatchNormalization nodes.
    pub fold_bn: bool,
    /// Append the upsampling to the input size, the labels and the depth map.
    pub postprocess: bool,
    /// The default domain's opset.
    pub opset: i64,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        Self { fixed: None, fold_bn: true, postprocess: false, opset: 17 }
    }
}

/// The ONNX IR version that goes with `opset` (ONNX's versioning table: 1.8–1.9 → 7, 1.10–1.13
/// → 8, 1.14–1.15 → 9, 1.16 → 10).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// A float32 or int64 tensor type of these dimensions (a size or a symbol each).
fn tensor_type(elem: i32, dims: &[Dim]) -> TypeProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Size(v) => Dimension { dim_value: Some(*v as i64), dim_param: None },
            Dim::Symbol(s) => Dimension { dim_value: None, dim_param: Some(s.clone()) },
        })
        .collect();
    TypeProto { tensor_type: Some(TypeProtoTensor { elem_type: Some(elem), shape: Some(TensorShapeProto { dim }) }) }
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Size(usize),
    Symbol(String),
}

fn value_info(name: &str, elem: i32, dims: &[Dim], doc: &str) -> ValueInfoProto {
    ValueInfoProto { name: Some(name.into()), r#type: Some(tensor_type(elem, dims)), doc_string: Some(doc.into()) }
}

/// The output size of the network for an input of `size` (each of the two stride-2 layers
/// before `layer3` rounds up: ⌈⌈H/2⌉/2⌉).
pub fn output_size(size: usize) -> usize {
    size.div_ceil(2).div_ceil(2)
}

/// `net` as an ONNX model (the file's bytes), with `metadata` as its metadata properties
/// (after hydra's own: tasks, classes, input normalisation, depth unit, version, options).
/// `net` is used as it is (inference mode); with `opts.fold_bn` a folded copy is lowered.
pub fn export(net: &HydraNet, opts: &OnnxOptions, metadata: &[(String, String)]) -> Vec<u8> {
    assert!(OPSETS.contains(&opts.opset), "opset {} outside {OPSETS:?}", opts.opset);
    let folded;
    let net = if opts.fold_bn {
        folded = net.fold_batch_norm();
        &folded
    } else {
        net
    };
    let mut low = Lowering::new();
    let image = Value { name: "image".into(), shape: opts.fixed.map(|[n, h, w]| [n, 3, h, w]) };
    // Each head's output value takes its task's name (a graph output).
    let outputs: Vec<(Task, Value)> = low
        .network(net, &image)
        .into_iter()
        .map(|(task, v)| {
            low.g.rename(&v.name, task.key());
            (task, Value { name: task.key().into(), shape: v.shape })
        })
        .collect();

    let sym = |s: &str| Dim::Symbol(s.into());
    let (n, h, w, oh, ow) = match opts.fixed {
        Some([n, h, w]) => (Dim::Size(n), Dim::Size(h), Dim::Size(w), Dim::Size(output_size(h)), Dim::Size(output_size(w))),
        None => (sym("batch"), sym("height"), sym("width"), sym("out_height"), sym("out_width")),
    };
    let f32t = data_type::FLOAT;
    let mut graph_outputs = Vec::new();
    let classes = net.head(Task::Segmentation).map(|h| h.outputs()).unwrap_or(0);
    for (task, v) in &outputs {
        let channels = net.head(*task).expect("head").outputs();
        let name = v.name.as_str();
        let doc = match task {
            Task::Segmentation => "segmentation logits at a quarter of the input size",
            Task::Depth => "depth (raw, metres) at a quarter of the input size",
            Task::Normals => "surface normals (raw, not normalised) at a quarter of the input size",
        };
        graph_outputs.push(value_info(name, f32t, &[n.clone(), Dim::Size(channels), oh.clone(), ow.clone()], doc));
    }
    if opts.postprocess {
        for (task, v) in &outputs {
            match task {
                Task::Segmentation => {
                    let up = low.upsample_to_input(v, classes, &image, "segm_up");
                    low.g.node_into("ArgMax", &[&up], "labels", &[("axis", graph::Attr::Int(1)), ("keepdims", graph::Attr::Int(0))]);
                    graph_outputs.push(value_info("labels", data_type::INT64, &[n.clone(), h.clone(), w.clone()], "class per pixel at the input size: argmax of the bilinearly upsampled logits"));
                }
                Task::Depth => {
                    let up = low.upsample_to_input(v, 1, &image, "depth_up");
                    low.g.node_into("Abs", &[&up], "depth_map", &[]);
                    graph_outputs.push(value_info("depth_map", f32t, &[n.clone(), Dim::Size(1), h.clone(), w.clone()], "|depth| bilinearly upsampled to the input size, metres"));
                }
                Task::Normals => {}
            }
        }
    }
    let g = low.g;

    let input = value_info("image", f32t, &[n, Dim::Size(3), h, w], "RGB / 255, then (x - mean) / std per channel, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]");
    let graph = GraphProto {
        node: g.nodes,
        name: Some("hydranet".into()),
        initializer: g.initializers,
        input: vec![input],
        output: graph_outputs,
        ..Default::default()
    };
    let mut props = vec![
        ("hydra.version", env!("CARGO_PKG_VERSION").to_string()),
        ("hydra.config", serde_json::to_string(&net.config()).expect("config is JSON")),
        ("tasks", net.tasks().iter().map(|t| t.key()).collect::<Vec<_>>().join(",")),
        ("num_classes", classes.to_string()),
        ("input", "image float32 [N, 3, H, W], RGB".to_string()),
        ("input.scale", "1/255".to_string()),
        ("input.mean", "[0.485, 0.456, 0.406]".to_string()),
        ("input.std", "[0.229, 0.224, 0.225]".to_string()),
        ("depth.unit", "metres".to_string()),
        ("output.stride", "4 (each stride-2 layer rounds up)".to_string()),
        ("batch_norm", if opts.fold_bn { "folded" } else { "kept" }.to_string()),
        ("postprocess", opts.postprocess.to_string()),
    ];
    props.retain(|(k, _)| !metadata.iter().any(|(m, _)| m == k));
    let metadata_props = props
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(metadata.iter().cloned())
        .map(|(k, v)| StringStringEntryProto { key: Some(k), value: Some(v) })
        .collect();
    let model = ModelProto {
        ir_version: Some(ir_version(opts.opset)),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opts.opset) }],
        producer_name: Some("hydra".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some("HydraNet (MobileNetV2 + Light-Weight RefineNet, multi-task), exported by hydra".into()),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    };
    model.encode_to_vec()
}
