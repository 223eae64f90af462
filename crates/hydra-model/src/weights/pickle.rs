//! A pickle reader that never executes code.
//!
//! It understands the opcodes of protocols 0–5 needed for plain data (numbers, strings,
//! bytes, lists, tuples, dicts, sets) and a short allow-list of callables that PyTorch uses to
//! describe tensors (`torch._utils._rebuild_tensor_v2`, `collections.OrderedDict`, the
//! `torch.*Storage` types, ...). Those callables are never called: they are recognised by name
//! and turned into data. Any other global (`os.system`, `builtins.eval`, a user class, ...) is
//! refused with an error naming it, before anything is built from it.
//!
//! Limits keep a hostile file from using unbounded memory or time: the stack, memo and
//! container sizes are bounded by the input length, nesting depth is capped, and string and
//! byte lengths are checked against the remaining input before allocation.

use std::cell::RefCell;
use std::rc::Rc;

/// Maximum nesting depth of containers when converting (a guard against stack exhaustion).
pub const MAX_DEPTH: usize = 256;

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

/// A decoded pickle value.
#[derive(Debug, Clone)]
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
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Set(Rc<RefCell<Vec<Value>>>),
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
    fn resolve(module: &str, name: &str) -> Option<Self> {
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

fn err<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(msg.into()))
}

enum Item {
    Mark,
    Val(Value),
}

