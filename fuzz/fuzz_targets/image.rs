//! Image bytes through every public decoder: RGB (PNG or JPEG, with the JPEG completeness
//! check), 8-bit label PNGs, 16-bit depth PNGs, and PNG text chunks.
#![no_main]

use hydra_data::image_io;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hydra_fuzz::init(), |data: &[u8]| {
    let _ = image_io::decode_rgb(data);
    let _ = image_io::decode_label(data);
    let _ = image_io::decode_depth16(data);
    let _ = image_io::png_text(data);
});
