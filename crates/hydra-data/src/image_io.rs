//! Image files: 8-bit RGB (PNG or JPEG), 8-bit label PNGs (grayscale or indexed), 16-bit
//! depth PNGs; atomic PNG writers with text metadata.

use std::io::Cursor;
use std::path::Path;

use hydra_core::fsio::MAX_IMAGE_BYTES;

use crate::error::DataError;

/// Largest image accepted, in pixels (bounds memory on damaged headers).
pub const MAX_PIXELS: u64 = 100_000_000;

/// An 8-bit RGB image, row-major, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// A single-channel image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane<T> {
    pub width: usize,
    pub height: usize,
    pub data: Vec<T>,
}

/// The bytes of an image file: a regular file of at most [`MAX_IMAGE_BYTES`] (a FIFO, a
/// device or a folder is refused at once, naming the path).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    hydra_core::fsio::read_input(path, MAX_IMAGE_BYTES).map_err(|e| DataError::io(path, e))
}

/// Decode an RGB image (PNG or JPEG; grayscale and alpha are converted to RGB).
pub fn read_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = read_bytes(path)?;
    decode_rgb(&bytes).map_err(|d| DataError::bad_file(path, d))
}

/// Decode RGB from bytes. A truncated file is an error, for JPEG as for PNG (a JPEG decoder
/// would otherwise fill the missing rows with grey).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    match reader.format() {
        None => return Err("not a PNG or JPEG image".into()),
        Some(image::ImageFormat::Jpeg) => crate::jpeg::check_complete(bytes)?,
        Some(_) => {}
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    // A hostile file can trip a panic inside the decoder (found by fuzzing: an unwrap in
    // zune-jpeg's IDCT); it is refused like any damaged image.
    let img = hydra_core::contain::contain(|| reader.decode())
        .map_err(|p| format!("cannot decode image: the decoder failed on this file ({p})"))?
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let rgb = img.to_rgb8();
    Ok(RgbImage { width: rgb.width() as usize, height: rgb.height() as usize, data: rgb.into_raw() })
}

struct RawPng {
    width: usize,
    height: usize,
    color: png::ColorType,
    depth: png::BitDepth,
    data: Vec<u8>,
}

fn decode_png_raw(bytes: &[u8]) -> Result<RawPng, String> {
    hydra_core::contain::contain(|| decode_png_unguarded(bytes)).map_err(|p| format!("cannot decode PNG: the decoder failed on this file ({p})"))?
}

fn decode_png_unguarded(bytes: &[u8]) -> Result<RawPng, String> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("not a PNG file".into());
    }
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: (MAX_PIXELS * 8) as usize });
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| format!("cannot decode PNG: {e}"))?;
    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(format!("{width}x{height} is too large"));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|e| format!("cannot decode PNG (truncated or damaged): {e}"))?;
    buf.truncate(frame.buffer_size());
    Ok(RawPng { width, height, color: frame.color_type, depth: frame.bit_depth, data: buf })
}

/// Decode an 8-bit label PNG: grayscale values or palette indices are the labels.
pub fn read_label(path: &Path) -> Result<Plane<u8>, DataError> {
    let bytes = read_bytes(path)?;
    decode_label(&bytes).map_err(|d| DataError::bad_file(path, d))
}

/// Decode labels from PNG bytes.
pub fn decode_label(bytes: &[u8]) -> Result<Plane<u8>, String> {
    let p = decode_png_raw(bytes)?;
    match (p.color, p.depth) {
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Eight) => {
            Ok(Plane { width: p.width, height: p.height, data: p.data })
        }
        (c, d) => Err(format!(
            "label PNG must be 8-bit grayscale or indexed, found {c:?} at {d:?} bits (colour-coded labels need a palette)"
        )),
    }
}

/// Decode a 16-bit grayscale depth PNG (raw values; the dataset's scale turns them into metres).
pub fn read_depth16(path: &Path) -> Result<Plane<u16>, DataError> {
    let bytes = read_bytes(path)?;
    decode_depth16(&bytes).map_err(|d| DataError::bad_file(path, d))
}