/// Unpickle one object from `data`, starting at `*pos`; `*pos` ends after the STOP opcode.
///
/// `persistent` resolves persistent ids (PyTorch's storage references).
pub fn unpickle(
    data: &[u8],
    pos: &mut usize,
    persistent: &mut dyn FnMut(Value) -> Result<Value, PickleError>,
) -> Result<Value, PickleError> {
    let mut r = Reader { data, pos: *pos };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Value> = std::collections::HashMap::new();
    loop {
        let at = r.pos;
        let op = r.u8()?;
        match op {
            0x80 => {
                let proto = r.u8()?;
                if proto > 5 {
                    return err(format!("unsupported pickle protocol {proto}"));
                }
            }
            0x95 => {
                r.take(8)?;
            } // FRAME: length hint only
            b'.' => {
                let v = pop_val(&mut stack, at)?;
                *pos = r.pos;
                return Ok(v);
            }
            b'(' => stack.push(Item::Mark),
            b'0' => {
                stack.pop().ok_or_else(|| PickleError(format!("POP on empty stack at byte {at}")))?;
            }
            b'1' => {
                pop_mark(&mut stack, at)?;
            }
            b'2' => {
                let v = top_val(&stack, at)?.clone();
                stack.push(Item::Val(v));
            }
            b'N' => stack.push(Item::Val(Value::None)),
            0x88 => stack.push(Item::Val(Value::Bool(true))),
            0x89 => stack.push(Item::Val(Value::Bool(false))),
            b'J' => {
                let v = i32::from_le_bytes(r.array()?);
                stack.push(Item::Val(Value::Int(v as i64)))
            }
            b'K' => {
                let v = r.u8()?;
                stack.push(Item::Val(Value::Int(v as i64)))
            }
            b'M' => {
                let v = u16::from_le_bytes(r.array()?);
                stack.push(Item::Val(Value::Int(v as i64)))
            }
            b'I' => {
                let line = r.line()?;
                let v = match line {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    s => Value::Int(s.parse().map_err(|_| PickleError(format!("bad INT `{s}` at byte {at}")))?),
                };
                stack.push(Item::Val(v));
            }
            b'L' => {
                let line = r.line()?;
                let s = line.trim_end_matches('L');
                let v = s.parse::<i64>().map_err(|_| PickleError(format!("unsupported LONG `{line}` at byte {at}")))?;
                stack.push(Item::Val(Value::Int(v)));
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a { r.u8()? as usize } else { u32::from_le_bytes(r.array()?) as usize };
                let bytes = r.take(n)?;
                stack.push(Item::Val(long_from_bytes(bytes)));
            }
            b'G' => {
                let v = f64::from_be_bytes(r.array()?);
                stack.push(Item::Val(Value::Float(v)))
            }
            b'F' => {
                let line = r.line()?;
                let v = line.parse::<f64>().map_err(|_| PickleError(format!("bad FLOAT `{line}` at byte {at}")))?;
                stack.push(Item::Val(Value::Float(v)));
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => u32::from_le_bytes(r.array()?) as usize,
                    0x8c => r.u8()? as usize,
                    _ => usize::try_from(u64::from_le_bytes(r.array()?)).map_err(|_| PickleError("string too long".into()))?,
                };
                let bytes = r.take(n)?;
                let s = std::str::from_utf8(bytes).map_err(|_| PickleError(format!("invalid UTF-8 string at byte {at}")))?;
                stack.push(Item::Val(Value::Str(s.to_string())));
            }
            b'V' => {
                let line = r.line()?;
                stack.push(Item::Val(Value::Str(line.to_string())));
            }
            b'S' => {
                let line = r.line()?;
                let s = line.trim_matches(|c| c == '\'' || c == '"');
                stack.push(Item::Val(Value::Str(s.to_string())));
            }
            b'T' | b'U' => {
                let n = if op == b'T' { u32::from_le_bytes(r.array()?) as usize } else { r.u8()? as usize };
                let bytes = r.take(n)?;
                // Python 2 byte strings: PyTorch 0.4 keys can be these. Decode as Latin-1.
                stack.push(Item::Val(Value::Str(bytes.iter().map(|&b| b as char).collect())));
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = match op {
                    b'B' => u32::from_le_bytes(r.array()?) as usize,
                    b'C' => r.u8()? as usize,
                    _ => usize::try_from(u64::from_le_bytes(r.array()?)).map_err(|_| PickleError("bytes too long".into()))?,
                };
                let bytes = r.take(n)?;
                stack.push(Item::Val(Value::Bytes(bytes.to_vec())));
            }
            b')' => stack.push(Item::Val(Value::Tuple(Rc::new(Vec::new())))),
            b']' => stack.push(Item::Val(Value::List(Rc::new(RefCell::new(Vec::new()))))),
            b'}' => stack.push(Item::Val(Value::Dict(Rc::new(RefCell::new(Vec::new()))))),
            0x8f => stack.push(Item::Val(Value::Set(Rc::new(RefCell::new(Vec::new()))))),
            b't' => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Item::Val(Value::Tuple(Rc::new(items))));
            }
            0x85 | 0x86 | 0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop_val(&mut stack, at)?);
                }
                items.reverse();
                stack.push(Item::Val(Value::Tuple(Rc::new(items))));
            }
            b'l' => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Item::Val(Value::List(Rc::new(RefCell::new(items)))));
            }
            b'd' => {
                let items = pop_mark(&mut stack, at)?;
                let pairs = pairs(items, at)?;
                stack.push(Item::Val(Value::Dict(Rc::new(RefCell::new(pairs)))));
            }
            0x91 => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Item::Val(Value::Set(Rc::new(RefCell::new(items)))));
            }
            b'a' => {
                let v = pop_val(&mut stack, at)?;
                match top_val(&stack, at)? {
                    Value::List(l) => l.borrow_mut().push(v),
                    other => return err(format!("APPEND to {} at byte {at}", kind(other))),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, at)?;
                match top_val(&stack, at)? {
                    Value::List(l) => l.borrow_mut().extend(items),
                    other => return err(format!("APPENDS to {} at byte {at}", kind(other))),
                }
            }
            0x90 => {
                let items = pop_mark(&mut stack, at)?;
                match top_val(&stack, at)? {
                    Value::Set(l) => l.borrow_mut().extend(items),
                    other => return err(format!("ADDITEMS to {} at byte {at}", kind(other))),
                }
            }
            b's' => {
                let v = pop_val(&mut stack, at)?;
                let k = pop_val(&mut stack, at)?;
                match top_val(&stack, at)? {
                    Value::Dict(d) => d.borrow_mut().push((k, v)),
                    other => return err(format!("SETITEM on {} at byte {at}", kind(other))),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack, at)?;
                let kv = pairs(items, at)?;
                match top_val(&stack, at)? {
                    Value::Dict(d) => d.borrow_mut().extend(kv),
                    other => return err(format!("SETITEMS on {} at byte {at}", kind(other))),
                }
            }
            b'c' => {
                let module = r.line()?.to_string();
                let name = r.line()?.to_string();
                stack.push(Item::Val(Value::Global(global(&module, &name)?)));
            }
            0x93 => {
                let name = pop_val(&mut stack, at)?;
                let module = pop_val(&mut stack, at)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Item::Val(Value::Global(global(&m, &n)?))),
                    _ => return err(format!("STACK_GLOBAL without strings at byte {at}")),
                }
            }
            b'i' | b'o' | 0x82 | 0x83 | 0x84 => {
                return err(format!(
                    "opcode 0x{op:02x} at byte {at} constructs arbitrary objects; refused (hydra never executes pickle code)"
                ));
            }
            b'R' => {
                let args = pop_val(&mut stack, at)?;
                let func = pop_val(&mut stack, at)?;
                stack.push(Item::Val(reduce(func, args, at)?));
            }
            0x81 => {
                let args = pop_val(&mut stack, at)?;
                let cls = pop_val(&mut stack, at)?;
                stack.push(Item::Val(reduce(cls, args, at)?));
            }
            0x92 => {
                let _kwargs = pop_val(&mut stack, at)?;
                let args = pop_val(&mut stack, at)?;
                let cls = pop_val(&mut stack, at)?;
                stack.push(Item::Val(reduce(cls, args, at)?));
            }
            b'b' => {
                // BUILD sets object state. On an OrderedDict (PyTorch's `_metadata`) or a
                // tensor (backward hooks) it carries nothing hydra needs: drop it.
                let _state = pop_val(&mut stack, at)?;
                match top_val(&stack, at)? {
                    Value::Dict(_) | Value::Tensor(_) => {}
                    other => return err(format!("BUILD on {} at byte {at}", kind(other))),
                }
            }
            b'Q' => {
                let pid = pop_val(&mut stack, at)?;
                stack.push(Item::Val(persistent(pid)?));
            }
            b'P' => {
                let line = r.line()?.to_string();
                stack.push(Item::Val(persistent(Value::Str(line))?));
            }
            b'q' => {
                let k = r.u8()? as u64;
                memo.insert(k, top_val(&stack, at)?.clone());
            }
            b'r' => {
                let k = u32::from_le_bytes(r.array()?) as u64;
                memo.insert(k, top_val(&stack, at)?.clone());
            }
            b'p' => {
                let k = r.line()?.parse::<u64>().map_err(|_| PickleError(format!("bad PUT at byte {at}")))?;
                memo.insert(k, top_val(&stack, at)?.clone());
            }
            0x94 => {
                let k = memo.len() as u64;
                memo.insert(k, top_val(&stack, at)?.clone());
            }
            b'h' | b'j' | b'g' => {
                let k = match op {
                    b'h' => r.u8()? as u64,
                    b'j' => u32::from_le_bytes(r.array()?) as u64,
                    _ => r.line()?.parse::<u64>().map_err(|_| PickleError(format!("bad GET at byte {at}")))?,
                };
                let v = memo.get(&k).ok_or_else(|| PickleError(format!("memo key {k} not found at byte {at}")))?.clone();
                stack.push(Item::Val(v));
            }
            0x97 => return err(format!("out-of-band buffers (NEXT_BUFFER) at byte {at} are not supported")),
            0x98 => {} // READONLY_BUFFER: no-op on our values
            _ => return err(format!("unknown pickle opcode 0x{op:02x} at byte {at}")),
        }
    }
}

