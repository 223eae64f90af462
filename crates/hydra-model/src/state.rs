//! State dicts in the reference key layout, and the traversal that moves tensors between a
//! state dict and the Burn modules.
//!
//! Every module of the network knows its own reference keys (`layer2.0.output.0.1.weight`,
//! `crp1.0.1_outvar_dimred.weight`, ...). Import and export go through these keys only, so
//! the official PyTorch checkpoints, safetensors files and our native files all share one
//! layout.

use std::collections::{BTreeSet, HashMap};

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

/// The values of a tensor read from, or written to, a weight file.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    /// Floating point values (f16, bf16 and f64 files are converted to f32 on read).
    F32(Vec<f32>),
    /// Integer values (e.g. BatchNorm's `num_batches_tracked`).
    I64(Vec<i64>),
}

/// A host-side tensor: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: TensorValues,
}

impl RawTensor {
    /// A float tensor.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self { shape, values: TensorValues::F32(values) }
    }

    /// An integer tensor.
    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        Self { shape, values: TensorValues::I64(values) }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            TensorValues::F32(v) => v.clone(),
            TensorValues::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Read a Burn tensor back to the host.
    pub fn from_tensor<const D: usize>(t: Tensor<D>) -> Self {
        let shape = t.dims().to_vec();
        let values = t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data");
        Self::f32(shape, values)
    }

    /// Upload as a Burn tensor of rank `D`. The caller has checked the shape.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(self.to_f32(), self.shape.clone()), device)
    }
}

/// An ordered collection of named tensors (PyTorch's `state_dict`). Two state dicts are
/// equal when they hold the same keys with equal tensors, whatever their order.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, RawTensor)>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert or replace `key`, keeping first-insertion order.
    pub fn insert(&mut self, key: impl Into<String>, tensor: RawTensor) {
        let key = key.into();
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = tensor,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, tensor));
            }
        }
    }

    /// The tensor stored under `key`.
    pub fn get(&self, key: &str) -> Option<&RawTensor> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawTensor)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A copy with every key rewritten by `f`; entries for which `f` returns `None` are dropped.
    pub fn map_keys(self, mut f: impl FnMut(&str) -> Option<String>) -> Self {
        let mut out = StateDict::new();
        for (k, v) in self.entries {
            if let Some(nk) = f(&k) {
                out.insert(nk, v);
            }
        }
        out
    }

    /// Total number of elements over all float entries.
    pub fn float_numel(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, t)| matches!(t.values, TensorValues::F32(_)))
            .map(|(_, t)| t.numel())
            .sum()
    }
}

impl PartialEq for StateDict {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl FromIterator<(String, RawTensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, RawTensor)>>(iter: I) -> Self {
        let mut sd = StateDict::new();
        for (k, v) in iter {
            sd.insert(k, v);
        }
        sd
    }
}

/// Join a module prefix and a local name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// One problem found while applying a state dict to a model.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyIssue {
    /// The model needs `key`; the file does not have it.
    Missing { key: String, expected: Vec<usize> },
    /// The file has `key` with another shape.
    Shape { key: String, expected: Vec<usize>, found: Vec<usize> },
    /// The file has `key`; the model has no such tensor.
    Unexpected { key: String, found: Vec<usize> },
}

impl std::fmt::Display for KeyIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyIssue::Missing { key, expected } => {
                write!(f, "missing key `{key}` (the model expects shape {expected:?})")
            }
            KeyIssue::Shape { key, expected, found } => write!(
                f,
                "shape mismatch for `{key}`: the file has {found:?}, the model expects {expected:?}"
            ),
            KeyIssue::Unexpected { key, found } => {
                write!(f, "unexpected key `{key}` (shape {found:?}) that the model does not have")
            }
        }
    }
}

/// Applies tensors from a [`StateDict`] to modules, recording what did not fit.
pub struct StateLoader<'a> {
    source: &'a StateDict,
    used: BTreeSet<String>,
    issues: Vec<KeyIssue>,
    applied: usize,
}

impl<'a> StateLoader<'a> {
    /// A loader reading from `source`.
    pub fn new(source: &'a StateDict) -> Self {
        Self { source, used: BTreeSet::new(), issues: Vec::new(), applied: 0 }
    }

