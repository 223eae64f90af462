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

/// A `.npy` header whose key gained a newline (found by `npy_files`): the refusal quotes the
/// key with the newline escaped and stays one line.
#[test]
fn a_damaged_npy_key_is_quoted_on_one_line() {
    let m = mutate(npy::to_bytes_f32(&[3, 4], &[1.0; 12]), &[(1185027918244781788, 10)], 0.776940960442587);
    let e = npy::parse(&m).unwrap_err();
    assert!(!e.contains('\n') && e.contains("\\n"), "{e:?}");
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
        let m = mutate(b.clone(), &edits, cut);
        if let Some(a) = refused_in_one_line(npy::parse(&m))? {
            if m == b {
                prop_assert_eq!(a.to_f32(), vec![1.0; 12], "the undamaged file reads back");
            }
        } else {
            prop_assert!(m != b, "the undamaged file is refused");
        }
    }

    #[test]
    fn npy_headers(header in "\\{'descr': '[<|>][fiub][0-9]{1,2}', 'fortran_order': (True|False), 'shape': \\(([0-9]{1,12}, ?){0,4}\\), \\}") {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0u8; 64]);
        refused_in_one_line(npy::parse(&b))?;
    }

    #[test]
    fn images(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in 0.0f64..=1.0) {
        let b = mutate(png_seed(), &edits, cut);
        refused_in_one_line(image_io::decode_depth16(&b))?;
        refused_in_one_line(image_io::decode_label(&b))?;
        let rgb = refused_in_one_line(image_io::decode_rgb(&b))?;
        if b == png_seed() {
            prop_assert!(rgb.is_some(), "the undamaged PNG is refused");
        }
    }
}

// Structure-aware generators: `.npy` headers built from their parts (keys that repeat or are
// unknown, nested brackets of any depth, dimensions too large for any integer type), and every
// prefix of valid PNG, JPEG, `.npy` and list files.

/// A value in a generated `.npy` header dict.
#[derive(Debug, Clone)]
enum HeaderValue {
    Text(String),
    Bool(bool),
    Shape(Vec<String>),
    /// A dimension wrapped in `depth` levels of brackets.
    Nested(usize, char),
}

impl HeaderValue {
    fn render(&self) -> String {
        match self {
            HeaderValue::Text(s) => format!("'{s}'"),
            HeaderValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            HeaderValue::Shape(d) if d.len() == 1 => format!("({},)", d[0]),
            HeaderValue::Shape(d) => format!("({})", d.join(", ")),
            HeaderValue::Nested(depth, open) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                format!("({}2{},)", open.to_string().repeat(*depth), close.to_string().repeat(*depth))
            }
        }
    }
}

fn dimension() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u64..6).prop_map(|d| d.to_string()),
        1 => any::<u64>().prop_map(|d| d.to_string()),
        1 => "[0-9]{20,40}",
        1 => Just("-1".to_string()),
        1 => Just("3L".to_string()),
        1 => Just("1e3".to_string()),
    ]
}

fn descr() -> impl Strategy<Value = HeaderValue> {
    prop::sample::select(vec!["<f4", "<f8", "<f2", "|u1", "<i8", "<u2", "|b1", ">f4", "<U8", "", "f"]).prop_map(|s| HeaderValue::Text(s.to_string()))
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        descr(),
        any::<bool>().prop_map(HeaderValue::Bool),
        prop::collection::vec(dimension(), 0..5).prop_map(HeaderValue::Shape),
        (1usize..20_000, prop::sample::select(vec!['(', '[', '{'])).prop_map(|(d, c)| HeaderValue::Nested(d, c)),
    ]
}

/// A valid header's three entries, perhaps one dropped, perhaps with extra entries (repeated
/// or unknown keys, values of any kind, nested brackets), in any order.
fn header_entries() -> impl Strategy<Value = Vec<(String, HeaderValue)>> {
    let key = prop::sample::select(vec!["descr", "fortran_order", "shape", "extra"]).prop_map(str::to_string);
    let extra = prop::collection::vec((key, header_value()), 0..3);
    let shape = prop::collection::vec(dimension(), 0..5).prop_map(HeaderValue::Shape);
    (descr(), any::<bool>(), shape, extra, prop::option::of(0usize..3)).prop_flat_map(|(d, b, s, extra, drop)| {
        let mut v = vec![("descr".to_string(), d), ("fortran_order".to_string(), HeaderValue::Bool(b)), ("shape".to_string(), s)];
        if let Some(i) = drop {
            v.remove(i);
        }
        v.extend(extra);
        Just(v).prop_shuffle()
    })
}

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

