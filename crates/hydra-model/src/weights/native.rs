//! hydra's native format: a burnpack container (Burn's own format) holding the tensors under
//! their reference keys, with the network configuration in its metadata.

use std::collections::BTreeMap;

use burn_pack::{Bytes, DType, Reader, Tensor as PackTensor, Writer};

use crate::state::{RawTensor, StateDict, TensorValues};

/// File extension of the native format.
pub const EXTENSION: &str = "bpk";

/// Metadata key holding the network configuration (JSON).
pub const CONFIG_KEY: &str = "hydra.config";

/// Whether `b` starts like a burnpack container ("BURN" magic, little-endian u32).
pub fn looks_native(b: &[u8]) -> bool {
    b.len() >= 4 && u32::from_le_bytes(b[..4].try_into().unwrap()) == 0x4255_524E
}

/// Serialise `state` with `metadata`.
pub fn write(state: &StateDict, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let tensors = state
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = match &t.values {
                TensorValues::F32(v) => (DType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
                TensorValues::I64(v) => (DType::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
            };
            PackTensor::new(name.to_string(), dtype, t.shape.clone(), None, Bytes::from_bytes_vec(bytes))
        })
        .collect();
    let mut w = Writer::new(tensors);
    for (k, v) in metadata {
        w = w.with_metadata(k, v);
    }
    let bytes = w.into_bytes().map_err(|e| e.to_string())?;
    Ok(bytes.to_vec())
}

/// Read tensors (in name order) and metadata.
pub fn read(b: &[u8]) -> Result<(StateDict, BTreeMap<String, String>), String> {
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(b.to_vec())).map_err(|e| e.to_string())?;
    let metadata: BTreeMap<String, String> = reader.metadata().clone().into_iter().collect();
    let mut state = StateDict::new();
    for t in reader.into_tensors().map_err(|e| e.to_string())? {
        let (name, dtype, shape, _, bytes) = t.into_parts().map_err(|e| e.to_string())?;
        let shape: Vec<usize> = shape.iter().copied().collect();
        let numel: usize = shape.iter().product();
        let raw: &[u8] = &bytes;
        let es = match dtype {
            DType::F32 => 4,
            DType::I64 => 8,
            other => return Err(format!("tensor `{name}`: unsupported dtype {other:?}")),
        };
        if raw.len() != numel * es {
            return Err(format!("tensor `{name}`: {} bytes for shape {shape:?}", raw.len()));
        }
        let t = match dtype {
            DType::F32 => RawTensor::f32(shape, raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
            _ => RawTensor::i64(shape, raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
        };
        state.insert(name, t);
    }
    Ok((state, metadata))
}
