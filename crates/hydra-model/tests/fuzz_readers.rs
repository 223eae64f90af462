//! Property tests (fuzzing) of the weight readers: any mutation of a valid file gives a weight
//! file or a clean error, never a panic, quickly. CI runs the default 256 cases per property;
//! longer runs: `PROPTEST_CASES=100000 cargo test --release -p hydra-model --test fuzz_readers`.

use std::path::Path;

use hydra_model::state::{RawTensor, StateDict};
use hydra_model::weights::{self, native, safetensors};
use proptest::prelude::*;

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pytorch").join(name)).unwrap()
}

fn small_state() -> StateDict {
    let mut sd = StateDict::new();
    sd.insert("a.weight", RawTensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    sd.insert("a.num_batches_tracked", RawTensor::i64(vec![], vec![3]));
    sd
}

/// Apply `edits` (position, byte) and truncate to `len` (a fraction of the length).
fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: f64) -> Vec<u8> {
    let n = b.len();
    for &(i, v) in edits {
        b[i % n] = v;
    }
    let keep = ((n as f64) * cut).ceil() as usize;
    b.truncate(keep.min(n));
    b
}

proptest! {
    #[test]
    fn torch_zip(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let _ = weights::from_bytes(Path::new("f.pth"), &mutate(seed("tiny_zip.pth"), &edits, cut));
    }

    #[test]
    fn torch_legacy(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let _ = weights::from_bytes(Path::new("f.ckpt"), &mutate(seed("tiny_legacy.ckpt"), &edits, cut));
    }

    #[test]
    fn safetensors_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = safetensors::write(&small_state(), &Default::default());
        let _ = weights::from_bytes(Path::new("f.safetensors"), &mutate(b, &edits, cut));
    }

    #[test]
    fn native_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = native::write(&small_state(), &Default::default()).unwrap();
        let _ = weights::from_bytes(Path::new("f.bpk"), &mutate(b, &edits, cut));
    }

    #[test]
    fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = weights::from_bytes(Path::new("f"), &b);
        let mut pos = 0;
        let _ = weights::pickle::unpickle(&b, &mut pos, &mut |v| Ok(v));
    }
}
