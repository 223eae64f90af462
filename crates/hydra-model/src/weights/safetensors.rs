//! safetensors: an 8-byte little-endian header length, a JSON header, raw little-endian data.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use crate::state::{RawTensor, StateDict, TensorValues};

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// Whether `b` starts like a safetensors file.
pub fn looks_safetensors(b: &[u8]) -> bool {
    if b.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(b[..8].try_into().unwrap());
    n >= 2 && n <= MAX_HEADER && b[8] == b'{'
}

/// Read all tensors (in data order) and the `__metadata__` strings.
pub fn read(b: &[u8]) -> Result<(StateDict, BTreeMap<String, String>), String> {
    if b.len() < 8 {
        return Err("truncated: shorter than the 8-byte header length".into());
    }
    let n = u64::from_le_bytes(b[..8].try_into().unwrap());
    if n > MAX_HEADER || n > (b.len() - 8) as u64 {
        return Err(format!("truncated or damaged: header of {n} bytes in a {}-byte file", b.len()));
    }
    let header_end = 8 + n as usize;
    let header: Map<String, Json> =
        serde_json::from_slice(&b[8..header_end]).map_err(|e| format!("damaged JSON header: {e}"))?;
    let data = &b[header_end..];
    let mut metadata = BTreeMap::new();
    let mut entries: Vec<(usize, String, RawTensor)> = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            if let Json::Object(m) = info {
                for (k, v) in m {
                    if let Json::String(s) = v {
                        metadata.insert(k, s);
                    }
                }
            }
            continue;
        }
        let dtype = info.get("dtype").and_then(Json::as_str).ok_or_else(|| format!("tensor `{name}`: no dtype"))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("tensor `{name}`: no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or_else(|| format!("tensor `{name}`: bad shape")))
            .collect::<Result<_, _>>()?;
        let offsets = info
            .get("data_offsets")
            .and_then(Json::as_array)
            .filter(|a| a.len() == 2)
            .ok_or_else(|| format!("tensor `{name}`: no data_offsets"))?;
        let (start, end) = match (offsets[0].as_u64(), offsets[1].as_u64()) {
            (Some(s), Some(e)) if s <= e && e <= data.len() as u64 => (s as usize, e as usize),
            _ => return Err(format!("truncated or damaged: tensor `{name}` lies outside the data ({} bytes)", data.len())),
        };
        let es = match dtype {
            "F64" | "I64" => 8,
            "F32" | "I32" => 4,
            "F16" | "BF16" | "I16" => 2,
            "I8" | "U8" | "BOOL" => 1,
            other => return Err(format!("tensor `{name}`: unsupported dtype {other}")),
        };
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("tensor `{name}`: shape overflows"))?;
        if numel.checked_mul(es) != Some(end - start) {
            return Err(format!("tensor `{name}`: {} bytes for shape {shape:?} of {dtype}", end - start));
        }
        let raw = &data[start..end];
        let chunks = raw.chunks_exact(es);
        let t = match dtype {
            "F32" => RawTensor::f32(shape, chunks.map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
            "F64" => RawTensor::f32(shape, chunks.map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()),
            "F16" => RawTensor::f32(shape, chunks.map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect()),
            "BF16" => RawTensor::f32(shape, chunks.map(|c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect()),
            "I64" => RawTensor::i64(shape, chunks.map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
            "I32" => RawTensor::i64(shape, chunks.map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
            "I16" => RawTensor::i64(shape, chunks.map(|c| i16::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
            "I8" => RawTensor::i64(shape, chunks.map(|c| c[0] as i8 as i64).collect()),
            _ => RawTensor::i64(shape, chunks.map(|c| c[0] as i64).collect()),
        };
        entries.push((start, name, t));
    }
    entries.sort_by_key(|(s, _, _)| *s);
    Ok((entries.into_iter().map(|(_, k, v)| (k, v)).collect(), metadata))
}

/// Serialise a state dict (in its order) with `metadata`.
pub fn write(state: &StateDict, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = Map::new();
    let mut offset = 0usize;
    let mut data = Vec::new();
    for (name, t) in state.iter() {
        let (dtype, bytes): (&str, Vec<u8>) = match &t.values {
            TensorValues::F32(v) => ("F32", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorValues::I64(v) => ("I64", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": t.shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
        data.extend_from_slice(&bytes);
    }
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut h = serde_json::to_vec(&Json::Object(header)).expect("JSON of strings and numbers");
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}