fn global(module: &str, name: &str) -> Result<AllowedGlobal, PickleError> {
    AllowedGlobal::resolve(module, name).ok_or_else(|| {
        PickleError(format!(
            "the pickle references `{module}.{name}`, which is not a tensor or a plain container; refused (hydra never executes pickle code)"
        ))
    })
}

fn reduce(func: Value, args: Value, at: usize) -> Result<Value, PickleError> {
    let Value::Global(g) = func else {
        return err(format!("REDUCE on {} at byte {at}", kind(&func)));
    };
    let Value::Tuple(args) = args else {
        return err(format!("REDUCE arguments are not a tuple at byte {at}"));
    };
    match g {
        AllowedGlobal::OrderedDict => {
            let mut pairs_out = Vec::new();
            if let Some(Value::List(items)) = args.first() {
                for item in items.borrow().iter() {
                    match item {
                        Value::Tuple(t) if t.len() == 2 => pairs_out.push((t[0].clone(), t[1].clone())),
                        _ => return err(format!("OrderedDict item is not a pair at byte {at}")),
                    }
                }
            }
            Ok(Value::Dict(Rc::new(RefCell::new(pairs_out))))
        }
        AllowedGlobal::RebuildTensorV2 | AllowedGlobal::RebuildTensor => {
            if args.len() < 4 {
                return err(format!("_rebuild_tensor with {} arguments at byte {at}", args.len()));
            }
            let Value::Storage(storage) = &args[0] else {
                return err(format!("_rebuild_tensor without a storage at byte {at}"));
            };
            let offset = as_u64(&args[1]).ok_or_else(|| PickleError(format!("bad storage offset at byte {at}")))?;
            let shape = int_tuple(&args[2]).ok_or_else(|| PickleError(format!("bad tensor size at byte {at}")))?;
            let stride = int_tuple(&args[3]).ok_or_else(|| PickleError(format!("bad tensor stride at byte {at}")))?;
            if shape.len() != stride.len() {
                return err(format!("tensor size and stride differ in rank at byte {at}"));
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, shape, stride })))
        }
        AllowedGlobal::RebuildParameter => match args.first() {
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            _ => err(format!("_rebuild_parameter without a tensor at byte {at}")),
        },
        AllowedGlobal::StorageType(_) => err(format!("storage type called directly at byte {at}")),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Some(*i as u64),
        _ => None,
    }
}

