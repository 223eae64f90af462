//! NumPy `.npy` arrays (header dictionary, dtype, shape, data).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hydra_fuzz::init(), |data: &[u8]| {
    let _ = hydra_data::npy::parse(data);
});
