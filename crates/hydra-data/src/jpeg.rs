//! Whether a JPEG file is complete. JPEG decoders fill the missing part of a truncated file
//! with grey and report success; a cut file must instead be refused, as a truncated PNG is.
//!
//! The check walks the marker segments from the start-of-image marker: every segment must lie
//! within the file, and every scan (start-of-scan, then entropy-coded data) must be followed by
//! another marker, the last being the end-of-image marker `FF D9`. Inside entropy-coded data a
//! data byte `FF` is always stuffed as `FF 00` and restart markers are `FF D0`–`FF D7`, so
//! any other `FF xx` ends the scan: an end-of-image marker cannot appear by accident inside
//! one, and a file cut anywhere before it is detected.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Markers that stand alone (no length field): TEM and the restart markers.
fn standalone(m: u8) -> bool {
    m == 0x01 || (0xD0..=0xD7).contains(&m)
}

/// Whether `bytes` start with a JPEG start-of-image marker.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] == SOI
}

/// `Ok` when the JPEG in `bytes` reaches its end-of-image marker with every segment complete;
/// otherwise what is missing. Bytes after the end-of-image marker are allowed.
pub fn check_complete(bytes: &[u8]) -> Result<(), String> {
    if !is_jpeg(bytes) {
        return Err("not a JPEG file (no start-of-image marker)".into());
    }
    let truncated = |what: &str| Err(format!("truncated JPEG: {what} (the file ends after {} bytes)", bytes.len()));
    let mut i = 2;
    loop {
        // Find the next marker: FF, any fill bytes FF, then the marker code.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1; // garbage between segments: decoders skip it, so do we
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return truncated("no end-of-image marker");
        };
        i += 1;
        if marker == EOI {
            return Ok(());
        }
        if marker == 0x00 || standalone(marker) || marker == SOI {
            continue;
        }
        let Some(len) = bytes.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize) else {
            return truncated("a segment header is cut off");
        };
        if len < 2 {
            return Err(format!("damaged JPEG: segment FF {marker:02X} at byte {} has length {len}", i - 2));
        }
        if i + len > bytes.len() {
            return truncated(&format!("segment FF {marker:02X} at byte {} is cut off", i - 2));
        }
        i += len;
        if marker == SOS {
            // Entropy-coded data runs to the next marker other than a stuffed FF 00 or a restart.
            loop {
                match bytes.get(i) {
                    None => return truncated("the image data of a scan is cut off before the end-of-image marker"),
                    Some(0xFF) => match bytes.get(i + 1) {
                        None => return truncated("the image data of a scan is cut off before the end-of-image marker"),
                        Some(&next) if next == 0x00 || next == 0xFF || (0xD0..=0xD7).contains(&next) => i += if next == 0xFF { 1 } else { 2 },
                        Some(_) => break,
                    },
                    Some(_) => i += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    #[test]
    fn a_scan_must_end_in_the_end_of_image_marker() {
        let mut f = vec![0xFF, SOI];
        f.extend(segment(0xDB, &[0; 65]));
        f.extend(segment(SOS, &[1, 1, 0, 0, 63, 0]));
        f.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]); // data, a stuffed FF, a restart
        assert!(check_complete(&f).unwrap_err().contains("truncated JPEG"));
        f.extend([0xFF, EOI]);
        assert_eq!(check_complete(&f), Ok(()));
        for cut in 0..f.len() {
            assert!(check_complete(&f[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn a_segment_running_past_the_end_is_truncation() {
        let mut f = vec![0xFF, SOI];
        f.extend(segment(0xE0, &[0; 14]));
        f.truncate(f.len() - 3);
        assert!(check_complete(&f).unwrap_err().contains("segment FF E0 at byte 2 is cut off"));
    }
}