fn int_tuple(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Tuple(t) => t.iter().map(as_u64).collect(),
        Value::List(l) => l.borrow().iter().map(as_u64).collect(),
        _ => None,
    }
}

fn long_from_bytes(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Int(0);
    }
    if bytes.len() <= 8 {
        let neg = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(bytes.to_vec())
    }
}

fn pairs(items: Vec<Value>, at: usize) -> Result<Vec<(Value, Value)>, PickleError> {
    if items.len() % 2 != 0 {
        return err(format!("odd number of dict items at byte {at}"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
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

fn pop_val(stack: &mut Vec<Item>, at: usize) -> Result<Value, PickleError> {
    match stack.pop() {
        Some(Item::Val(v)) => Ok(v),
        Some(Item::Mark) => err(format!("unexpected MARK at byte {at}")),
        None => err(format!("stack underflow at byte {at}")),
    }
}

fn top_val(stack: &[Item], at: usize) -> Result<&Value, PickleError> {
    match stack.last() {
        Some(Item::Val(v)) => Ok(v),
        Some(Item::Mark) => err(format!("unexpected MARK at byte {at}")),
        None => err(format!("stack underflow at byte {at}")),
    }
}

fn pop_mark(stack: &mut Vec<Item>, at: usize) -> Result<Vec<Value>, PickleError> {
    let mut items = Vec::new();
    loop {
        match stack.pop() {
            Some(Item::Mark) => break,
            Some(Item::Val(v)) => items.push(v),
            None => return err(format!("MARK not found at byte {at}")),
        }
    }
    items.reverse();
    Ok(items)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(e) => {
                let s = &self.data[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => err(format!(
                "truncated: needed {n} bytes at byte {}, only {} left",
                self.pos,
                self.data.len() - self.pos
            )),
        }
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| PickleError("truncated: unterminated line".into()))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| PickleError("invalid UTF-8 in a text opcode".into()))?;
        self.pos += n + 1;
        Ok(s)
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
                Value::Str(s) => format!("`{s}`: {}", kind(v)),
                other => format!("{}: {}", kind(other), kind(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pid(_: Value) -> Result<Value, PickleError> {
        err("no persistent ids expected")
    }

    fn load(bytes: &[u8]) -> Result<Value, PickleError> {
        let mut pos = 0;
        unpickle(bytes, &mut pos, &mut no_pid)
    }

    #[test]
    fn reads_a_protocol2_dict_of_ints() {
        // pickle.dumps({'a': 1, 'b': 300}, protocol=2)
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02M,\x01u.";
        let v = load(bytes).unwrap();
        assert!(matches!(dict_get(&v, "a"), Some(Value::Int(1))));
        assert!(matches!(dict_get(&v, "b"), Some(Value::Int(300))));
    }

    #[test]
    fn refuses_os_system_without_running_it() {
        // pickle.dumps of an object whose __reduce__ is (os.system, ('echo hi',)), protocol 0
        let bytes = b"cposix\nsystem\np0\n(Vecho hi\np1\ntp2\nRp3\n.";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("posix.system"), "{e}");
        assert!(e.0.contains("never executes"), "{e}");
    }

    #[test]
    fn refuses_builtins_eval_via_stack_global() {
        let bytes = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("builtins.eval"), "{e}");
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = b"\x80\x02}q\x00(X\x05\x00\x00\x00ab";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
    }

    #[test]
    fn memo_shares_mutated_containers() {
        // d = {}; l = [d, d]; d['x'] = 1 → pickled as list with memoised dict
        // ]q\x00(}q\x01h\x01e  then setitem on memo 1 — emulate: EMPTY_LIST, MARK, EMPTY_DICT,
        // BINPUT 1, BINGET 1, APPENDS, then BINGET 1, 'x', 1, SETITEM, POP, STOP.
        let bytes = b"\x80\x02](}q\x01h\x01eh\x01X\x01\x00\x00\x00xK\x01s0.";
        let v = load(bytes).unwrap();
        let Value::List(l) = v else { panic!() };
        let l = l.borrow();
        assert_eq!(l.len(), 2);
        for item in l.iter() {
            assert!(matches!(dict_get(item, "x"), Some(Value::Int(1))));
        }
    }

    #[test]
    fn big_long1_is_kept_as_bytes() {
        // PyTorch's legacy magic number 0x1950a86a20f9469cfc6c as LONG1.
        let bytes = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
        match load(bytes).unwrap() {
            Value::BigInt(b) => assert_eq!(b, vec![0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]),
            other => panic!("{other:?}"),
        }
    }
}
