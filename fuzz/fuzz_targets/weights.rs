//! Weight files of any format, recognised by content (PyTorch zip and legacy pickles,
//! safetensors, burnpack / training checkpoints), then the network configuration read or
//! inferred from them. An `Err` is fine; a panic, an abort or a hang is a finding.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hydra_fuzz::init(), |data: &[u8]| {
    if let Ok(file) = hydra_model::weights::from_bytes(Path::new("fuzz"), data) {
        let _ = file.config();
    }
});
