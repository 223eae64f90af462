//! NumPy `.npy` files (format versions 1–3): read any numeric array, write float32. Reads take
//! regular files of at most [`MAX_FILE_BYTES`] (a FIFO or a link to a device is refused).

use std::path::Path;

use crate::error::DataError;
use crate::npy_header::parse_header;

/// Largest `.npy` file read (bytes): MTAN samples are well under a megabyte.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Largest array read, in elements (bounds the converted copy: at most 1 GiB as i64).
pub const MAX_ELEMENTS: u64 = 1 << 27;
/// Longest header accepted (NumPy itself refuses more than 10 000 bytes by default).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// An array read from a `.npy` file, converted to f32 or i64 by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// Floating point data, as f32.
    F32(Vec<f32>),
    /// Integer or boolean data, as i64.
    I64(Vec<i64>),
}

/// A `.npy` array in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order.
    pub data: NpyData,
}

impl NpyArray {
    /// Values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Values as i64 (floats truncated).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I64(v) => v.clone(),
        }
    }
}

/// (byte order, kind, item size) of a dtype string such as `<f4`.
fn dtype(descr: &str) -> Result<(char, char, usize), String> {
    let unsupported = || format!("unsupported dtype `{descr}`");
    let mut c = descr.chars();
    let order = c.next().ok_or("empty descr")?;
    let kind = c.next().ok_or_else(unsupported)?;
    if !['<', '>', '|', '='].contains(&order) {
        return Err(unsupported());
    }
    let size: usize = c.as_str().parse().map_err(|_| unsupported())?;
    if ![1, 2, 4, 8].contains(&size) {
        return Err(unsupported());
    }
    if order == '>' && size > 1 {
        return Err(format!("big-endian dtype `{descr}` is not supported"));
    }
    Ok((order, kind, size))
}

/// Parse `.npy` bytes. The header is checked completely (keys, dtype, shape against the
/// bytes present) before anything is allocated. A refusal is one line (the header's text,
/// which it may quote, can hold any character).
pub fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    parse_bytes(bytes).map_err(|e| hydra_core::text::one_line(&e))
}