/// Decode 16-bit depth from PNG bytes.
pub fn decode_depth16(bytes: &[u8]) -> Result<Plane<u16>, String> {
    let p = decode_png_raw(bytes)?;
    match (p.color, p.depth) {
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => Ok(Plane {
            width: p.width,
            height: p.height,
            data: p.data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(),
        }),
        (c, d) => Err(format!("depth PNG must be 16-bit grayscale, found {c:?} at {d:?} bits")),
    }
}

fn encode_png(width: usize, height: usize, color: png::ColorType, depth: png::BitDepth, data: &[u8], text: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.set_compression(png::Compression::Fast);
        for (k, v) in text {
            // tEXt holds Latin-1 only; other text goes in an iTXt chunk (UTF-8).
            if v.chars().all(|c| (c as u32) < 256) {
                enc.add_text_chunk(k.to_string(), v.clone()).expect("text chunk");
            } else {
                enc.add_itxt_chunk(k.to_string(), v.clone()).expect("text chunk");
            }
        }
        let mut w = enc.write_header().expect("PNG header to memory");
        w.write_image_data(data).expect("PNG data to memory");
    }
    out
}

/// PNG bytes of an RGB image, with `tEXt` entries.
pub fn encode_rgb_png(img: &RgbImage, text: &[(&str, String)]) -> Vec<u8> {
    encode_png(img.width, img.height, png::ColorType::Rgb, png::BitDepth::Eight, &img.data, text)
}

/// PNG bytes of an 8-bit grayscale plane.
pub fn encode_gray8_png(p: &Plane<u8>, text: &[(&str, String)]) -> Vec<u8> {
    encode_png(p.width, p.height, png::ColorType::Grayscale, png::BitDepth::Eight, &p.data, text)
}

/// PNG bytes of a 16-bit grayscale plane.
pub fn encode_gray16_png(p: &Plane<u16>, text: &[(&str, String)]) -> Vec<u8> {
    let be: Vec<u8> = p.data.iter().flat_map(|v| v.to_be_bytes()).collect();
    encode_png(p.width, p.height, png::ColorType::Grayscale, png::BitDepth::Sixteen, &be, text)
}

/// The `tEXt` entries of a PNG.
pub fn png_text(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let reader = decoder.read_info().map_err(|e| e.to_string())?;
    let info = reader.info();
    let latin1 = info.uncompressed_latin1_text.iter().map(|t| (t.keyword.clone(), t.text.clone()));
    let utf8 = info.utf8_text.iter().filter_map(|t| Some((t.keyword.clone(), t.get_text().ok()?)));
    Ok(latin1.chain(utf8).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth16_roundtrip_with_text() {
        let p = Plane { width: 3, height: 2, data: vec![0u16, 1, 65535, 5000, 12345, 7] };
        let bytes = encode_gray16_png(&p, &[("depth_min_m", "0.5".into())]);
        assert_eq!(decode_depth16(&bytes).unwrap(), p);
        assert_eq!(png_text(&bytes).unwrap(), vec![("depth_min_m".to_string(), "0.5".to_string())]);
        let utf8 = encode_gray16_png(&p, &[("title", "δ < 1.25".into())]);
        assert_eq!(png_text(&utf8).unwrap(), vec![("title".to_string(), "δ < 1.25".to_string())]);
    }

    #[test]
    fn eight_bit_png_is_refused_as_depth() {
        let p = Plane { width: 2, height: 2, data: vec![1u8, 2, 3, 4] };
        let e = decode_depth16(&encode_gray8_png(&p, &[])).unwrap_err();
        assert!(e.contains("16-bit"), "{e}");
    }

    #[test]
    fn truncated_jpeg_is_an_error_and_a_whole_one_decodes() {
        let img = image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([(x * 6) as u8, (y * 10) as u8, 128]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&img).unwrap();
        let whole = decode_rgb(&jpeg).unwrap();
        assert_eq!((whole.width, whole.height), (40, 24));
        let e = decode_rgb(&jpeg[..jpeg.len() - 40]).unwrap_err();
        assert!(e.contains("truncated JPEG"), "{e}");
    }

    #[test]
    fn truncated_png_is_an_error() {
        let p = Plane { width: 64, height: 64, data: (0..4096).map(|i| (i * 7 % 251) as u8).collect() };
        let bytes = encode_gray8_png(&p, &[]);
        let e = decode_label(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(e.contains("truncated") || e.contains("decode"), "{e}");
    }
}
