//! Building an ONNX graph: nodes in the order they are added (callers add them in topological
//! order), initializers, and names made unique by a counter.

use super::proto::{attribute_type, data_type, AttributeProto, NodeProto, TensorProto};

/// A node attribute's value.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

impl Attr {
    fn proto(&self, name: &str) -> AttributeProto {
        let mut a = AttributeProto { name: Some(name.into()), ..Default::default() };
        match self {
            Attr::Int(v) => (a.i, a.r#type) = (Some(*v), Some(attribute_type::INT)),
            Attr::Ints(v) => (a.ints, a.r#type) = (v.clone(), Some(attribute_type::INTS)),
            Attr::Float(v) => (a.f, a.r#type) = (Some(*v), Some(attribute_type::FLOAT)),
            Attr::Str(v) => (a.s, a.r#type) = (Some(v.as_bytes().to_vec()), Some(attribute_type::STRING)),
        }
        a
    }
}

/// The nodes and initializers of a graph under construction.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    /// Add `op_type(inputs) → one output`, named `name` (made unique); returns the output's
    /// name. An empty input name is an omitted optional input.
    pub fn node(&mut self, op_type: &str, name: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.fresh(name);
        self.node_into(op_type, inputs, &out, attrs);
        out
    }

    /// Add `op_type(inputs) → output` with a given output name (a graph output).
    pub fn node_into(&mut self, op_type: &str, inputs: &[&str], output: &str, attrs: &[(&str, Attr)]) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(format!("{op_type}_{}", self.nodes.len())),
            op_type: Some(op_type.into()),
            attribute: attrs.iter().map(|(n, a)| a.proto(n)).collect(),
            ..Default::default()
        });
    }

    /// Rename the value `from` to `to` wherever a node reads or writes it.
    pub fn rename(&mut self, from: &str, to: &str) {
        for node in &mut self.nodes {
            for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                if name == from {
                    *name = to.to_string();
                }
            }
        }
    }

    /// A float32 initializer `name` of `shape`; returns its name.
    pub fn f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, data_type::FLOAT, raw)
    }

    /// An int64 initializer `name` of `shape`; returns its name.
    pub fn i64(&mut self, name: &str, shape: &[usize], values: &[i64]) -> String {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, data_type::INT64, raw)
    }

    fn tensor(&mut self, name: &str, shape: &[usize], data_type: i32, raw: Vec<u8>) -> String {
        debug_assert!(self.initializers.iter().all(|t| t.name.as_deref() != Some(name)), "initializer {name} twice");
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type),
            name: Some(name.into()),
            raw_data: Some(raw),
        });
        name.to_string()
    }

    /// `name` with a number that makes it unique among the values made here.
    pub fn fresh(&mut self, name: &str) -> String {
        self.counter += 1;
        format!("{name}:{}", self.counter)
    }
}
