//! Bad weight files are refused with a clear error naming the file: truncated or corrupted
//! checkpoints and safetensors, pickles holding objects other than tensors (never executed),
//! huge declared shapes (bounded memory), wrong shapes, another class count.

use std::path::Path;

use burn::prelude::*;
use hydra_model::weights::{self, LoadScope};
use hydra_model::{HydraNetConfig, WeightsError};

mod common;
use common::{fixtures, scratch};

fn read_bytes(name: &str, bytes: &[u8]) -> Result<weights::WeightFile, WeightsError> {
    let dir = scratch(name);
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    weights::read(&p)
}

fn expect_clear(e: &WeightsError, name: &str) {
    let msg = e.to_string();
    assert!(msg.contains(name), "names the file: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn truncated_checkpoints_at_any_point() {
    for f in ["hydranet40_s0.ckpt", "hydranet40_s0_zip_f16_module.pth", "mobilenet_v2_tv_s0_as_reference.safetensors"] {
        let bytes = std::fs::read(fixtures().join(f)).unwrap();
        for frac in [0.0, 0.001, 0.01, 0.2, 0.5, 0.9, 0.9999] {
            let n = (bytes.len() as f64 * frac) as usize;
            let e = read_bytes(&format!("cut-{f}"), &bytes[..n]).unwrap_err();
            expect_clear(&e, &format!("cut-{f}"));
            assert!(matches!(e, WeightsError::Corrupt { .. } | WeightsError::UnknownFormat { .. }), "{f} cut at {frac}: {e:?}");
        }
    }
}

#[test]
fn pickles_with_code_are_refused_without_running_it() {
    let _ = std::fs::remove_file("/tmp/hydra_pwned");
    for f in ["evil_reduce_zip.pth", "evil_reduce_legacy.ckpt"] {
        let e = weights::read(&fixtures().join(f)).unwrap_err();
        expect_clear(&e, f);
        let msg = e.to_string();
        assert!(msg.contains("posix.system") && msg.contains("never executes pickle code"), "{msg}");
    }
    assert!(!Path::new("/tmp/hydra_pwned").exists(), "the pickle's payload ran");
    let e = weights::read(&fixtures().join("object_in_checkpoint.pth")).unwrap_err();
    assert!(e.to_string().contains("argparse.Namespace"), "{e}");
}

#[test]
fn huge_declared_shapes_are_refused_before_allocating() {
    // safetensors claiming a 10^18-element tensor in a tiny file.
    let header = r#"{"w":{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,16]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(&[0u8; 16]);
    let e = read_bytes("huge.safetensors", &b).unwrap_err();
    assert!(e.to_string().contains("bytes for shape"), "{e}");
    // A header length beyond the file.
    let mut b = (1u64 << 40).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    assert!(read_bytes("hugeheader.safetensors", &b).is_err());
    // A legacy pickle whose storage declares 2^40 elements: the reader checks the size against
    // the file before reading (this returns quickly and uses no memory).
    let bytes = std::fs::read(fixtures().join("tiny_legacy.ckpt")).unwrap();
    // The storage sizes follow the pickles as little-endian u64 element counts; set them all huge.
    let mut patched = bytes.clone();
    let mut found = 0;
    for i in 0..patched.len().saturating_sub(8) {
        let v = u64::from_le_bytes(patched[i..i + 8].try_into().unwrap());
        if v == 108 || v == 5 || v == 1 {
            // 4·3·3·3, 5 and 1 elements: candidate counts right after the key list.
            if i > patched.len() - 600 {
                patched[i..i + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                found += 1;
            }
        }
    }
    assert!(found > 0);
    let t = std::time::Instant::now();
    let r = read_bytes("huge_legacy.ckpt", &patched);
    assert!(r.is_err(), "a storage of 2^40 elements in a 1 KB file must be refused");
    assert!(t.elapsed().as_secs() < 2);
}

#[test]
fn corrupted_bytes_never_panic() {
    for f in ["tiny_zip.pth", "tiny_legacy.ckpt"] {
        let bytes = std::fs::read(fixtures().join(f)).unwrap();
        for i in (0..bytes.len()).step_by(7) {
            for v in [0x00u8, 0xff, 0x80, b'c'] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = read_bytes(&format!("flip-{f}"), &b); // Ok or a clean error; a panic fails the test.
            }
        }
    }
}

#[test]
fn wrong_shapes_and_class_counts_name_the_key() {
    let device = Device::flex();
    let file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    let e = file.apply(HydraNetConfig::new(6).init(&device), LoadScope::Full).unwrap_err();
    expect_clear(&e, "hydranet40_s0.ckpt");
    assert!(e.to_string().contains("`segm.weight`: the file has [40, 256, 3, 3], the model expects [6, 256, 3, 3]"));
    // A tensor reshaped in the file.
    let mut bad = file.clone();
    let t = bad.state.get("conv3.weight").unwrap().clone();
    bad.state.insert("conv3.weight", hydra_model::RawTensor::f32(vec![256, 24], t.to_f32()));
    let e = bad.apply(HydraNetConfig::new(40).init(&device), LoadScope::Full).unwrap_err();
    assert!(e.to_string().contains("`conv3.weight`: the file has [256, 24], the model expects [256, 24, 1, 1]"), "{e}");
}

#[test]
fn damaged_native_files_are_refused() {
    let device = Device::flex();
    let net = HydraNetConfig::new(6).init(&device);
    let dir = scratch("native");
    let p = dir.join("w.bpk");
    weights::save(&net, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    for n in [3, 10, 200, bytes.len() / 2, bytes.len() - 1] {
        let e = read_bytes("cut.bpk", &bytes[..n]).unwrap_err();
        expect_clear(&e, "cut.bpk");
    }
}
