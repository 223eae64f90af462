//! Forging weight files byte by byte, for the tests of hostile and damaged input
//! (`mod forge;`): stored zip archives with chosen entries, PyTorch-style pickles and
//! checkpoints (zip and legacy), safetensors with a chosen header, deep pickle nests.
#![allow(dead_code)]

use hydra_model::state::{RawTensor, StateDict, TensorValues};

// ---------------------------------------------------------------- zip

/// A local file header for a stored entry, followed by nothing (the data comes after it).
pub fn local_header(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes()); // version needed
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    h.extend_from_slice(&[0; 4]); // time, date
    h.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    h.extend_from_slice(&(data.len() as u32).to_le_bytes());
    h.extend_from_slice(&(data.len() as u32).to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // extra
    h.extend_from_slice(name.as_bytes());
    h
}

/// A central directory record for a stored entry whose local header is at `local`.
pub fn central_record(name: &str, crc: u32, len: usize, local: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes()); // made by
    h.extend_from_slice(&20u16.to_le_bytes()); // needed
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // method
    h.extend_from_slice(&[0; 4]); // time, date
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&(len as u32).to_le_bytes());
    h.extend_from_slice(&(len as u32).to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
    h.extend_from_slice(&[0; 4]); // external attributes
    h.extend_from_slice(&(local as u32).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

/// The end-of-central-directory record.
pub fn eocd(count: usize, cd_size: usize, cd_offset: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    h.extend_from_slice(&[0; 4]); // disk numbers
    h.extend_from_slice(&(count as u16).to_le_bytes());
    h.extend_from_slice(&(count as u16).to_le_bytes());
    h.extend_from_slice(&(cd_size as u32).to_le_bytes());
    h.extend_from_slice(&(cd_offset as u32).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h
}

/// A stored zip archive of `entries`, in order, CRCs correct.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for (name, data) in entries {
        cd.extend(central_record(name, crc32fast::hash(data), data.len(), out.len()));
        out.extend(local_header(name, data));
        out.extend_from_slice(data);
    }
    let cd_offset = out.len();
    out.extend_from_slice(&cd);
    out.extend(eocd(entries.len(), cd.len(), cd_offset));
    out
}

// ---------------------------------------------------------------- pickles

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn int(out: &mut Vec<u8>, v: usize) {
    out.push(b'J');
    out.extend_from_slice(&(v as i32).to_le_bytes());
}

fn int_tuple(out: &mut Vec<u8>, v: &[usize]) {
    out.push(b'(');
    for &x in v {
        int(out, x);
    }
    out.push(b't');
}

/// The pickle (protocol 2) of a dict `{name: tensor}` as `torch.save` writes a state dict:
/// each tensor `_rebuild_tensor_v2` of a float storage named by its index, contiguous.
/// `legacy` spells the persistent id as the legacy serialization does (6 fields).
pub fn state_dict_pickle(tensors: &[(&str, Vec<usize>)], legacy: bool) -> Vec<u8> {
    let mut p = b"\x80\x02}(".to_vec();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        unicode(&mut p, name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        // persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel[, None])
        p.push(b'(');
        unicode(&mut p, "storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        unicode(&mut p, &i.to_string());
        unicode(&mut p, "cpu");
        int(&mut p, shape.iter().product());
        if legacy {
            p.push(b'N');
        }
        p.extend_from_slice(b"tQ");
        int(&mut p, 0);
        int_tuple(&mut p, shape);
        let mut stride = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        int_tuple(&mut p, &stride);
        p.extend_from_slice(b"\x89}tR"); // requires_grad False, empty hooks; REDUCE
    }
    p.extend_from_slice(b"u.");
    p
}

/// Little-endian bytes of `v`.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A zip checkpoint (`torch.save`, PyTorch ≥ 1.6) of float tensors.
pub fn torch_zip(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let spec: Vec<(&str, Vec<usize>)> = tensors.iter().map(|(n, s, _)| (*n, s.clone())).collect();
    torch_zip_with_pickle(&state_dict_pickle(&spec, false), tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect())
}

/// A zip checkpoint with the given `data.pkl` and storages `data/0`, `data/1`, ...
pub fn torch_zip_with_pickle(pickle: &[u8], storages: Vec<Vec<u8>>) -> Vec<u8> {
    let names: Vec<String> = (0..storages.len()).map(|i| format!("archive/data/{i}")).collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("archive/data.pkl", pickle), ("archive/byteorder", b"little")];
    for (n, s) in names.iter().zip(&storages) {
        entries.push((n, s));
    }
    zip(&entries)
}

/// A legacy checkpoint (`torch.save`, PyTorch ≤ 1.5) of float tensors.
pub fn torch_legacy(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let spec: Vec<(&str, Vec<usize>)> = tensors.iter().map(|(n, s, _)| (*n, s.clone())).collect();
    let mut b = legacy_header();
    b.extend(state_dict_pickle(&spec, true));
    // The storage keys, then each storage: element count and bytes.
    b.extend_from_slice(b"\x80\x02(");
    for i in 0..tensors.len() {
        unicode(&mut b, &i.to_string());
    }
    b.extend_from_slice(b"l.");
    for (_, _, v) in tensors {
        b.extend_from_slice(&(v.len() as u64).to_le_bytes());
        b.extend(f32_bytes(v));
    }
    b
}

/// The three pickles a legacy file starts with: magic number, protocol 1001, system info.
pub fn legacy_header() -> Vec<u8> {
    let mut b = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    b.extend_from_slice(b"\x80\x02M\xe9\x03.");
    b.extend_from_slice(b"\x80\x02}.");
    b
}

/// A pickle of `n` lists, each inside the previous (EMPTY_LIST × n, APPEND × (n − 1)).
pub fn nested_lists(n: usize) -> Vec<u8> {
    let mut b = b"\x80\x02".to_vec();
    b.extend(std::iter::repeat_n(b']', n));
    b.extend(std::iter::repeat_n(b'a', n - 1));
    b.push(b'.');
    b
}

/// A pickle of a dict `{"state_dict": {...}}` whose other entry `"extra"` nests `n` tuples
/// (EMPTY_TUPLE, TUPLE1 × (n − 1)), around a state dict of one tensor named `w`.
pub fn state_dict_beside_nested_tuples(n: usize) -> Vec<u8> {
    let inner = state_dict_pickle(&[("w", vec![2])], false);
    let mut p = b"\x80\x02}(".to_vec();
    unicode(&mut p, "state_dict");
    p.extend_from_slice(&inner[2..inner.len() - 1]); // without PROTO and STOP
    unicode(&mut p, "extra");
    p.push(b')');
    p.extend(std::iter::repeat_n(0x85u8, n - 1));
    p.extend_from_slice(b"u.");
    p
}

// ---------------------------------------------------------------- safetensors

/// A safetensors file with the given JSON header text and data.
pub fn safetensors_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

// ---------------------------------------------------------------- state dicts

/// A small state dict: `a.weight` (2×3) holding 1..6 and `a.num_batches_tracked`.
pub fn small_state() -> StateDict {
    let mut sd = StateDict::new();
    sd.insert("a.weight", RawTensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    sd.insert("a.num_batches_tracked", RawTensor::i64(vec![], vec![3]));
    sd
}

/// Where the little-endian bytes of `value` first occur in `b`.
pub fn find_f32(b: &[u8], value: f32) -> usize {
    let pat = value.to_le_bytes();
    b.windows(4).position(|w| w == pat).unwrap_or_else(|| panic!("{value} not found"))
}

/// The float values of a state dict's entry.
pub fn floats(sd: &StateDict, key: &str) -> Vec<f32> {
    match &sd.get(key).unwrap_or_else(|| panic!("no {key}")).values {
        TensorValues::F32(v) => v.clone(),
        TensorValues::I64(_) => panic!("{key} is an integer tensor"),
    }
}

/// The byte positions of the central directory records of a zip made by [`zip`].
pub fn zip_records(b: &[u8]) -> Vec<usize> {
    let e = b.len() - 22;
    let count = u16::from_le_bytes([b[e + 10], b[e + 11]]) as usize;
    let mut at = u32::from_le_bytes(b[e + 16..e + 20].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(at);
        let n = u16::from_le_bytes([b[at + 28], b[at + 29]]) as usize;
        at += 46 + n;
    }
    out
}
