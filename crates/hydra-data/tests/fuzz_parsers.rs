//! Property tests (fuzzing) of the data parsers: list files, `.npy`, label/depth/RGB images.
//! Any input gives a value or a clean error, never a panic. Longer runs:
//! `PROPTEST_CASES=100000 cargo test --release -p hydra-data --test fuzz_parsers`.

use std::path::Path;

use hydra_data::image_io::{self, Plane};
use hydra_data::{list_file, npy};
use proptest::prelude::*;

fn png_seed() -> Vec<u8> {
    image_io::encode_gray16_png(&Plane { width: 7, height: 5, data: (0..35).map(|i| i * 999).collect() }, &[("k", "v".into())])
}

fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: f64) -> Vec<u8> {
    let n = b.len();
    for &(i, v) in edits {
        b[i % n] = v;
    }
    b.truncate(((n as f64) * cut).ceil() as usize);
    b
}

proptest! {
    #[test]
    fn list_files(text in "[a-z0-9/._\t \n#-]{0,200}") {
        match list_file::parse(&text, Path::new("l.txt")) {
            Ok(entries) => prop_assert!(!entries.is_empty()),
            Err(e) => prop_assert!(e.to_string().starts_with("l.txt")),
        }
    }

    #[test]
    fn npy_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in 0.0f64..=1.0) {
        let b = npy::to_bytes_f32(&[3, 4], &[1.0; 12]);
        let _ = npy::parse(&mutate(b, &edits, cut));
    }

    #[test]
    fn npy_headers(header in "\\{'descr': '[<|>][fiub][0-9]{1,2}', 'fortran_order': (True|False), 'shape': \\(([0-9]{1,12}, ?){0,4}\\), \\}") {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0u8; 64]);
        let _ = npy::parse(&b);
    }

    #[test]
    fn images(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in 0.0f64..=1.0) {
        let b = mutate(png_seed(), &edits, cut);
        let _ = image_io::decode_depth16(&b);
        let _ = image_io::decode_label(&b);
        let _ = image_io::decode_rgb(&b);
    }
}