proptest! {
    #[test]
    fn npy_headers_from_their_parts(entries in header_entries(), trailing_comma in any::<bool>(), data_len in 0usize..300) {
        let body: Vec<String> = entries.iter().map(|(k, v)| format!("'{k}': {}", v.render())).collect();
        let header = format!("{{{}{}}}\n", body.join(", "), if trailing_comma && !body.is_empty() { ", " } else { "" });
        prop_assume!(header.len() <= u16::MAX as usize);
        let data: Vec<u8> = (0..data_len).map(|i| (i * 31) as u8).collect();
        let result = npy::parse(&npy_with_header(&header, &data));
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        let duplicated = keys.windows(2).any(|w| w[0] == w[1]);
        let nested = entries.iter().any(|(_, v)| matches!(v, HeaderValue::Nested(..)));
        match result {
            Ok(a) => {
                prop_assert!(!duplicated, "duplicate keys accepted: {header}");
                prop_assert!(!nested, "nested brackets accepted: {header}");
                prop_assert_eq!(keys, vec!["descr", "fortran_order", "shape"]);
                let numel: usize = a.shape.iter().product();
                prop_assert_eq!(a.to_f32().len(), numel);
                prop_assert!(numel <= data_len, "{numel} elements from {data_len} bytes");
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn jpegs(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in 0.0f64..=1.0) {
        let b = mutate(jpeg_seed(), &edits, cut);
        let rgb = refused_in_one_line(image_io::decode_rgb(&b))?;
        if b == jpeg_seed() {
            let img = rgb.expect("the undamaged JPEG decodes");
            prop_assert_eq!((img.width, img.height), (24, 16));
        }
    }
}

/// A decoder's answer: the value, or `None` after checking that the refusal is one non-empty
/// line (the readers put the file's name in front of it), within a time only a hang breaks.
fn refused_in_one_line<T>(r: Result<T, String>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            prop_assert!(!e.trim().is_empty() && !e.contains('\n'), "refusal not one line: {e:?}");
            Ok(None)
        }
    }
}

fn jpeg_seed() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, 77]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img).unwrap();
    out
}

/// Every prefix of `bytes` decodes to an error or to exactly what the whole file decodes to
/// (never to a partly invented image); returns how many prefixes were refused.
fn every_prefix<T: PartialEq + std::fmt::Debug>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, String>) -> usize {
    let whole = decode(bytes).expect("the whole file decodes");
    let mut refused = 0;
    for cut in 0..bytes.len() {
        match decode(&bytes[..cut]) {
            Ok(v) => assert_eq!(v, whole, "a prefix of {cut} of {} bytes decoded to something else", bytes.len()),
            Err(_) => refused += 1,
        }
    }
    refused
}

#[test]
fn png_prefixes_are_refused_or_complete() {
    let labels = Plane { width: 16, height: 12, data: (0..192).map(|i| (i * 7 % 41) as u8).collect() };
    let png = image_io::encode_gray8_png(&labels, &[]);
    // Up to the end of the image data every prefix is refused; only the trailing end chunk
    // may be missing from an accepted one.
    assert!(every_prefix(&png, image_io::decode_label) >= png.len() - 12);
    let depth = png_seed();
    assert!(every_prefix(&depth, image_io::decode_depth16) >= depth.len() - 12 - 13);
    let rgb = image_io::RgbImage { width: 9, height: 6, data: (0..162).map(|i| (i * 13) as u8).collect() };
    let png = image_io::encode_rgb_png(&rgb, &[]);
    assert!(every_prefix(&png, image_io::decode_rgb) >= png.len() - 12);
}

#[test]
fn jpeg_prefixes_are_all_refused() {
    let jpeg = jpeg_seed();
    assert_eq!(every_prefix(&jpeg, image_io::decode_rgb), jpeg.len());
}

#[test]
fn npy_prefixes_are_all_refused() {
    let f32s = npy::to_bytes_f32(&[3, 4], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
    assert_eq!(every_prefix(&f32s, npy::parse), f32s.len());
    let fortran = npy_with_header("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }\n", &[0, 3, 1, 4, 2, 5]);
    assert_eq!(every_prefix(&fortran, npy::parse), fortran.len());
}

#[test]
fn list_file_prefixes_parse_to_a_prefix_of_the_entries_or_fail_naming_the_file() {
    let text = "\u{feff}rgb/café.png\tmasks/1.png\tdepth/1.png\n# comment\nrgb/2.png\t-\tdepth/2.png\r\n\nrgb/3.png\tmasks/3.png\t\n";
    let whole = list_file::parse(text, Path::new("l.txt")).unwrap();
    assert_eq!(whole.len(), 3);
    assert_eq!(whole[0].rgb, Path::new("rgb/café.png"));
    for cut in (0..=text.len()).filter(|&c| text.is_char_boundary(c)) {
        match list_file::parse(&text[..cut], Path::new("l.txt")) {
            Ok(entries) => {
                assert!(entries.len() <= whole.len());
                // All but the last entry are whole; the last may have lost the end of a field.
                let n = entries.len();
                assert_eq!(entries[..n - 1], whole[..n - 1], "cut at {cut}");
                assert_eq!(entries[n - 1].line, whole[n - 1].line, "cut at {cut}");
            }
            Err(e) => assert!(e.to_string().starts_with("l.txt"), "cut at {cut}: {e}"),
        }
    }
}