    fn take(&mut self, key: &str, expected: &[usize]) -> Option<&'a RawTensor> {
        match self.source.get(key) {
            None => {
                self.issues.push(KeyIssue::Missing { key: key.to_string(), expected: expected.to_vec() });
                None
            }
            Some(t) => {
                self.used.insert(key.to_string());
                if t.shape != expected {
                    self.issues.push(KeyIssue::Shape {
                        key: key.to_string(),
                        expected: expected.to_vec(),
                        found: t.shape.clone(),
                    });
                    None
                } else {
                    self.applied += 1;
                    Some(t)
                }
            }
        }
    }

    /// Replace a parameter's value with the tensor at `key`, keeping its id and gradient flag.
    pub fn param<const D: usize>(&mut self, key: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let expected = param.dims().to_vec();
        match self.take(key, &expected) {
            Some(raw) => param.map(|old| {
                let require_grad = old.is_require_grad();
                let t: Tensor<D> = raw.to_tensor(&old.device());
                if require_grad { t.require_grad() } else { t }
            }),
            None => param,
        }
    }

    /// Replace a running statistic with the tensor at `key`.
    pub fn running<const D: usize>(&mut self, key: &str, state: RunningState<Tensor<D>>) -> RunningState<Tensor<D>> {
        let current = state.value();
        let expected = current.dims().to_vec();
        match self.take(key, &expected) {
            Some(raw) => RunningState::new(raw.to_tensor(&current.device())),
            None => state,
        }
    }

    /// Note that `key` is known and intentionally not applied (e.g. `num_batches_tracked`).
    pub fn accept(&mut self, key: &str) {
        if self.source.get(key).is_some() {
            self.used.insert(key.to_string());
        }
    }

    /// A scalar or small tensor at `key`, if present, marking it used.
    pub fn optional(&mut self, key: &str) -> Option<&'a RawTensor> {
        let t = self.source.get(key)?;
        self.used.insert(key.to_string());
        Some(t)
    }

    /// Apply a convolution's `weight` (and `bias` when it has one) under `prefix`.
    pub fn conv(&mut self, prefix: &str, mut conv: Conv2d) -> Conv2d {
        conv.weight = self.param(&join(prefix, "weight"), conv.weight);
        conv.bias = conv.bias.map(|b| self.param(&join(prefix, "bias"), b));
        conv
    }

    /// Finish: all issues, including the keys of the source that nothing used.
    pub fn finish(mut self) -> LoadReport {
        for (k, t) in self.source.iter() {
            if !self.used.contains(k) {
                self.issues.push(KeyIssue::Unexpected { key: k.to_string(), found: t.shape.clone() });
            }
        }
        LoadReport { issues: self.issues, applied: self.applied }
    }
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Problems, in model order then file order.
    pub issues: Vec<KeyIssue>,
    /// Number of tensors applied.
    pub applied: usize,
}

impl LoadReport {
    /// The issues as text, one per line, at most `max` lines.
    pub fn describe(&self, max: usize) -> String {
        let mut lines: Vec<String> = self.issues.iter().take(max).map(|i| format!("  - {i}")).collect();
        if self.issues.len() > max {
            lines.push(format!("  ... and {} more", self.issues.len() - max));
        }
        lines.join("\n")
    }
}

/// Write a convolution's tensors under `prefix`.
pub fn export_conv(conv: &Conv2d, prefix: &str, out: &mut StateDict) {
    out.insert(join(prefix, "weight"), RawTensor::from_tensor(conv.weight.val()));
    if let Some(b) = &conv.bias {
        out.insert(join(prefix, "bias"), RawTensor::from_tensor(b.val()));
    }
}

/// A module whose tensors have reference keys.
pub trait ReferenceKeys: Sized {
    /// Append this module's tensors to `out`, keys prefixed with `prefix`.
    fn export_state(&self, prefix: &str, out: &mut StateDict);
    /// Apply the tensors found under `prefix` in the loader's source.
    fn import_state(self, prefix: &str, loader: &mut StateLoader<'_>) -> Self;
}

/// Whether `key` names a BatchNorm buffer rather than a trainable parameter.
pub fn is_buffer_key(key: &str) -> bool {
    key.ends_with("running_mean") || key.ends_with("running_var") || key.ends_with("num_batches_tracked")
}
