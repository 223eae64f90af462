//! The values a pickle decodes to, and the allow-list of callables it may name.
//!
//! Nothing that walks a value recurses without bound: dropping one is iterative (a pickle of
//! a few hundred kilobytes can nest a hundred thousand containers, and the compiler's drop
//! glue would recurse once per level), and `Debug` prints a bounded excerpt.

use std::cell::RefCell;
use std::rc::Rc;

/// A PyTorch storage type, i.e. the element type of a tensor's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDType {
    /// From the class name in `torch.<Name>Storage`.
    pub fn from_storage_name(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// Whether values are floating point.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F64 | Self::F32 | Self::F16 | Self::BF16)
    }
}

/// A reference to a storage, from a persistent id.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Key of the storage in the archive (zip entry name / legacy key).
    pub key: String,
    /// Element type.
    pub dtype: StorageDType,
    /// Declared number of elements.
    pub numel: u64,
}

/// A tensor described by `_rebuild_tensor_v2`: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

/// A shared, mutable list of values (lists and sets).
pub type SharedList = Rc<RefCell<Vec<Value>>>;
/// A shared, mutable list of key-value pairs (dicts, in insertion order).
pub type SharedPairs = Rc<RefCell<Vec<(Value, Value)>>>;

/// A decoded pickle value.
///
/// Match on a reference (`match &v`): `Value` implements `Drop`, so its fields cannot be
/// moved out.
#[derive(Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64 (kept as little-endian two's complement bytes).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(SharedList),
    Dict(SharedPairs),
    Set(SharedList),
    /// An allow-listed global, not yet applied.
    Global(AllowedGlobal),
    /// A storage (from a persistent id).
    Storage(StorageRef),
    /// A tensor.
    Tensor(Rc<TensorRef>),
}

/// The callables a PyTorch checkpoint may reference, and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowedGlobal {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    StorageType(StorageDType),
}

impl AllowedGlobal {
    pub(super) fn resolve(module: &str, name: &str) -> Option<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Self::RebuildTensorV2),
            ("torch._utils", "_rebuild_tensor") => Some(Self::RebuildTensor),
            ("torch._utils", "_rebuild_parameter") => Some(Self::RebuildParameter),
            ("torch", n) => StorageDType::from_storage_name(n).map(Self::StorageType),
            _ => None,
        }
    }
}

