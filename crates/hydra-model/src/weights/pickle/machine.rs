//! The pickle machine: opcodes of protocols 0–5 for plain data and the allow-listed tensor
//! callables, run over an explicit stack (no recursion), never calling anything.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::graph::{self, Reachable, Registry};
use super::value::{AllowedGlobal, PickleError, TensorRef, Value};

fn err<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(msg.into()))
}

enum Item {
    Mark,
    Val(Value),
}

/// Unpickle one object from `data`, starting at `*pos`; `*pos` ends after the STOP opcode.
///
/// `persistent` resolves persistent ids (PyTorch's storage references). The result nests at
/// most [`graph::MAX_DEPTH`] containers and holds no container inside itself.
pub fn unpickle(
    data: &[u8],
    pos: &mut usize,
    persistent: &mut dyn FnMut(Value) -> Result<Value, PickleError>,
) -> Result<Value, PickleError> {
    let mut m = Machine { r: Reader { data, pos: *pos }, stack: Vec::new(), memo: HashMap::new(), registry: Registry::default() };
    let result = m.run(persistent).and_then(|root| graph::check(&root).map(|reachable| (root, reachable)));
    let Machine { r, stack, memo, registry } = m;
    drop((stack, memo));
    match result {
        Ok((root, reachable)) => {
            registry.clear_except(&reachable);
            *pos = r.pos;
            Ok(root)
        }
        Err(e) => {
            registry.clear_except(&Reachable::default());
            Err(e)
        }
    }
}

struct Machine<'a> {
    r: Reader<'a>,
    stack: Vec<Item>,
    memo: HashMap<u64, Value>,
    registry: Registry,
}

