//! safetensors: an 8-byte little-endian header length, a JSON header, raw little-endian data.
//!
//! Every damage is named precisely: a header length beyond the file, a header that is not
//! UTF-8 or not JSON (with the line and column), a tensor entry without its fields, data
//! offsets that end before they start, reach beyond the data or overlap another tensor's,
//! two tensors of one name, and (for files hydra wrote) tensors that do not match their
//! checksum.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Map, Value as Json};

use super::checksum::{self, Checksum};
use crate::state::{RawTensor, StateDict, TensorValues};

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// Whether `b` starts like a safetensors file: a header length, then `{`. The length is not
/// checked here, so that a damaged one is reported as such rather than as an unknown format.
pub fn looks_safetensors(b: &[u8]) -> bool {
    b.len() >= 10 && u64::from_le_bytes(b[..8].try_into().unwrap()) >= 2 && b[8] == b'{'
}

/// The header's top-level entries in file order, duplicates kept (a JSON map would silently
/// keep only the last of two tensors with one name).
struct Entries(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of tensor entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry::<String, Json>()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse the header: its entries, and where the data section starts.
fn header(b: &[u8]) -> Result<(Vec<(String, Json)>, usize), String> {
    if b.len() < 8 {
        return Err(format!("truncated: {} bytes, shorter than the 8-byte header length", b.len()));
    }
    let n = u64::from_le_bytes(b[..8].try_into().unwrap());
    if n > MAX_HEADER {
        return Err(format!("damaged: the header length field says {n} bytes, more than the {MAX_HEADER} safetensors allows"));
    }
    let after = (b.len() - 8) as u64;
    if n > after {
        return Err(format!("truncated or damaged: the header length field says {n} bytes, but only {after} follow it"));
    }
    let end = 8 + n as usize;
    let text = std::str::from_utf8(&b[8..end]).map_err(|e| {
        format!("damaged header: not UTF-8 text (an invalid byte at file offset {})", 8 + e.valid_up_to())
    })?;
    let entries: Entries = serde_json::from_str(text).map_err(|e| format!("damaged header (JSON, bytes 8..{end}): {e}"))?;
    Ok((entries.0, end))
}

fn element_size(name: &str, dtype: &str) -> Result<usize, String> {
    Ok(match dtype {
        "F64" | "I64" => 8,
        "F32" | "I32" => 4,
        "F16" | "BF16" | "I16" => 2,
        "I8" | "U8" | "BOOL" => 1,
        other => return Err(format!("tensor `{name}`: unsupported dtype {other}")),
    })
}

/// One tensor entry of the header: dtype, shape and data range (relative to the data).
fn entry(name: &str, info: &Json, data_len: usize) -> Result<(String, Vec<usize>, usize, usize), String> {
    let Json::Object(info) = info else {
        return Err(format!("damaged header: the entry of tensor `{name}` is not a JSON object"));
    };
    let dtype = info.get("dtype").and_then(Json::as_str).ok_or_else(|| format!("damaged header: tensor `{name}` has no string `dtype`"))?;
    let shape: Vec<usize> = info
        .get("shape")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("damaged header: tensor `{name}` has no `shape` list"))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or_else(|| format!("damaged header: tensor `{name}`: the shape holds {d}, not a size")))
        .collect::<Result<_, _>>()?;
    let offsets = info
        .get("data_offsets")
        .and_then(Json::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("damaged header: tensor `{name}` has no `data_offsets` pair"))?;
    let (Some(start), Some(end)) = (offsets[0].as_u64(), offsets[1].as_u64()) else {
        return Err(format!("damaged header: tensor `{name}`: data_offsets {} are not byte offsets", Json::Array(offsets.clone())));
    };
    if start > end {
        return Err(format!("damaged header: tensor `{name}`: data_offsets [{start}, {end}] end before they start"));
    }
    if end > data_len as u64 {
        return Err(format!("truncated or damaged: tensor `{name}`: data_offsets [{start}, {end}] reach beyond the {data_len} bytes of data"));
    }
    let (start, end) = (start as usize, end as usize);
    let es = element_size(name, dtype)?;
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("tensor `{name}`: shape {shape:?} overflows"))?;
    if numel.checked_mul(es) != Some(end - start) {
        return Err(format!("tensor `{name}`: {} bytes for shape {shape:?} of {dtype}", end - start));
    }
    Ok((dtype.to_string(), shape, start, end))
}