fn parse_bytes(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let len = bytes.get(8..12).ok_or("truncated header")?;
            (u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if hlen > MAX_HEADER_BYTES {
        return Err(format!("header of {hlen} bytes is longer than the {MAX_HEADER_BYTES} accepted"));
    }
    let data_start = hstart + hlen;
    let header = bytes.get(hstart..data_start).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let header = parse_header(header).map_err(|e| format!("bad header: {e}"))?;
    let (_, kind, size) = dtype(&header.descr)?;
    let shape = header.shape;
    let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if numel > MAX_ELEMENTS {
        return Err(format!("shape {shape:?} has {numel} elements, more than the {MAX_ELEMENTS} accepted"));
    }
    let nbytes = numel * size as u64;
    let data = &bytes[data_start..];
    if (data.len() as u64) < nbytes {
        return Err(format!("truncated: {} data bytes, {nbytes} expected for shape {shape:?}", data.len()));
    }
    let data = &data[..nbytes as usize];
    let c = data.chunks_exact(size);
    let le = |b: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        a
    };
    let values = match (kind, size) {
        ('f', 4) => NpyData::F32(c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        ('f', 8) => NpyData::F32(c.map(|b| f64::from_le_bytes(le(b)) as f32).collect()),
        ('f', 2) => NpyData::F32(c.map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()),
        ('i', 8) => NpyData::I64(c.map(|b| i64::from_le_bytes(le(b))).collect()),
        ('i', 4) => NpyData::I64(c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
        ('i', 2) => NpyData::I64(c.map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect()),
        ('i', 1) => NpyData::I64(c.map(|b| b[0] as i8 as i64).collect()),
        ('u', 8) => NpyData::I64(c.map(|b| u64::from_le_bytes(le(b)) as i64).collect()),
        ('u', 4) => NpyData::I64(c.map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
        ('u', 2) => NpyData::I64(c.map(|b| u16::from_le_bytes([b[0], b[1]]) as i64).collect()),
        ('u', 1) | ('b', 1) => NpyData::I64(c.map(|b| b[0] as i64).collect()),
        _ => return Err(format!("unsupported dtype `{}`", header.descr)),
    };
    let values = if header.fortran_order && shape.len() > 1 {
        match values {
            NpyData::F32(v) => NpyData::F32(fortran_to_c(&v, &shape)),
            NpyData::I64(v) => NpyData::I64(fortran_to_c(&v, &shape)),
        }
    } else {
        values
    };
    Ok(NpyArray { shape, data: values })
}

fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // subnormal
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        31 => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Values stored in Fortran order (first index fastest), reordered to C order, walking the
/// Fortran offset along with a C-order counter (no index table is allocated).
fn fortran_to_c<T: Copy>(v: &[T], shape: &[usize]) -> Vec<T> {
    let rank = shape.len();
    // Fortran strides: stride[0] = 1, stride[i] = stride[i-1] * shape[i-1].
    let mut fstride = vec![1usize; rank];
    for i in 1..rank {
        fstride[i] = fstride[i - 1] * shape[i - 1];
    }
    let mut index = vec![0usize; rank];
    let mut offset = 0usize;
    let mut out = Vec::with_capacity(v.len());
    for _ in 0..v.len() {
        out.push(v[offset]);
        for d in (0..rank).rev() {
            index[d] += 1;
            offset += fstride[d];
            if index[d] < shape[d] {
                break;
            }
            offset -= fstride[d] * shape[d];
            index[d] = 0;
        }
    }
    out
}

/// Read a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray, DataError> {
    let bytes = hydra_core::fsio::read_input(path, MAX_FILE_BYTES).map_err(|e| DataError::io(path, e))?;
    parse(&bytes).map_err(|d| DataError::bad_file(path, d))
}

/// Serialise a float32 array in C order (format version 1).
pub fn to_bytes_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad so that magic + version + length + header + newline is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f32() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let a = parse(&to_bytes_f32(&[2, 3, 4], &data)).unwrap();
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.data, NpyData::F32(data));
    }

    #[test]
    fn header_is_aligned_to_64() {
        let b = to_bytes_f32(&[5], &[0.0; 5]);
        assert_eq!((b.len() - 20) % 64, 0);
    }

    #[test]
    fn fortran_order_is_transposed_to_c() {
        // A 2x3 array [[0,1,2],[3,4,5]] in Fortran order is stored 0,3,1,4,2,5.
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }\n";
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0, 3, 1, 4, 2, 5]);
        let a = parse(&b).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn fortran_order_of_three_dimensions() {
        // a[i][j][k] = 100 i + 10 j + k for shape (2, 3, 4), stored first index fastest.
        let shape = [2usize, 3, 4];
        let mut stored = Vec::new();
        for k in 0..4 {
            for j in 0..3 {
                for i in 0..2 {
                    stored.push((100 * i + 10 * j + k) as f32);
                }
            }
        }
        let c = fortran_to_c(&stored, &shape);
        let expected: Vec<f32> = (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| (100 * i + 10 * j + k) as f32))).collect();
        assert_eq!(c, expected);
    }

    #[test]
    fn absurd_shapes_are_refused_before_allocating() {
        let npy = |shape: &str| {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            let h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}\n");
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&[0u8; 16]);
            parse(&b).unwrap_err()
        };
        assert!(npy("(4294967296, 4294967296, 4294967296)").contains("overflows"));
        assert!(npy("(100000, 100000)").contains("more than the 134217728 accepted"));
        assert!(npy("(1000,)").contains("truncated: 16 data bytes, 8000 expected"));
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut b = to_bytes_f32(&[4], &[1.0; 4]);
        b.truncate(b.len() - 3);
        assert!(parse(&b).unwrap_err().contains("truncated"));
    }

    #[test]
    fn half_conversion() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
    }
}
