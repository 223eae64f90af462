//! Dataset list files (`rgb<TAB>mask<TAB>depth` lines); only UTF-8 text reaches the parser,
//! as `list_file::read` decodes the file first.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hydra_fuzz::init(), |data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hydra_data::list_file::parse(text, Path::new("l.txt"));
    }
});
