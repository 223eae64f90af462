//! Property tests (fuzzing) of the weight readers: any mutation of a valid file gives a weight
//! file or a clean error, never a panic, quickly. CI runs the default 256 cases per property;
//! longer runs: `PROPTEST_CASES=100000 cargo test --release -p hydra-model --test fuzz_readers`.
//!
//! Besides byte mutations, structure-aware generators build the damage a byte flip rarely
//! finds, each with an oracle for whether the file must load: pickle nests of every container
//! kind and depth, opcode soups that share and self-nest containers through the memo,
//! safetensors headers with repeated names and arbitrary (overlapping, outlying) ranges over
//! values that may be NaN, infinite or negative variances, zip archives with a repeated name
//! or an entry pointed into another; and every truncation of valid small files.

use std::collections::BTreeMap;
use std::path::Path;

use hydra_model::state::{RawTensor, StateDict};
use hydra_model::weights::{self, native, safetensors};
use proptest::prelude::*;

mod forge;

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pytorch").join(name)).unwrap()
}

fn small_state() -> StateDict {
    let mut sd = StateDict::new();
    sd.insert("a.weight", RawTensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    sd.insert("a.num_batches_tracked", RawTensor::i64(vec![], vec![3]));
    sd
}

/// What a read of a (possibly damaged) file must give: a weight file, or one line that names
/// the file; within a bound that only a hang or a runaway allocation would break. Undamaged,
/// the file must read back as written (`whole` = the original's tensors).
fn check(path: &str, bytes: &[u8], damaged: bool, whole: Option<&StateDict>) -> Result<(), TestCaseError> {
    let start = std::time::Instant::now();
    let r = weights::from_bytes(Path::new(path), bytes);
    prop_assert!(start.elapsed().as_secs_f64() < 10.0, "{path}: {:.1} s to read {} bytes", start.elapsed().as_secs_f64(), bytes.len());
    match r {
        Ok(f) => {
            if let (false, Some(want)) = (damaged, whole) {
                prop_assert_eq!(&f.state, want, "{} does not read back as written", path);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(damaged, "{path}: the undamaged file is refused: {msg}");
            prop_assert!(!msg.contains('\n'), "{path}: a message of several lines: {msg}");
            prop_assert!(msg.starts_with(path), "{path}: the message does not name the file: {msg}");
        }
    }
    Ok(())
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

/// A damaged legacy checkpoint whose storage key gained a newline (found by `torch_legacy` in
/// CI): the key is quoted with the newline escaped, and the refusal stays one line.
#[test]
fn a_damaged_key_is_quoted_on_one_line() {
    let b = seed("tiny_legacy.ckpt");
    let m = mutate(b, &[(13494869079311846406, 10)], 0.7852473823938649);
    let e = weights::from_bytes(Path::new("f.ckpt"), &m).unwrap_err().to_string();
    assert!(!e.contains('\n'), "several lines: {e}");
    assert!(e.contains("\\n"), "the newline is not shown escaped: {e}");
    assert!(e.starts_with("f.ckpt: "), "{e}");
}

proptest! {
    #[test]
    fn torch_zip(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = seed("tiny_zip.pth");
        let whole = weights::from_bytes(Path::new("f.pth"), &b).unwrap().state;
        let m = mutate(b.clone(), &edits, cut);
        check("f.pth", &m, m != b, Some(&whole))?;
    }

    #[test]
    fn torch_legacy(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = seed("tiny_legacy.ckpt");
        let whole = weights::from_bytes(Path::new("f.ckpt"), &b).unwrap().state;
        let m = mutate(b.clone(), &edits, cut);
        check("f.ckpt", &m, m != b, Some(&whole))?;
    }

    #[test]
    fn safetensors_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = safetensors::write(&small_state(), &Default::default());
        let m = mutate(b.clone(), &edits, cut);
        check("f.safetensors", &m, m != b, Some(&small_state()))?;
    }

    #[test]
    fn native_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0.0f64..=1.0) {
        let b = native::write(&small_state(), &Default::default()).unwrap();
        let m = mutate(b.clone(), &edits, cut);
        check("f.bpk", &m, m != b, Some(&small_state()))?;
    }

    #[test]
    fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..512)) {
        check("f", &b, true, None)?;
        let mut pos = 0;
        let _ = weights::pickle::unpickle(&b, &mut pos, &mut |v| Ok(v));
    }
}

