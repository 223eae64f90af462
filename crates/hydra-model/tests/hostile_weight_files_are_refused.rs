//! Hostile and damaged weight files are refused with one line naming the file and what is
//! wrong, never a hang, an abort or a panic: FIFOs and devices, pickles nested without end,
//! non-finite weights and negative variances in every format, zip archives whose entries do
//! not match their CRC, repeat a name or overlap, safetensors and burnpack files whose
//! headers or data ranges are damaged, and hydra-written files that no longer match their
//! checksum. A training checkpoint reads as its network; load errors name what is missing,
//! what is unexpected, and a class count only when the class count differs.

use std::collections::BTreeMap;
use std::time::Duration;

use burn::prelude::*;
use hydra_model::state::{RawTensor, StateDict};
use hydra_model::weights::{self, native, safetensors, LoadScope, WeightFormat};
use hydra_model::{HydraNetConfig, WeightsError};

mod common;
mod forge;
use common::{fixtures, scratch};

/// Write `bytes` to a scratch file named `name` and read it as weights.
fn read_bytes(name: &str, bytes: &[u8]) -> Result<weights::WeightFile, WeightsError> {
    let dir = scratch(name);
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    weights::read(&p)
}

/// The error of reading `bytes` as the file `name`, checked to be one line naming the file.
fn refused(name: &str, bytes: &[u8]) -> String {
    let e = read_bytes(name, bytes).map(|_| ()).expect_err(name);
    let msg = e.to_string();
    assert!(msg.contains(name), "names the file: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

/// Run `f` on a fresh thread with the default (2 MiB) stack, failing after `secs`.
fn in_thread<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).expect("finished in time, without a stack overflow or a panic")
}

// ------------------------------------------------------------ what is read

#[test]
fn a_fifo_is_refused_at_once_without_waiting_for_a_writer() {
    let dir = scratch("fifo");
    let p = dir.join("weights.pth");
    let st = std::process::Command::new("mkfifo").arg(&p).status().expect("mkfifo runs");
    assert!(st.success());
    let msg = in_thread(10, move || weights::read(&p).map(|_| ()).unwrap_err().to_string());
    assert!(msg.contains("weights.pth") && msg.contains("a FIFO, not a regular file"), "{msg}");
}

#[test]
fn a_symlink_to_dev_zero_or_a_folder_is_refused_at_once() {
    let dir = scratch("devzero");
    let p = dir.join("zero.safetensors");
    std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
    let msg = in_thread(10, move || weights::read(&p).map(|_| ()).unwrap_err().to_string());
    assert!(msg.contains("zero.safetensors") && msg.contains("a character device"), "{msg}");
    let e = weights::read(dir.path()).unwrap_err();
    assert!(matches!(e, WeightsError::Io { .. }) && e.to_string().contains("a folder"), "{e}");
}

// ------------------------------------------------------------ nesting

#[test]
fn deep_pickle_nesting_is_an_error_not_a_stack_overflow() {
    // 200 000 nested lists as a zip checkpoint's data.pkl, and as a legacy file's root.
    let zip = forge::torch_zip_with_pickle(&forge::nested_lists(200_000), vec![]);
    let msg = in_thread(60, move || refused("deep_lists.pth", &zip));
    assert!(msg.contains("nested more than 1000 levels"), "{msg}");
    let mut legacy = forge::legacy_header();
    legacy.extend(forge::nested_lists(200_000));
    let msg = in_thread(60, move || refused("deep_lists.ckpt", &legacy));
    assert!(msg.contains("nested more than 1000 levels"), "{msg}");
    // 100 000 nested tuples beside a valid state dict: refused too, not skipped over.
    let zip = forge::torch_zip_with_pickle(&forge::state_dict_beside_nested_tuples(100_000), vec![vec![0; 8]]);
    let msg = in_thread(60, move || refused("deep_tuples.pth", &zip));
    assert!(msg.contains("nested more than 1000 levels"), "{msg}");
    // Nesting in the other formats' headers: JSON in safetensors, CBOR in burnpack.
    let json = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let msg = in_thread(60, move || refused("deep.safetensors", &forge::safetensors_raw(&json, b"")));
    assert!(msg.contains("damaged header (JSON") && msg.contains("recursion limit"), "{msg}");
    let mut bpk = native::write(&forge::small_state(), &BTreeMap::new()).unwrap();
    let meta = u32::from_le_bytes(bpk[6..10].try_into().unwrap()) as usize;
    bpk[10..10 + meta].fill(0x81); // CBOR: an array of one array of one array ...
    let msg = in_thread(60, move || refused("deep.bpk", &bpk));
    assert!(msg.contains("damaged metadata (CBOR"), "{msg}");
    // The same file with shallow nesting loads: the limit is what refuses it.
    let zip = forge::torch_zip_with_pickle(&forge::state_dict_beside_nested_tuples(10), vec![vec![0; 8]]);
    let f = read_bytes("shallow_tuples.pth", &zip).unwrap();
    assert_eq!(f.container, "state_dict");
    assert_eq!(forge::floats(&f.state, "w"), vec![0.0, 0.0]);
}

