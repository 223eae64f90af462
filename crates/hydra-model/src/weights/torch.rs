//! PyTorch checkpoints (`torch.save`): the zip serialization (PyTorch ≥ 1.6) and the legacy
//! one (PyTorch ≤ 1.5, the official HydraNet releases), read without executing pickle code.

use std::collections::HashMap;
use std::rc::Rc;

use super::pickle::{self, StorageDType, StorageRef, TensorRef, Value};
use super::zip;
use crate::state::{RawTensor, StateDict};

/// PyTorch's legacy magic number (the first pickle of a legacy file).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Whether `b` starts like a legacy `torch.save` file.
pub fn looks_legacy(b: &[u8]) -> bool {
    b.len() >= 14 && b[0] == 0x80 && b[2] == 0x8a && b[3] == 0x0a && b[4..14] == LEGACY_MAGIC
}

/// Whether `b` starts like a zip archive.
pub fn looks_zip(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04")
}

fn persistent_id(pid: Value) -> Result<Value, pickle::PickleError> {
    // ('storage', storage_type, key, location, numel[, view_metadata])
    let Value::Tuple(t) = &pid else {
        return Err(pickle::PickleError("persistent id is not a tuple".into()));
    };
    match (t.first(), t.get(1), t.get(2), t.get(4)) {
        (Some(Value::Str(tag)), Some(Value::Global(pickle::AllowedGlobal::StorageType(dtype))), Some(key), Some(numel))
            if tag == "storage" =>
        {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => return Err(pickle::PickleError("storage key is not a string".into())),
            };
            let numel = match numel {
                Value::Int(n) if *n >= 0 => *n as u64,
                _ => return Err(pickle::PickleError("storage size is not a non-negative int".into())),
            };
            if t.len() > 5 && !matches!(t[5], Value::None) {
                return Err(pickle::PickleError("storage views (PyTorch < 0.4 view metadata) are not supported".into()));
            }
            Ok(Value::Storage(StorageRef { key, dtype: *dtype, numel }))
        }
        _ => Err(pickle::PickleError("persistent id is not a PyTorch storage reference".into())),
    }
}

/// The tensors of a checkpoint: `state_dict` (or `model`) if present, else the top level.
fn select_state(root: &Value) -> Result<(Vec<(String, Rc<TensorRef>)>, &'static str), String> {
    for key in ["state_dict", "model", "model_state_dict", "model_state"] {
        if let Some(inner) = pickle::dict_get(root, key) {
            if let Some(t) = pickle::as_tensor_dict(&inner) {
                return Ok((t, key));
            }
        }
    }
    if let Some(t) = pickle::as_tensor_dict(root) {
        return Ok((t, ""));
    }
    Err(format!(
        "no state dict found: expected a dict of tensors under `state_dict` or at the top level, found {}",
        pickle::describe_entries(root)
    ))
}