// ---------------------------------------------------------------- structure-aware

fn no_pid(_: weights::pickle::Value) -> Result<weights::pickle::Value, weights::pickle::PickleError> {
    Err(weights::pickle::PickleError("no persistent ids".into()))
}

fn unpickle(b: &[u8]) -> Result<weights::pickle::Value, weights::pickle::PickleError> {
    let mut pos = 0;
    weights::pickle::unpickle(b, &mut pos, &mut no_pid)
}

/// A pickle nesting one container per entry of `kinds` (0 list, 1 dict, 2 tuple, 3 set)
/// around an int.
fn nest(kinds: &[u8]) -> Vec<u8> {
    let mut b = b"\x80\x02".to_vec();
    for k in kinds {
        b.extend_from_slice(match k {
            0 => &b"]"[..],
            1 => &b"}K\x01"[..],
            2 => &b"("[..],
            _ => &b"\x8f("[..],
        });
    }
    b.extend_from_slice(b"K\x05");
    for k in kinds.iter().rev() {
        b.extend_from_slice(match k {
            0 => &b"a"[..],
            1 => &b"s"[..],
            2 => &b"t"[..],
            _ => &b"\x90"[..],
        });
    }
    b.push(b'.');
    b
}

/// Opcodes that build, fill, share and memoise containers.
const SOUP: &[&[u8]] = &[
    b"]", b")", b"}", b"\x8f", b"(", b"a", b"e", b"t", b"l", b"d", b"s", b"u", b"\x90", b"\x91",
    b"\x85", b"\x86", b"\x87", b"K\x01", b"N", b"0", b"2", b"q\x00", b"q\x01", b"h\x00", b"h\x01", b"\x94",
];

/// A float that is often not an ordinary one.
fn wild_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -10.0f32..10.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => any::<f32>(),
    ]
}

const NAMES: [&str; 3] = ["a.weight", "b.running_var", "c.bias"];

/// Whether values are fit to load as tensor `name`.
fn sound(name: &str, v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite()) && !(name.ends_with("running_var") && v.iter().any(|&x| x < 0.0))
}