fn decode(dtype: &str, shape: Vec<usize>, raw: &[u8], es: usize) -> RawTensor {
    let chunks = raw.chunks_exact(es);
    match dtype {
        "F32" => RawTensor::f32(shape, chunks.map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
        "F64" => RawTensor::f32(shape, chunks.map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()),
        "F16" => RawTensor::f32(shape, chunks.map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect()),
        "BF16" => RawTensor::f32(shape, chunks.map(|c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect()),
        "I64" => RawTensor::i64(shape, chunks.map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
        "I32" => RawTensor::i64(shape, chunks.map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
        "I16" => RawTensor::i64(shape, chunks.map(|c| i16::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
        "I8" => RawTensor::i64(shape, chunks.map(|c| c[0] as i8 as i64).collect()),
        _ => RawTensor::i64(shape, chunks.map(|c| c[0] as i64).collect()),
    }
}

/// Read all tensors (in data order) and the `__metadata__` strings.
pub fn read(b: &[u8]) -> Result<(StateDict, BTreeMap<String, String>), String> {
    let (header, data_start) = header(b)?;
    let data = &b[data_start..];
    let mut metadata = BTreeMap::new();
    let mut entries: Vec<(String, String, Vec<usize>, usize, usize)> = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            let Json::Object(m) = info else {
                return Err("damaged header: `__metadata__` is not a JSON object".into());
            };
            for (k, v) in m {
                if let Json::String(s) = v {
                    metadata.insert(k.clone(), s.clone());
                }
            }
            continue;
        }
        let (dtype, shape, start, end) = entry(name, info, data.len())?;
        entries.push((name.clone(), dtype, shape, start, end));
    }
    let mut names: Vec<&str> = header.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("damaged header: two entries are named `{}`", w[0]));
    }
    entries.sort_by_key(|e| (e.3, e.4));
    // Empty tensors take no bytes and overlap nothing.
    let mut last: Option<&(String, String, Vec<usize>, usize, usize)> = None;
    for e in entries.iter().filter(|e| e.4 > e.3) {
        if let Some(p) = last.filter(|p| e.3 < p.4) {
            return Err(format!(
                "damaged header: the data of tensors `{}` (bytes {}..{}) and `{}` (bytes {}..{}) overlap",
                p.0, p.3, p.4, e.0, e.3, e.4
            ));
        }
        last = Some(e);
    }
    let mut sum = Checksum::new();
    let mut state = StateDict::new();
    for (name, dtype, shape, start, end) in entries {
        let raw = &data[start..end];
        sum.add(&name, &dtype, &shape, raw);
        let es = element_size(&name, &dtype)?;
        state.insert(name, decode(&dtype, shape, raw, es));
    }
    sum.verify(&metadata)?;
    Ok((state, metadata))
}

/// Serialise a state dict (in its order) with `metadata`, adding its checksum.
pub fn write(state: &StateDict, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = Map::new();
    let mut offset = 0usize;
    let mut data = Vec::new();
    let mut sum = Checksum::new();
    for (name, t) in state.iter() {
        let (dtype, bytes): (&str, Vec<u8>) = match &t.values {
            TensorValues::F32(v) => ("F32", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorValues::I64(v) => ("I64", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        sum.add(name, dtype, &t.shape, &bytes);
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": t.shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
        data.extend_from_slice(&bytes);
    }
    let mut metadata = metadata.clone();
    metadata.insert(checksum::KEY.to_string(), sum.value());
    header.insert("__metadata__".into(), json!(metadata));
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