/// Materialise one strided tensor from its storage bytes.
fn materialise(name: &str, t: &TensorRef, storage: &[u8]) -> Result<RawTensor, String> {
    let es = t.storage.dtype.size();
    let have = (storage.len() / es) as u64;
    if have < t.storage.numel {
        return Err(format!("tensor `{name}`: storage holds {have} elements, {} declared", t.storage.numel));
    }
    let mut numel: u64 = 1;
    let mut max_index = t.offset;
    for (&d, &s) in t.shape.iter().zip(&t.stride) {
        numel = numel.checked_mul(d).ok_or_else(|| format!("tensor `{name}`: shape {:?} overflows", t.shape))?;
        if d > 0 {
            max_index = max_index
                .checked_add((d - 1).checked_mul(s).ok_or_else(|| format!("tensor `{name}`: stride overflows"))?)
                .ok_or_else(|| format!("tensor `{name}`: stride overflows"))?;
        }
    }
    if numel > 0 && max_index >= t.storage.numel {
        return Err(format!(
            "tensor `{name}` of shape {:?} reads element {max_index} of a {}-element storage",
            t.shape, t.storage.numel
        ));
    }
    // Every element read is inside the storage, so numel ≤ the storage size only if strides are
    // non-zero; expanded tensors (stride 0) can declare more elements than bytes: bound them.
    if numel > 1 << 31 {
        return Err(format!("tensor `{name}` declares {numel} elements; refusing"));
    }
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let mut idx = Vec::with_capacity(numel as usize);
    let rank = shape.len();
    let mut counter = vec![0usize; rank];
    for _ in 0..numel {
        let mut off = t.offset as usize;
        for i in 0..rank {
            off += counter[i] * t.stride[i] as usize;
        }
        idx.push(off);
        for i in (0..rank).rev() {
            counter[i] += 1;
            if counter[i] < shape[i] {
                break;
            }
            counter[i] = 0;
        }
    }
    let at = |i: usize| &storage[i * es..(i + 1) * es];
    use StorageDType as D;
    Ok(match t.storage.dtype {
        D::F32 => RawTensor::f32(shape, idx.iter().map(|&i| f32::from_le_bytes(at(i).try_into().unwrap())).collect()),
        D::F64 => RawTensor::f32(shape, idx.iter().map(|&i| f64::from_le_bytes(at(i).try_into().unwrap()) as f32).collect()),
        D::F16 => RawTensor::f32(shape, idx.iter().map(|&i| half::f16::from_le_bytes(at(i).try_into().unwrap()).to_f32()).collect()),
        D::BF16 => RawTensor::f32(shape, idx.iter().map(|&i| half::bf16::from_le_bytes(at(i).try_into().unwrap()).to_f32()).collect()),
        D::I64 => RawTensor::i64(shape, idx.iter().map(|&i| i64::from_le_bytes(at(i).try_into().unwrap())).collect()),
        D::I32 => RawTensor::i64(shape, idx.iter().map(|&i| i32::from_le_bytes(at(i).try_into().unwrap()) as i64).collect()),
        D::I16 => RawTensor::i64(shape, idx.iter().map(|&i| i16::from_le_bytes(at(i).try_into().unwrap()) as i64).collect()),
        D::I8 => RawTensor::i64(shape, idx.iter().map(|&i| at(i)[0] as i8 as i64).collect()),
        D::U8 | D::Bool => RawTensor::i64(shape, idx.iter().map(|&i| at(i)[0] as i64).collect()),
    })
}

/// What was read from a PyTorch file.
#[derive(Debug)]
pub struct TorchFile {
    /// The tensors, in file order.
    pub state: StateDict,
    /// Where they were found (`state_dict`, or empty for the top level).
    pub container: &'static str,
}

/// Most elements the tensors of a `file_len`-byte checkpoint may hold together: tensors can
/// share a storage (tied weights, views) or repeat an element (stride 0), so a few bytes of
/// pickle could otherwise describe terabytes.
fn element_budget(file_len: usize) -> u64 {
    4 * file_len as u64 + (1 << 20)
}

fn collect<'a>(
    tensors: Vec<(String, Rc<TensorRef>)>,
    container: &'static str,
    file_len: usize,
    storage: &dyn Fn(&StorageRef) -> Result<&'a [u8], String>,
) -> Result<TorchFile, String> {
    let budget = element_budget(file_len);
    let total = tensors.iter().try_fold(0u64, |sum, (_, t)| t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).and_then(|n| sum.checked_add(n)));
    if total.is_none_or(|n| n > budget) {
        return Err(format!(
            "the tensors declare {} elements in all, more than a {file_len}-byte checkpoint can hold ({budget}); refusing",
            total.map_or_else(|| "over 2^64".to_string(), |n| n.to_string())
        ));
    }
    let mut state = StateDict::new();
    for (name, t) in tensors {
        let bytes = storage(&t.storage)?;
        state.insert(name.clone(), materialise(&name, &t, bytes)?);
    }
    Ok(TorchFile { state, container })
}