/// Why a pickle was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Value {
    /// What the value is, in words, for messages ("a list", "an int", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Set(_) => "a set",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }

    /// Move the children of a container this value alone owns into `out`, leaving it empty.
    /// Shared containers are left alone: their last owner empties them.
    fn detach_children(&mut self, out: &mut Vec<Value>) {
        match self {
            Value::Tuple(t) => {
                if let Some(items) = Rc::get_mut(t) {
                    out.append(items);
                }
            }
            Value::List(l) | Value::Set(l) => {
                if Rc::strong_count(l) == 1 {
                    if let Ok(mut items) = l.try_borrow_mut() {
                        out.append(&mut items);
                    }
                }
            }
            Value::Dict(d) => {
                if Rc::strong_count(d) == 1 {
                    if let Ok(mut pairs) = d.try_borrow_mut() {
                        for (k, v) in pairs.drain(..) {
                            out.push(k);
                            out.push(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for Value {
    /// Iterative: the children of a container being freed are moved to a work list first,
    /// so no nesting depth can exhaust the stack.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.detach_children(&mut pending);
        while let Some(mut v) = pending.pop() {
            v.detach_children(&mut pending);
            // `v` is dropped here with its children already moved out: a shallow drop.
        }
    }
}

/// Containers are printed to this depth...
const DEBUG_DEPTH: usize = 4;
/// ... and with at most this many items each.
const DEBUG_ITEMS: usize = 8;

fn debug_items<'a>(
    f: &mut std::fmt::Formatter<'_>,
    open: &str,
    close: &str,
    items: impl ExactSizeIterator<Item = &'a Value>,
    depth: usize,
) -> std::fmt::Result {
    let n = items.len();
    f.write_str(open)?;
    if depth >= DEBUG_DEPTH {
        if n > 0 {
            write!(f, "{n} items")?;
        }
        return f.write_str(close);
    }
    for (i, v) in items.take(DEBUG_ITEMS).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        debug_value(f, v, depth + 1)?;
    }
    if n > DEBUG_ITEMS {
        write!(f, ", … {} more", n - DEBUG_ITEMS)?;
    }
    f.write_str(close)
}

fn debug_value(f: &mut std::fmt::Formatter<'_>, v: &Value, depth: usize) -> std::fmt::Result {
    match v {
        Value::None => f.write_str("None"),
        Value::Bool(b) => write!(f, "Bool({b})"),
        Value::Int(i) => write!(f, "Int({i})"),
        Value::BigInt(b) => write!(f, "BigInt({b:02x?})"),
        Value::Float(x) => write!(f, "Float({x})"),
        Value::Str(s) if s.len() > 80 => write!(f, "Str({:?}… {} bytes)", s.chars().take(40).collect::<String>(), s.len()),
        Value::Str(s) => write!(f, "Str({s:?})"),
        Value::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        Value::Tuple(t) => debug_items(f, "Tuple(", ")", t.iter(), depth),
        Value::List(l) | Value::Set(l) => {
            let (open, close) = if matches!(v, Value::List(_)) { ("List[", "]") } else { ("Set{", "}") };
            match l.try_borrow() {
                Ok(items) => debug_items(f, open, close, items.iter(), depth),
                Err(_) => write!(f, "{open}<in use>{close}"),
            }
        }
        Value::Dict(d) => match d.try_borrow() {
            Ok(pairs) if depth >= DEBUG_DEPTH => write!(f, "Dict({} entries)", pairs.len()),
            Ok(pairs) => {
                f.write_str("Dict{")?;
                for (i, (k, v)) in pairs.iter().take(DEBUG_ITEMS).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    debug_value(f, k, depth + 1)?;
                    f.write_str(": ")?;
                    debug_value(f, v, depth + 1)?;
                }
                if pairs.len() > DEBUG_ITEMS {
                    write!(f, ", … {} more", pairs.len() - DEBUG_ITEMS)?;
                }
                f.write_str("}")
            }
            Err(_) => f.write_str("Dict{<in use>}"),
        },
        Value::Global(g) => write!(f, "Global({g:?})"),
        Value::Storage(s) => write!(f, "Storage({s:?})"),
        Value::Tensor(t) => write!(f, "Tensor({:?} of {:?})", t.shape, t.storage),
    }
}

impl std::fmt::Debug for Value {
    /// A bounded excerpt: containers to depth 4, 8 items each (a hostile pickle can share one
    /// container under itself so that a full print would be exponentially long).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_value(f, self, 0)
    }
}

/// Look up `key` (a string key) in a dict value.
pub fn dict_get(v: &Value, key: &str) -> Option<Value> {
    match v {
        Value::Dict(d) => d.borrow().iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v.clone()),
        _ => None,
    }
}

/// If `v` is a dict whose every value is a tensor and every key a string, its entries.
pub fn as_tensor_dict(v: &Value) -> Option<Vec<(String, Rc<TensorRef>)>> {
    let Value::Dict(d) = v else { return None };
    let d = d.borrow();
    if d.is_empty() {
        return None;
    }
    d.iter()
        .map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Some((k.clone(), t.clone())),
            _ => None,
        })
        .collect()
}

/// Describe the non-tensor entries of a dict (for error messages).
pub fn describe_entries(v: &Value) -> String {
    match v {
        Value::Dict(d) => d
            .borrow()
            .iter()
            .take(8)
            .map(|(k, v)| match k {
                Value::Str(s) => format!("`{s}`: {}", v.kind()),
                other => format!("{}: {}", other.kind(), v.kind()),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.kind().to_string(),
    }
}
