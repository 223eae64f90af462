//! hydra's native format: a burnpack container (Burn's own format) holding the tensors under
//! their reference keys, with the network configuration and a checksum of the tensors in its
//! metadata. Training checkpoints are burnpack files too (see [`CHECKPOINT_KEY`]).
//!
//! The reader checks the fixed header itself before handing the file to burnpack, so that a
//! damaged one is named precisely (version, metadata length beyond the file), and refuses
//! tensors whose data overlap (which would let a small file expand into many large tensors).

use std::collections::BTreeMap;

use burn_pack::{Bytes, DType, Error as PackError, Reader, Tensor as PackTensor, Writer, FORMAT_VERSION, HEADER_SIZE, MAX_METADATA_SIZE};

use super::checksum::{self, Checksum};
use crate::state::{RawTensor, StateDict, TensorValues};
use hydra_core::text::one_line;

/// File extension of the native format.
pub const EXTENSION: &str = "bpk";

/// Metadata key holding the network configuration (JSON).
pub const CONFIG_KEY: &str = "hydra.config";

/// Metadata key of a hydra training checkpoint (its network tensors are under `model/`).
pub const CHECKPOINT_KEY: &str = "hydra.checkpoint";

/// Whether `b` starts like a burnpack container ("BURN" magic, little-endian u32).
pub fn looks_native(b: &[u8]) -> bool {
    b.len() >= 4 && u32::from_le_bytes(b[..4].try_into().unwrap()) == 0x4255_524E
}

fn dtype_name(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("F32"),
        DType::I64 => Some("I64"),
        _ => None,
    }
}

/// Serialise `state` with `metadata`, adding the checksum of the tensors.
pub fn write(state: &StateDict, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let mut sum = Checksum::new();
    let tensors = state
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = match &t.values {
                TensorValues::F32(v) => (DType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
                TensorValues::I64(v) => (DType::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
            };
            sum.add(name, dtype_name(dtype).expect("F32 or I64"), &t.shape, &bytes);
            PackTensor::new(name.to_string(), dtype, t.shape.clone(), None, Bytes::from_bytes_vec(bytes))
        })
        .collect();
    let mut w = Writer::new(tensors);
    for (k, v) in metadata.iter().filter(|(k, _)| k.as_str() != checksum::KEY) {
        w = w.with_metadata(k, v);
    }
    w = w.with_metadata(checksum::KEY, &sum.value());
    let bytes = w.into_bytes().map_err(|e| e.to_string())?;
    Ok(bytes.to_vec())
}

/// Check the fixed header: version, and a metadata length that fits the file.
fn check_header(b: &[u8]) -> Result<(), String> {
    if b.len() < HEADER_SIZE {
        return Err(format!("truncated: {} bytes, shorter than the {HEADER_SIZE}-byte burnpack header", b.len()));
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version > FORMAT_VERSION {
        return Err(format!("burnpack format version {version}, newer than the {FORMAT_VERSION} this hydra reads (or a damaged header)"));
    }
    let meta = u32::from_le_bytes(b[6..10].try_into().unwrap()) as u64;
    if meta > MAX_METADATA_SIZE as u64 {
        return Err(format!("damaged header: the metadata length field says {meta} bytes, more than the {MAX_METADATA_SIZE} burnpack allows"));
    }
    let after = (b.len() - HEADER_SIZE) as u64;
    if meta > after {
        return Err(format!("truncated or damaged: the header says {meta} bytes of metadata, but only {after} follow it"));
    }
    Ok(())
}

/// burnpack's error, said in terms of the file.
fn pack_error(e: PackError, meta_end: usize) -> String {
    one_line(&pack_error_text(e, meta_end))
}

fn pack_error_text(e: PackError, meta_end: usize) -> String {
    match e {
        PackError::MetadataDeserializationError(d) => format!("damaged metadata (CBOR, bytes {HEADER_SIZE}..{meta_end}): {d}"),
        PackError::ValidationError(d) => format!("damaged tensor table: {d}"),
        PackError::InvalidVersion => "unsupported burnpack version".into(),
        other => format!("damaged: {other}"),
    }
}

/// Refuse two tensors whose data overlap. burnpack hands out views into the one buffer, so
/// their addresses locate them in it.
fn check_overlaps(spans: &mut [(usize, usize, String)]) -> Result<(), String> {
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(one_line(&format!("damaged tensor table: the data of tensors `{}` and `{}` overlap", w[0].2, w[1].2)));
        }
    }
    Ok(())
}

/// Read tensors (in name order) and metadata, verifying the checksum when there is one.
pub fn read(b: &[u8]) -> Result<(StateDict, BTreeMap<String, String>), String> {
    check_header(b)?;
    let meta_end = HEADER_SIZE + u32::from_le_bytes(b[6..10].try_into().unwrap()) as usize;
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(b.to_vec())).map_err(|e| pack_error(e, meta_end))?;
    let metadata: BTreeMap<String, String> = reader.metadata().clone().into_iter().collect();
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    for t in reader.into_tensors().map_err(|e| pack_error(e, meta_end))? {
        let (name, dtype, shape, _, bytes) = t.into_parts().map_err(|e| pack_error(e, meta_end))?;
        let shape: Vec<usize> = shape.iter().copied().collect();
        let Some(dname) = dtype_name(dtype) else {
            return Err(format!("tensor `{name}`: unsupported dtype {dtype:?}"));
        };
        let es: usize = if dtype == DType::F32 { 4 } else { 8 };
        let need = shape.iter().try_fold(es, |a, &d| a.checked_mul(d));
        if need != Some(bytes.len()) {
            return Err(format!("tensor `{name}`: {} bytes for shape {shape:?}", bytes.len()));
        }
        if !bytes.is_empty() {
            let at = bytes.as_ptr() as usize;
            spans.push((at, at + bytes.len(), name.clone()));
        }
        parts.push((name, dname, shape, bytes));
    }
    // Before anything is decoded: overlapping tensors could expand a small file without end.
    check_overlaps(&mut spans)?;
    let mut state = StateDict::new();
    let mut sum = Checksum::new();
    for (name, dname, shape, bytes) in parts {
        let raw: &[u8] = &bytes;
        sum.add(&name, dname, &shape, raw);
        let t = if dname == "F32" {
            RawTensor::f32(shape, raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        } else {
            RawTensor::i64(shape, raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        };
        state.insert(name, t);
    }
    sum.verify(&metadata)?;
    Ok((state, metadata))
}