impl Machine<'_> {
    fn push(&mut self, v: Value) {
        self.stack.push(Item::Val(v));
    }

    fn pop(&mut self, at: usize) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Item::Val(v)) => Ok(v),
            Some(Item::Mark) => err(format!("unexpected MARK at byte {at}")),
            None => err(format!("stack underflow at byte {at}")),
        }
    }

    fn top(&self, at: usize) -> Result<&Value, PickleError> {
        match self.stack.last() {
            Some(Item::Val(v)) => Ok(v),
            Some(Item::Mark) => err(format!("unexpected MARK at byte {at}")),
            None => err(format!("stack underflow at byte {at}")),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.stack.iter().rposition(|i| matches!(i, Item::Mark)) else {
            return err(format!("MARK not found at byte {at}"));
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items.into_iter().map(|i| match i {
            Item::Val(v) => v,
            Item::Mark => unreachable!("the topmost mark"),
        }).collect())
    }

    fn list(&mut self, items: Vec<Value>) -> Value {
        let l = Rc::new(RefCell::new(items));
        self.registry.list(&l);
        Value::List(l)
    }

    fn set(&mut self, items: Vec<Value>) -> Value {
        let l = Rc::new(RefCell::new(items));
        self.registry.list(&l);
        Value::Set(l)
    }

    fn dict(&mut self, pairs: Vec<(Value, Value)>) -> Value {
        let d = Rc::new(RefCell::new(pairs));
        self.registry.dict(&d);
        Value::Dict(d)
    }

    fn memoize(&mut self, k: u64, at: usize) -> Result<(), PickleError> {
        let v = self.top(at)?.clone();
        self.memo.insert(k, v);
        Ok(())
    }

    fn run(&mut self, persistent: &mut dyn FnMut(Value) -> Result<Value, PickleError>) -> Result<Value, PickleError> {
        loop {
            let at = self.r.pos;
            let op = self.r.u8()?;
            match op {
                0x80 => {
                    let proto = self.r.u8()?;
                    if proto > 5 {
                        return err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.r.take(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(at),
                b'(' => self.stack.push(Item::Mark),
                b'0' => {
                    self.stack.pop().ok_or_else(|| PickleError(format!("POP on empty stack at byte {at}")))?;
                }
                b'1' => {
                    self.pop_mark(at)?;
                }
                b'2' => {
                    let v = self.top(at)?.clone();
                    self.push(v);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.r.array()?);
                    self.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.r.u8()?;
                    self.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.r.array()?);
                    self.push(Value::Int(v as i64))
                }
                b'I' => {
                    let v = match self.r.line()? {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        s => Value::Int(s.parse().map_err(|_| PickleError(format!("bad INT `{s}` at byte {at}")))?),
                    };
                    self.push(v);
                }
                b'L' => {
                    let line = self.r.line()?;
                    let s = line.trim_end_matches('L');
                    let v = s.parse::<i64>().map_err(|_| PickleError(format!("unsupported LONG `{line}` at byte {at}")))?;
                    self.push(Value::Int(v));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.r.u8()? as usize } else { u32::from_le_bytes(self.r.array()?) as usize };
                    let bytes = self.r.take(n)?;
                    self.push(long_from_bytes(bytes));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.r.array()?);
                    self.push(Value::Float(v))
                }
                b'F' => {
                    let line = self.r.line()?;
                    let v = line.parse::<f64>().map_err(|_| PickleError(format!("bad FLOAT `{line}` at byte {at}")))?;
                    self.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => u32::from_le_bytes(self.r.array()?) as usize,
                        0x8c => self.r.u8()? as usize,
                        _ => usize::try_from(u64::from_le_bytes(self.r.array()?)).map_err(|_| PickleError("string too long".into()))?,
                    };
                    let bytes = self.r.take(n)?;
                    let s = std::str::from_utf8(bytes).map_err(|_| PickleError(format!("invalid UTF-8 string at byte {at}")))?;
                    self.push(Value::Str(s.to_string()));
                }
                b'V' => {
                    let line = self.r.line()?;
                    self.push(Value::Str(line.to_string()));
                }
                b'S' => {
                    let line = self.r.line()?;
                    let s = line.trim_matches(|c| c == '\'' || c == '"');
                    self.push(Value::Str(s.to_string()));
                }
                b'T' | b'U' => {
                    let n = if op == b'T' { u32::from_le_bytes(self.r.array()?) as usize } else { self.r.u8()? as usize };
                    let bytes = self.r.take(n)?;
                    // Python 2 byte strings: PyTorch 0.4 keys can be these. Decode as Latin-1.
                    self.push(Value::Str(bytes.iter().map(|&b| b as char).collect()));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => u32::from_le_bytes(self.r.array()?) as usize,
                        b'C' => self.r.u8()? as usize,
                        _ => usize::try_from(u64::from_le_bytes(self.r.array()?)).map_err(|_| PickleError("bytes too long".into()))?,
                    };
                    let bytes = self.r.take(n)?;
                    self.push(Value::Bytes(bytes.to_vec()));
                }
                b')' => self.push(Value::Tuple(Rc::new(Vec::new()))),
                b']' => {
                    let v = self.list(Vec::new());
                    self.push(v)
                }
                b'}' => {
                    let v = self.dict(Vec::new());
                    self.push(v)
                }
                0x8f => {
                    let v = self.set(Vec::new());
                    self.push(v)
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at)?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)));
                }
                b'l' => {
                    let items = self.pop_mark(at)?;
                    let v = self.list(items);
                    self.push(v);
                }
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let v = self.dict(pairs(items, at)?);
                    self.push(v);
                }
                0x91 => {
                    let items = self.pop_mark(at)?;
                    let v = self.set(items);
                    self.push(v);
                }
                b'a' => {
                    let v = self.pop(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.borrow_mut().push(v),
                        other => return err(format!("APPEND to {} at byte {at}", other.kind())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.borrow_mut().extend(items),
                        other => return err(format!("APPENDS to {} at byte {at}", other.kind())),
                    }
                }
                0x90 => {
                    let items = self.pop_mark(at)?;
                    match self.top(at)? {
                        Value::Set(l) => l.borrow_mut().extend(items),
                        other => return err(format!("ADDITEMS to {} at byte {at}", other.kind())),
                    }
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    match self.top(at)? {
                        Value::Dict(d) => d.borrow_mut().push((k, v)),
                        other => return err(format!("SETITEM on {} at byte {at}", other.kind())),
                    }
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let kv = pairs(items, at)?;
                    match self.top(at)? {
                        Value::Dict(d) => d.borrow_mut().extend(kv),
                        other => return err(format!("SETITEMS on {} at byte {at}", other.kind())),
                    }
                }
                b'c' => {
                    let module = self.r.line()?.to_string();
                    let name = self.r.line()?.to_string();
                    self.push(Value::Global(global(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let g = global(m, n)?;
                            self.push(Value::Global(g))
                        }
                        _ => return err(format!("STACK_GLOBAL without strings at byte {at}")),
                    }
                }
                b'i' | b'o' | 0x82..=0x84 => {
                    return err(format!(
                        "opcode 0x{op:02x} at byte {at} constructs arbitrary objects; refused (hydra never executes pickle code)"
                    ));
                }
                b'R' | 0x81 => {
                    let args = self.pop(at)?;
                    let func = self.pop(at)?;
                    let v = self.reduce(&func, &args, at)?;
                    self.push(v);
                }
                0x92 => {
                    let _kwargs = self.pop(at)?;
                    let args = self.pop(at)?;
                    let cls = self.pop(at)?;
                    let v = self.reduce(&cls, &args, at)?;
                    self.push(v);
                }
                b'b' => {
                    // BUILD sets object state. On an OrderedDict (PyTorch's `_metadata`) or a
                    // tensor (backward hooks) it carries nothing hydra needs: drop it.
                    let _state = self.pop(at)?;
                    match self.top(at)? {
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => return err(format!("BUILD on {} at byte {at}", other.kind())),
                    }
                }
                b'Q' => {
                    let pid = self.pop(at)?;
                    let v = persistent(pid)?;
                    self.push(v);
                }
                b'P' => {
                    let line = self.r.line()?.to_string();
                    let v = persistent(Value::Str(line))?;
                    self.push(v);
                }
                b'q' => {
                    let k = self.r.u8()? as u64;
                    self.memoize(k, at)?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.r.array()?) as u64;
                    self.memoize(k, at)?;
                }
                b'p' => {
                    let k = self.r.line()?.parse::<u64>().map_err(|_| PickleError(format!("bad PUT at byte {at}")))?;
                    self.memoize(k, at)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memoize(k, at)?;
                }
                b'h' | b'j' | b'g' => {
                    let k = match op {
                        b'h' => self.r.u8()? as u64,
                        b'j' => u32::from_le_bytes(self.r.array()?) as u64,
                        _ => self.r.line()?.parse::<u64>().map_err(|_| PickleError(format!("bad GET at byte {at}")))?,
                    };
                    let v = self.memo.get(&k).ok_or_else(|| PickleError(format!("memo key {k} not found at byte {at}")))?.clone();
                    self.push(v);
                }
                0x97 => return err(format!("out-of-band buffers (NEXT_BUFFER) at byte {at} are not supported")),
                0x98 => {} // READONLY_BUFFER: no-op on our values
                _ => return err(format!("unknown pickle opcode 0x{op:02x} at byte {at}")),
            }
        }
    }

    fn reduce(&mut self, func: &Value, args: &Value, at: usize) -> Result<Value, PickleError> {
        let Value::Global(g) = func else {
            return err(format!("REDUCE on {} at byte {at}", func.kind()));
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
                Ok(self.dict(pairs_out))
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
}

fn global(module: &str, name: &str) -> Result<AllowedGlobal, PickleError> {
    AllowedGlobal::resolve(module, name).ok_or_else(|| {
        PickleError(format!(
            "the pickle references `{module}.{name}`, which is not a tensor or a plain container; refused (hydra never executes pickle code)"
        ))
    })
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
            None => err(format!("truncated: needed {n} bytes at byte {}, only {} left", self.pos, self.data.len() - self.pos)),
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