proptest! {
    #[test]
    fn pickle_nesting_of_any_depth(kinds in prop::collection::vec(0u8..4, 0..2500)) {
        let r = unpickle(&nest(&kinds));
        prop_assert_eq!(r.is_ok(), kinds.len() <= weights::pickle::MAX_DEPTH, "{} levels: {:?}", kinds.len(), r.err());
    }

    #[test]
    fn pickle_opcode_soup(ops in prop::collection::vec(prop::sample::select(SOUP), 0..600)) {
        let mut b = b"\x80\x02".to_vec();
        for op in &ops {
            b.extend_from_slice(op);
        }
        b.push(b'.');
        if let Ok(v) = unpickle(&b) {
            prop_assert!(format!("{v:?}").len() < 100_000, "a bounded print");
        }
    }

    #[test]
    fn safetensors_ranges_names_and_values(
        tensors in prop::collection::vec((0usize..3, 0usize..16, 0usize..5), 1..5),
        data in prop::collection::vec(wild_f32(), 0..20),
    ) {
        // Each tensor: a name, a first element and an element count, over `data`.
        let entries: Vec<String> = tensors.iter().map(|&(n, at, len)| format!(
            r#""{}":{{"dtype":"F32","shape":[{len}],"data_offsets":[{},{}]}}"#, NAMES[n], 4 * at, 4 * (at + len)
        )).collect();
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let file = forge::safetensors_raw(&format!("{{{}}}", entries.join(",")), &bytes);
        let mut names: Vec<usize> = tensors.iter().map(|t| t.0).collect();
        names.sort();
        names.dedup();
        let mut ranges: Vec<(usize, usize)> = tensors.iter().filter(|t| t.2 > 0).map(|t| (t.1, t.1 + t.2)).collect();
        ranges.sort();
        let must_load = names.len() == tensors.len()
            && tensors.iter().all(|t| t.1 + t.2 <= data.len())
            && ranges.windows(2).all(|w| w[1].0 >= w[0].1)
            && tensors.iter().all(|t| sound(NAMES[t.0], &data[t.1.min(data.len())..(t.1 + t.2).min(data.len())]));
        let r = weights::from_bytes(Path::new("f.safetensors"), &file);
        prop_assert_eq!(r.is_ok(), must_load, "{:?}", r.as_ref().err());
        if let Ok(f) = r {
            for &(n, at, len) in &tensors {
                let got = forge::floats(&f.state, NAMES[n]);
                prop_assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), data[at..at + len].iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn written_files_load_only_with_sound_values(values in prop::collection::vec(wild_f32(), 1..12), n in 0usize..3) {
        let mut sd = StateDict::new();
        sd.insert(NAMES[n], RawTensor::f32(vec![values.len()], values.clone()));
        let must_load = sound(NAMES[n], &values);
        for (name, b) in [("f.safetensors", safetensors::write(&sd, &BTreeMap::new())), ("f.bpk", native::write(&sd, &BTreeMap::new()).unwrap())] {
            let r = weights::from_bytes(Path::new(name), &b);
            prop_assert_eq!(r.is_ok(), must_load, "{}: {:?}", name, r.as_ref().err());
        }
    }

    #[test]
    fn zip_with_a_repeated_name_or_an_entry_pointed_elsewhere(which in 0usize..3, other in 0usize..3, repeat in any::<bool>()) {
        let pkl = forge::state_dict_pickle(&[("w", vec![2]), ("v", vec![1])], false);
        let names = ["archive/data.pkl", "archive/data/0", "archive/data/1"];
        let data: [Vec<u8>; 3] = [pkl, forge::f32_bytes(&[1.0, 2.0]), forge::f32_bytes(&[3.0])];
        let good = forge::zip(&[(names[0], &data[0]), (names[1], &data[1]), (names[2], &data[2])]);
        prop_assert!(weights::from_bytes(Path::new("f.pth"), &good).is_ok());
        let bad = if repeat {
            // Entry `which` takes the name of entry `other` (or its name twice over).
            let mut n = names;
            n[which] = names[if other == which { (other + 1) % 3 } else { other }];
            forge::zip(&[(n[0], &data[0]), (n[1], &data[1]), (n[2], &data[2])])
        } else {
            // The directory record of `which` points at the local header of `other`.
            let other = if other == which { (other + 1) % 3 } else { other };
            let mut b = good.clone();
            let recs = forge::zip_records(&b);
            let target = b[recs[other] + 42..recs[other] + 46].to_vec();
            b[recs[which] + 42..recs[which] + 46].copy_from_slice(&target);
            b
        };
        let r = weights::from_bytes(Path::new("f.pth"), &bad);
        prop_assert!(r.is_err(), "accepted: {:?}", r.map(|f| f.state.len()));
    }
}

#[test]
fn truncated_small_files_are_refused_at_every_length() {
    let sd = forge::small_state();
    let files = [
        ("t.safetensors", safetensors::write(&sd, &BTreeMap::new())),
        ("t.bpk", native::write(&sd, &BTreeMap::new()).unwrap()),
        ("t.pth", seed("tiny_zip.pth")),
        ("t.ckpt", seed("tiny_legacy.ckpt")),
    ];
    for (name, bytes) in files {
        assert!(weights::from_bytes(Path::new(name), &bytes).is_ok(), "{name} whole");
        for n in 0..bytes.len() {
            let r = weights::from_bytes(Path::new(name), &bytes[..n]);
            assert!(r.is_err(), "{name} cut to {n} of {} bytes was accepted", bytes.len());
        }
    }
}

/// A case the fuzzer found: a newline written into a tensor's name came back inside the
/// message (two lines); the reader now escapes control characters.
#[test]
fn a_control_character_in_a_tensor_name_stays_on_one_line() {
    let b = native::write(&small_state(), &Default::default()).unwrap();
    let m = mutate(b.clone(), &[(5083409933558718861, 10), (2636405914710504635, 2)], 0.5714874334352856);
    let msg = weights::from_bytes(Path::new("f.bpk"), &m).unwrap_err().to_string();
    assert!(msg.contains("\\n") && !msg.contains('\n'), "{msg}");
    check("f.bpk", &m, true, Some(&small_state())).unwrap();
}