// ------------------------------------------------------------ values

fn with_value(v: f32) -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    vec![("conv3.weight", vec![2, 2], vec![0.5, 0.25, v, 1.0]), ("layer3.0.bn.running_var", vec![3], vec![1.0, 2.0, 3.0])]
}

fn negative_variance() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let mut var = vec![1.0f32; 16];
    for v in var.iter_mut().take(12) {
        *v = -0.5;
    }
    vec![("conv3.weight", vec![2], vec![0.5, 0.25]), ("layer3.0.bn.running_var", vec![16], var)]
}

fn as_state(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> StateDict {
    tensors.iter().map(|(n, s, v)| (n.to_string(), RawTensor::f32(s.clone(), v.clone()))).collect()
}

/// Each format's bytes for `tensors`.
fn every_format(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<(&'static str, Vec<u8>)> {
    let sd = as_state(tensors);
    let mut ckpt = StateDict::new();
    for (k, t) in sd.iter() {
        ckpt.insert(format!("model/{k}"), t.clone());
    }
    let meta: BTreeMap<String, String> = [(native::CHECKPOINT_KEY.to_string(), "{}".to_string())].into();
    vec![
        ("v.pth", forge::torch_zip(tensors)),
        ("v.ckpt", forge::torch_legacy(tensors)),
        ("v.safetensors", safetensors::write(&sd, &BTreeMap::new())),
        ("v.bpk", native::write(&sd, &BTreeMap::new()).unwrap()),
        ("epoch-00001.bpk", native::write(&ckpt, &meta).unwrap()),
    ]
}

#[test]
fn the_forged_files_load_when_their_values_are_sound() {
    for (name, bytes) in every_format(&with_value(7.0)) {
        let f = read_bytes(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(forge::floats(&f.state, "conv3.weight"), vec![0.5, 0.25, 7.0, 1.0], "{name}");
    }
}

#[test]
fn non_finite_weights_are_refused_in_every_format_naming_the_tensor() {
    for (v, what) in [(f32::NAN, "1 NaN value "), (f32::INFINITY, "1 infinite value "), (f32::NEG_INFINITY, "1 infinite value ")] {
        for (name, bytes) in every_format(&with_value(v)) {
            let msg = refused(name, &bytes);
            assert!(msg.contains("conv3.weight`: ") && msg.contains(what) && msg.contains("element 2"), "{name}: {msg}");
        }
    }
}

#[test]
fn negative_running_variances_are_refused_in_every_format() {
    for (name, bytes) in every_format(&negative_variance()) {
        let msg = refused(name, &bytes);
        assert!(msg.contains("layer3.0.bn.running_var`: 12 negative values (a variance cannot be negative)"), "{name}: {msg}");
    }
}

#[test]
fn non_finite_weights_set_in_memory_are_refused_when_applied() {
    let device = Device::flex();
    let mut file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    let mut w = forge::floats(&file.state, "layer5.2.output.1.0.weight");
    w[3] = f32::NAN;
    let shape = file.state.get("layer5.2.output.1.0.weight").unwrap().shape.clone();
    file.state.insert("layer5.2.output.1.0.weight", RawTensor::f32(shape, w));
    for scope in [LoadScope::Full, LoadScope::EncoderOnly] {
        let e = file.apply(HydraNetConfig::new(40).init(&device), scope).map(|_| ()).unwrap_err();
        assert!(matches!(e, WeightsError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("layer5.2.output.1.0.weight`: 1 NaN value (the first at element 3)"), "{e}");
    }
}

// ------------------------------------------------------------ zip

fn tiny_zip_entries() -> Vec<(String, Vec<u8>)> {
    let pkl = forge::state_dict_pickle(&[("w", vec![2])], false);
    vec![("archive/data.pkl".into(), pkl), ("archive/data/0".into(), forge::f32_bytes(&[1.5, 2.5]))]
}

#[test]
fn zip_entries_must_match_their_crc() {
    let entries = tiny_zip_entries();
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let good = forge::zip(&refs);
    assert_eq!(forge::floats(&read_bytes("crc.pth", &good).unwrap().state, "w"), vec![1.5, 2.5]);
    let mut bad = good.clone();
    let at = forge::find_f32(&bad, 2.5);
    bad[at] ^= 0x01; // one bit of the storage
    let msg = refused("crc.pth", &bad);
    assert!(msg.contains("entry `archive/data/0` does not match its CRC-32"), "{msg}");
    // A CRC of 0 means none was recorded (`torch.serialization.set_crc32_options(False)`).
    let mut unrecorded = good.clone();
    let rec = forge::zip_records(&good)[1];
    unrecorded[rec + 16..rec + 20].fill(0);
    assert_eq!(forge::floats(&read_bytes("nocrc.pth", &unrecorded).unwrap().state, "w"), vec![1.5, 2.5]);
}

#[test]
fn duplicate_zip_entries_are_refused_by_name() {
    let mut entries = tiny_zip_entries();
    entries.push(("archive/data/0".into(), forge::f32_bytes(&[9.0, 9.0])));
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let msg = refused("dup.pth", &forge::zip(&refs));
    assert!(msg.contains("two entries are named `archive/data/0`"), "{msg}");
}

#[test]
fn overlapping_zip_entries_are_refused_naming_both() {
    // Entry `archive/data/0` is stored inside entry `archive/outer`: its local header and
    // data are the outer entry's data, and the directory lists both.
    let pkl = forge::state_dict_pickle(&[("w", vec![2])], false);
    let storage = forge::f32_bytes(&[1.5, 2.5]);
    let mut inner = forge::local_header("archive/data/0", &storage);
    inner.extend_from_slice(&storage);
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for (name, data) in [("archive/data.pkl", pkl.as_slice()), ("archive/outer", inner.as_slice())] {
        cd.extend(forge::central_record(name, crc32fast::hash(data), data.len(), out.len()));
        out.extend(forge::local_header(name, data));
        out.extend_from_slice(data);
    }
    let inner_at = out.len() - inner.len();
    cd.extend(forge::central_record("archive/data/0", crc32fast::hash(&storage), storage.len(), inner_at));
    let cd_offset = out.len();
    out.extend_from_slice(&cd);
    out.extend(forge::eocd(3, cd.len(), cd_offset));
    let msg = refused("overlap.pth", &out);
    assert!(msg.contains("entries `archive/outer`") && msg.contains("`archive/data/0`") && msg.contains("overlap"), "{msg}");
}

// ------------------------------------------------------------ safetensors

const F32X2: &[u8] = &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]; // 1.0, 2.0

#[test]
fn safetensors_ranges_must_not_overlap_or_leave_the_file() {
    let two = |a: &str, b: &str| format!(r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":{a}}},"b":{{"dtype":"F32","shape":[2],"data_offsets":{b}}}}}"#);
    let data = [F32X2, F32X2].concat();
    let ok = read_bytes("ok.safetensors", &forge::safetensors_raw(&two("[0,8]", "[8,16]"), &data)).unwrap();
    assert_eq!(forge::floats(&ok.state, "b"), vec![1.0, 2.0]);
    let msg = refused("overlap.safetensors", &forge::safetensors_raw(&two("[0,8]", "[4,12]"), &data));
    assert!(msg.contains("the data of tensors `a` (bytes 0..8) and `b` (bytes 4..12) overlap"), "{msg}");
    let msg = refused("same.safetensors", &forge::safetensors_raw(&two("[8,16]", "[8,16]"), &data));
    assert!(msg.contains("tensors `a`") && msg.contains("`b`") && msg.contains("overlap"), "{msg}");
    let msg = refused("beyond.safetensors", &forge::safetensors_raw(&two("[0,8]", "[16,24]"), &data));
    assert!(msg.contains("tensor `b`: data_offsets [16, 24] reach beyond the 16 bytes of data"), "{msg}");
    let msg = refused("backwards.safetensors", &forge::safetensors_raw(&two("[8,0]", "[8,16]"), &data));
    assert!(msg.contains("tensor `a`: data_offsets [8, 0] end before they start"), "{msg}");
    let msg = refused("twice.safetensors", &forge::safetensors_raw(&two("[0,8]", "[8,16]").replace("\"b\"", "\"a\""), &data));
    assert!(msg.contains("two entries are named `a`"), "{msg}");
}

#[test]
fn damaged_safetensors_headers_say_what_is_wrong() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    // A header length beyond the file.
    let mut b = forge::safetensors_raw(header, F32X2);
    b[..8].copy_from_slice(&1000u64.to_le_bytes());
    let msg = refused("long.safetensors", &b);
    let after = b.len() - 8;
    assert!(msg.contains("safetensors") && msg.contains(&format!("header length field says 1000 bytes, but only {after} follow it")), "{msg}");
    // Over the format's limit.
    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let msg = refused("huge.safetensors", &b);
    assert!(msg.contains("more than the 104857600 safetensors allows"), "{msg}");
    // Bad JSON, with where.
    let msg = refused("json.safetensors", &forge::safetensors_raw(&header.replace("\"shape\"", "\"shape"), F32X2));
    assert!(msg.contains("damaged header (JSON, bytes 8..") && msg.contains("line 1 column"), "{msg}");
    // Not UTF-8.
    let mut b = forge::safetensors_raw(&header.replace('a', "\u{e9}"), F32X2);
    let at = b.iter().position(|&c| c == 0xc3).unwrap();
    b[at] = 0xff;
    let msg = refused("utf8.safetensors", &b);
    assert!(msg.contains(&format!("not UTF-8 text (an invalid byte at file offset {at})")), "{msg}");
    // A tensor entry without its dtype.
    let msg = refused("dtype.safetensors", &forge::safetensors_raw(&header.replace("\"dtype\":\"F32\",", ""), F32X2));
    assert!(msg.contains("tensor `a` has no string `dtype`"), "{msg}");
}

// ------------------------------------------------------------ burnpack

#[test]
fn damaged_burnpack_headers_say_what_is_wrong() {
    let good = native::write(&forge::small_state(), &BTreeMap::new()).unwrap();
    let meta = u32::from_le_bytes(good[6..10].try_into().unwrap()) as usize;
    let mut b = good.clone();
    b[4] = 9; // version 9
    let msg = refused("version.bpk", &b);
    assert!(msg.contains("burnpack format version 9, newer than the 1 this hydra reads"), "{msg}");
    let mut b = good.clone();
    b[6..10].copy_from_slice(&((good.len() as u32) * 2).to_le_bytes());
    let msg = refused("metalen.bpk", &b);
    assert!(msg.contains(&format!("the header says {} bytes of metadata, but only {} follow it", good.len() * 2, good.len() - 10)), "{msg}");
    let msg = refused("cut.bpk", &good[..10 + meta / 2]);
    assert!(msg.contains("bytes of metadata, but only"), "{msg}");
    let mut b = good.clone();
    for x in &mut b[10..10 + meta] {
        *x = 0xff;
    }
    let msg = refused("cbor.bpk", &b);
    assert!(msg.contains(&format!("damaged metadata (CBOR, bytes 10..{})", 10 + meta)), "{msg}");
}

#[test]
fn overlapping_burnpack_tensors_are_refused() {
    // Three 256-float tensors at data offsets 0, 1024 and 2048: point `c` at `b`'s bytes.
    let mut sd = StateDict::new();
    for (i, n) in ["a", "b", "c"].into_iter().enumerate() {
        sd.insert(n, RawTensor::f32(vec![256], vec![i as f32; 256]));
    }
    let good = native::write(&sd, &BTreeMap::new()).unwrap();
    assert_eq!(forge::floats(&read_bytes("three.bpk", &good).unwrap().state, "c"), vec![2.0; 256]);
    let c_offsets = [0x82u8, 0x19, 0x08, 0x00, 0x19, 0x0c, 0x00]; // CBOR [2048, 3072]
    let b_offsets = [0x82u8, 0x19, 0x04, 0x00, 0x19, 0x08, 0x00]; // CBOR [1024, 2048]
    let at = good.windows(7).position(|w| w == c_offsets).expect("c's offsets in the metadata");
    let mut bad = good.clone();
    bad[at..at + 7].copy_from_slice(&b_offsets);
    let msg = refused("overlap.bpk", &bad);
    assert!(msg.contains("the data of tensors `b` and `c` overlap"), "{msg}");
}

// ------------------------------------------------------------ checksums

#[test]
fn hydra_written_files_carry_a_checksum_that_is_verified() {
    let mut sd = forge::small_state();
    sd.insert("b.bias", RawTensor::f32(vec![2], vec![1234.5, -7.25]));
    for (name, bytes) in [
        ("sum.bpk", native::write(&sd, &BTreeMap::new()).unwrap()),
        ("sum.safetensors", safetensors::write(&sd, &BTreeMap::new())),
    ] {
        let f = read_bytes(name, &bytes).unwrap();
        assert_eq!(f.metadata.get("hydra.crc32").map(String::len), Some(8), "{name}: {:?}", f.metadata);
        // One bit of one weight, still a finite number: only the checksum can tell.
        let mut bad = bytes.clone();
        bad[forge::find_f32(&bytes, 1234.5)] ^= 0x01;
        let msg = refused(name, &bad);
        assert!(msg.contains("content does not match its checksum") && msg.contains("damaged"), "{name}: {msg}");
    }
}

#[test]
fn files_without_a_checksum_still_load() {
    // safetensors from another tool (no metadata), and a burnpack written without hydra.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let f = read_bytes("plain.safetensors", &forge::safetensors_raw(header, F32X2)).unwrap();
    assert!(f.metadata.is_empty());
    let t = burn_pack::Tensor::new("a".into(), burn_pack::DType::F32, vec![2], None, burn_pack::Bytes::from_bytes_vec(F32X2.to_vec()));
    let b = burn_pack::Writer::new(vec![t]).into_bytes().unwrap().to_vec();
    let f = read_bytes("plain.bpk", &b).unwrap();
    assert_eq!(forge::floats(&f.state, "a"), vec![1.0, 2.0]);
}

#[test]
fn exports_are_checksummed_and_reload_identically() {
    let device = Device::flex();
    let net = HydraNetConfig::new(6).init(&device);
    let dir = scratch("export-sum");
    for name in ["w.bpk", "w.safetensors"] {
        let p = dir.join(name);
        weights::save(&net, &p).unwrap();
        let f = weights::read(&p).unwrap();
        assert!(f.metadata.contains_key("hydra.crc32"), "{name}");
        assert!(f.state == net.state_dict(), "{name}");
    }
}

// ------------------------------------------------------------ messages

fn checkpoint_bytes(net: &hydra_model::HydraNet) -> Vec<u8> {
    let mut sd = StateDict::new();
    for (k, t) in net.state_dict().iter() {
        sd.insert(format!("model/{k}"), t.clone());
        if !hydra_model::state::is_buffer_key(k) {
            sd.insert(format!("optim/{k}/0"), RawTensor::f32(t.shape.clone(), vec![0.0; t.numel()]));
        }
    }
    sd.insert("weighting/log_vars", RawTensor::f32(vec![2], vec![0.0, 0.0]));
    let meta: BTreeMap<String, String> = [(native::CHECKPOINT_KEY.to_string(), r#"{"version":1}"#.to_string())].into();
    native::write(&sd, &meta).unwrap()
}

#[test]
fn a_training_checkpoint_reads_as_its_network() {
    let device = Device::flex();
    let net = HydraNetConfig::new(6).init(&device);
    let dir = scratch("checkpoint");
    let p = dir.join("epoch-00003.bpk");
    std::fs::write(&p, checkpoint_bytes(&net)).unwrap();
    let f = weights::read(&p).unwrap();
    assert_eq!(f.format, WeightFormat::Checkpoint);
    assert!(f.format.to_string().contains("training checkpoint"), "{}", f.format);
    assert_eq!(f.container, "model/");
    assert!(f.has_decoder());
    assert!(f.state == net.state_dict(), "the network's tensors, and only those");
    let config = f.config().unwrap();
    assert_eq!((config.num_classes, config.decoder_width, config.crp_stages), (6, 256, 4));
    let (loaded, _) = weights::load_model(&p, None, &device).unwrap();
    assert!(loaded.state_dict() == net.state_dict());
}

#[test]
fn the_class_hint_appears_only_for_another_class_count_and_names_the_tensor() {
    let device = Device::flex();
    let file = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    let e = file.apply(HydraNetConfig::new(6).init(&device), LoadScope::Full).unwrap_err().to_string();
    assert!(e.contains("`segm.weight` is [40, 256, 3, 3] in the file and [6, 256, 3, 3] in the model: the file has 40 classes, the model 6"), "{e}");
    // Same class count, another decoder width: the heads differ, the class count does not.
    let narrow = HydraNetConfig::new(10).with_decoder_width(128).init(&device);
    let dir = scratch("narrow");
    let p = dir.join("narrow.bpk");
    weights::save(&narrow, &p).unwrap();
    let f = weights::read(&p).unwrap();
    let e = f.apply(HydraNetConfig::new(10).init(&device), LoadScope::Full).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains("classes"), "{msg}");
    assert!(msg.contains("shape mismatch for `conv8.weight`: the file has [128, 320, 1, 1], the model expects [256, 320, 1, 1]"), "{msg}");
    let WeightsError::Mismatch { report, .. } = e else { panic!() };
    assert!(report.contains("shape mismatch for `segm.weight`: the file has [10, 128, 3, 3], the model expects [10, 256, 3, 3]"), "{report}");
}

#[test]
fn a_missing_key_is_reported_missing_not_its_neighbours_unexpected() {
    let device = Device::flex();
    let full = weights::read(&fixtures().join("hydranet40_s0.ckpt")).unwrap();
    for gone in ["segm.weight", "depth.weight", "pre_segm.weight", "conv3.weight", "crp2.0.2_outvar_dimred.weight"] {
        let mut f = full.clone();
        f.state = f.state.map_keys(|k| (k != gone).then(|| k.to_string()));
        let config = f.config().unwrap_or_else(|e| panic!("{gone}: {e}"));
        assert_eq!((config.num_classes, config.tasks.len(), config.crp_stages, config.decoder_width), (40, 2, 4, 256), "{gone}");
        let e = f.apply(config.init(&device), LoadScope::Full).unwrap_err();
        let WeightsError::Mismatch { ref first, more, ref report, .. } = e else { panic!("{gone}: {e:?}") };
        assert_eq!(first, &format!("missing key `{gone}` (the model expects shape {:?})", full.state.get(gone).unwrap().shape), "{gone}");
        assert_eq!(more, 0, "{gone}: {report}");
        assert!(!report.contains("unexpected"), "{gone}: {report}");
    }
    // Without either segmentation tensor the class count is unknown: said so, naming both.
    let mut f = full.clone();
    f.state = f.state.map_keys(|k| (!k.starts_with("segm.")).then(|| k.to_string()));
    let e = f.config().unwrap_err().to_string();
    assert!(e.contains("missing keys `segm.weight` and `segm.bias`"), "{e}");
}
