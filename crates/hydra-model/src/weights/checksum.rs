//! The checksum hydra writes into the metadata of its own files (burnpack exports and
//! training checkpoints, safetensors exports) and verifies when it reads them back.
//!
//! `hydra.crc32` holds eight hex digits: the CRC-32 over the tensors in name order, each
//! contributing its name and the CRC-32 of its name, dtype, shape and stored bytes. Files
//! without the key (the official checkpoints, files from other tools or older hydra) are read
//! as before; a file whose tensors do not give the recorded value is refused as damaged.

use std::collections::BTreeMap;

use crc32fast::Hasher;

/// Metadata key of the checksum.
pub const KEY: &str = "hydra.crc32";

fn update_len(h: &mut Hasher, n: usize) {
    h.update(&(n as u64).to_le_bytes());
}

/// The checksum of a set of tensors, accumulated in any order.
#[derive(Debug, Default)]
pub struct Checksum {
    parts: Vec<(String, u32)>,
}

impl Checksum {
    /// A checksum of no tensors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a tensor: its name, dtype as safetensors spells it (`F32`, `I64`, ...), shape and
    /// little-endian bytes as stored.
    pub fn add(&mut self, name: &str, dtype: &str, shape: &[usize], data: &[u8]) {
        let mut h = Hasher::new();
        for s in [name, dtype] {
            update_len(&mut h, s.len());
            h.update(s.as_bytes());
        }
        update_len(&mut h, shape.len());
        for &d in shape {
            update_len(&mut h, d);
        }
        h.update(data);
        self.parts.push((name.to_string(), h.finalize()));
    }

    /// The value written under [`KEY`].
    pub fn value(&self) -> String {
        let mut parts: Vec<&(String, u32)> = self.parts.iter().collect();
        parts.sort();
        let mut h = Hasher::new();
        for (name, crc) in parts {
            update_len(&mut h, name.len());
            h.update(name.as_bytes());
            h.update(&crc.to_le_bytes());
        }
        format!("{:08x}", h.finalize())
    }

    /// Check the value recorded in `metadata`, if there is one.
    pub fn verify(&self, metadata: &BTreeMap<String, String>) -> Result<(), String> {
        let Some(recorded) = metadata.get(KEY) else { return Ok(()) };
        let actual = self.value();
        if recorded.trim().eq_ignore_ascii_case(&actual) {
            Ok(())
        } else {
            Err(format!(
                "content does not match its checksum (`{KEY}` is {recorded:?}, the tensors give {actual:?}): damaged, or changed by a tool that kept hydra's metadata"
            ))
        }
    }
}
