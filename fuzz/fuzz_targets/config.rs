//! Training configurations: TOML parsing and validation of every section and key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hydra_fuzz::init(), |data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hydra_train::config::Config::from_toml(text, &[]);
    }
});