/// Read a zip-serialized checkpoint.
pub fn read_zip(b: &[u8]) -> Result<TorchFile, String> {
    let entries = zip::read_entries(b)?;
    let pkl = entries
        .iter()
        .find(|e| e.name.ends_with("/data.pkl") || e.name == "data.pkl")
        .ok_or("zip archive without `data.pkl`: not a PyTorch checkpoint")?;
    let prefix = pkl.name.trim_end_matches("data.pkl").to_string();
    if let Some(bo) = entries.iter().find(|e| e.name == format!("{prefix}byteorder")) {
        if &b[bo.start..bo.start + bo.len] != b"little" {
            return Err("big-endian checkpoints are not supported".into());
        }
    }
    let by_name: HashMap<&str, &zip::ZipEntry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut pos = 0;
    let root = pickle::unpickle(&b[pkl.start..pkl.start + pkl.len], &mut pos, &mut persistent_id).map_err(|e| e.0)?;
    let (tensors, container) = select_state(&root)?;
    let lookup = |s: &StorageRef| -> Result<&'_ [u8], String> {
        let name = format!("{prefix}data/{}", s.key);
        let e = by_name.get(name.as_str()).ok_or_else(|| format!("storage `{name}` missing from the archive"))?;
        let need = s.numel.checked_mul(s.dtype.size() as u64).unwrap_or(u64::MAX);
        if (e.len as u64) < need {
            return Err(format!("truncated: storage `{name}` has {} bytes, {need} declared", e.len));
        }
        Ok(&b[e.start..e.start + e.len])
    };
    collect(tensors, container, b.len(), &lookup)
}

/// Read a legacy-serialized checkpoint.
pub fn read_legacy(b: &[u8]) -> Result<TorchFile, String> {
    let mut pos = 0;
    let mut no_pid = |_: Value| Err(pickle::PickleError("unexpected persistent id in the header".into()));
    let magic = pickle::unpickle(b, &mut pos, &mut no_pid).map_err(|e| e.0)?;
    if !matches!(&magic, Value::BigInt(m) if m.as_slice() == LEGACY_MAGIC) {
        return Err("not a legacy PyTorch file (bad magic number)".into());
    }
    let protocol = pickle::unpickle(b, &mut pos, &mut no_pid).map_err(|e| e.0)?;
    match &protocol {
        Value::Int(1001) => {}
        Value::Int(v) => return Err(format!("unsupported legacy protocol version {v}")),
        other => return Err(format!("damaged legacy header: the protocol version is {}, not an int", other.kind())),
    }
    let sys_info = pickle::unpickle(b, &mut pos, &mut no_pid).map_err(|e| e.0)?;
    if let Some(Value::Bool(false)) = pickle::dict_get(&sys_info, "little_endian") {
        return Err("big-endian checkpoints are not supported".into());
    }
    // Record every storage's element type as its persistent id goes by: the raw storages that
    // follow the pickles carry element counts, not byte lengths.
    let mut dtypes: HashMap<String, StorageDType> = HashMap::new();
    let mut record = |pid: Value| {
        let v = persistent_id(pid)?;
        if let Value::Storage(s) = &v {
            dtypes.insert(s.key.clone(), s.dtype);
        }
        Ok(v)
    };
    let root = pickle::unpickle(b, &mut pos, &mut record).map_err(|e| e.0)?;
    let keys = pickle::unpickle(b, &mut pos, &mut no_pid).map_err(|e| e.0)?;
    let Value::List(keys) = &keys else {
        return Err("legacy file without its list of storage keys".into());
    };
    let keys: Vec<String> = keys
        .borrow()
        .iter()
        .map(|k| match k {
            Value::Str(s) => Ok(s.clone()),
            _ => Err("storage key is not a string".to_string()),
        })
        .collect::<Result<_, _>>()?;
    // Storages follow in the order of `keys`: an int64 element count, then the raw bytes.
    let (tensors, container) = select_state(&root)?;
    let mut ranges: HashMap<String, (usize, usize)> = HashMap::new();
    for key in &keys {
        let n = b.get(pos..pos + 8).ok_or_else(|| format!("truncated: storage `{key}` header missing"))?;
        let numel = u64::from_le_bytes(n.try_into().unwrap());
        pos += 8;
        let &dtype = dtypes.get(key).ok_or_else(|| format!("storage `{key}` is listed but no tensor references it"))?;
        let len = numel
            .checked_mul(dtype.size() as u64)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| pos.checked_add(l).is_some_and(|e| e <= b.len()))
            .ok_or_else(|| format!("truncated: storage `{key}` declares {numel} elements beyond the end of the file"))?;
        ranges.insert(key.clone(), (pos, len));
        pos += len;
    }
    let lookup = |s: &StorageRef| -> Result<&'_ [u8], String> {
        let &(start, len) = ranges.get(&s.key).ok_or_else(|| format!("storage `{}` not found in the file", s.key))?;
        Ok(&b[start..start + len])
    };
    collect(tensors, container, b.len(), &lookup)
}
