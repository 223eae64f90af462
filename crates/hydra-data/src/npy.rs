//! NumPy `.npy` files (format versions 1–3): read any numeric array, write float32.

use std::path::Path;

use crate::error::DataError;

/// Largest array read (bounds memory on a damaged header).
const MAX_BYTES: u64 = 1 << 32;

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

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// Parse `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes.get(hstart..hstart + hlen).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = header_value(header, "descr").ok_or("header without descr")?;
    let descr = descr.trim_start_matches(['\'', '"']);
    let descr: String = descr.chars().take_while(|&c| c != '\'' && c != '"').collect();
    let fortran = header_value(header, "fortran_order").ok_or("header without fortran_order")?.starts_with("True");
    let shape_txt = header_value(header, "shape").ok_or("header without shape")?;
    let shape_txt = shape_txt.strip_prefix('(').ok_or("bad shape")?;
    let shape_txt = &shape_txt[..shape_txt.find(')').ok_or("bad shape")?];
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape entry `{s}`")))
        .collect::<Result<_, _>>()?;
    let (order, kind, size) = {
        let mut c = descr.chars();
        let order = c.next().ok_or("empty descr")?;
        let kind = c.next().ok_or("bad descr")?;
        let size: usize = c.as_str().parse().map_err(|_| format!("unsupported dtype `{descr}`"))?;
        (order, kind, size)
    };
    if ![1, 2, 4, 8].contains(&size) {
        return Err(format!("unsupported dtype `{descr}`"));
    }
    if order == '>' && size > 1 {
        return Err(format!("big-endian dtype `{descr}` is not supported"));
    }
    let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).ok_or("shape overflows")?;
    let nbytes = numel.checked_mul(size as u64).filter(|&n| n <= MAX_BYTES).ok_or("array too large")?;
    let data = &bytes[hstart + hlen..];
    if (data.len() as u64) < nbytes {
        return Err(format!("truncated: {} data bytes, {nbytes} expected", data.len()));
    }
    let data = &data[..nbytes as usize];
    let c = data.chunks_exact(size);
    let values = match (kind, size) {
        ('f', 4) => NpyData::F32(c.map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()),
        ('f', 8) => NpyData::F32(c.map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect()),
        ('f', 2) => NpyData::F32(c.map(|b| half_to_f32(u16::from_le_bytes(b.try_into().unwrap()))).collect()),
        ('i', 8) => NpyData::I64(c.map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()),
        ('i', 4) => NpyData::I64(c.map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
        ('i', 2) => NpyData::I64(c.map(|b| i16::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
        ('i', 1) => NpyData::I64(c.map(|b| b[0] as i8 as i64).collect()),
        ('u', 8) => NpyData::I64(c.map(|b| u64::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
        ('u', 4) => NpyData::I64(c.map(|b| u32::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
        ('u', 2) => NpyData::I64(c.map(|b| u16::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
        ('u', 1) | ('b', 1) => NpyData::I64(c.map(|b| b[0] as i64).collect()),
        _ => return Err(format!("unsupported dtype `{descr}`")),
    };
    let values = if fortran && shape.len() > 1 { fortran_to_c(values, &shape) } else { values };
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

fn fortran_to_c(values: NpyData, shape: &[usize]) -> NpyData {
    let n: usize = shape.iter().product();
    let rank = shape.len();
    // Fortran strides: stride[0] = 1, stride[i] = stride[i-1] * shape[i-1].
    let mut fstride = vec![1usize; rank];
    for i in 1..rank {
        fstride[i] = fstride[i - 1] * shape[i - 1];
    }
    let perm: Vec<usize> = (0..n)
        .map(|mut ci| {
            let mut fi = 0;
            for d in (0..rank).rev() {
                fi += (ci % shape[d]) * fstride[d];
                ci /= shape[d];
            }
            fi
        })
        .collect();
    match values {
        NpyData::F32(v) => NpyData::F32(perm.iter().map(|&i| v[i]).collect()),
        NpyData::I64(v) => NpyData::I64(perm.iter().map(|&i| v[i]).collect()),
    }
}

/// Read a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
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
