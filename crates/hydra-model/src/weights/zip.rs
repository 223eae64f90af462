//! A minimal reader of the uncompressed zip archives `torch.save` writes.
//!
//! Only what PyTorch produces is supported: stored (method 0) entries, optionally ZIP64.
//! Every offset and size is checked against the file length before use; each entry's data
//! must match its CRC-32, no two entries may share a name or overlap (an archive whose
//! entries overlap can make a small file expand without end), and the local header must
//! agree with the central directory on the name.

/// One stored entry: its name and the byte range of its data in the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipEntry {
    pub name: String,
    pub start: usize,
    pub len: usize,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| "truncated zip structure".to_string())
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| "truncated zip structure".to_string())
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| "truncated zip structure".to_string())
}

fn to_usize(v: u64, what: &str, limit: usize) -> Result<usize, String> {
    usize::try_from(v).ok().filter(|&x| x <= limit).ok_or_else(|| format!("{what} {v} is beyond the end of the file ({limit} bytes)"))
}

/// List the entries of a zip archive held in `b`.
pub fn read_entries(b: &[u8]) -> Result<Vec<ZipEntry>, String> {
    const EOCD: u32 = 0x0605_4b50;
    if b.len() < 22 {
        return Err("truncated: too short for a zip archive".into());
    }
    let lo = b.len().saturating_sub(22 + 65_535);
    let eocd = (lo..=b.len() - 22)
        .rev()
        .find(|&i| u32_at(b, i).map(|v| v == EOCD).unwrap_or(false))
        .ok_or("truncated or damaged: no zip end-of-central-directory record")?;
    let mut count = u16_at(b, eocd + 10)? as u64;
    let mut cd_size = u32_at(b, eocd + 12)? as u64;
    let mut cd_offset = u32_at(b, eocd + 16)? as u64;
    if count == 0xffff || cd_offset == 0xffff_ffff || cd_size == 0xffff_ffff {
        // ZIP64: the locator sits just before the EOCD.
        if eocd < 20 || u32_at(b, eocd - 20)? != 0x0706_4b50 {
            return Err("damaged ZIP64 archive: no end-of-central-directory locator".into());
        }
        let rec = to_usize(u64_at(b, eocd - 20 + 8)?, "ZIP64 record offset", b.len())?;
        if u32_at(b, rec)? != 0x0606_4b50 {
            return Err("damaged ZIP64 archive: bad end-of-central-directory record".into());
        }
        count = u64_at(b, rec + 32)?;
        cd_size = u64_at(b, rec + 40)?;
        cd_offset = u64_at(b, rec + 48)?;
    }
    let cd_start = to_usize(cd_offset, "central directory offset", b.len())?;
    let cd_end = to_usize(cd_offset.saturating_add(cd_size), "central directory end", b.len())?;
    // Each central directory record is at least 46 bytes: bound the count by the bytes present.
    if count > ((cd_end - cd_start) / 46) as u64 {
        return Err(format!("damaged zip: {count} entries declared in a {}-byte directory", cd_end - cd_start));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut spans = Vec::with_capacity(count as usize);
    let mut crcs = Vec::with_capacity(count as usize);
    let mut p = cd_start;
    for _ in 0..count {
        if u32_at(b, p)? != 0x0201_4b50 {
            return Err(format!("damaged zip: bad central directory record at byte {p}"));
        }
        let method = u16_at(b, p + 10)?;
        let crc = u32_at(b, p + 16)?;
        let mut csize = u32_at(b, p + 20)? as u64;
        let mut usize_ = u32_at(b, p + 24)? as u64;
        let name_len = u16_at(b, p + 28)? as usize;
        let extra_len = u16_at(b, p + 30)? as usize;
        let comment_len = u16_at(b, p + 32)? as usize;
        let mut local = u32_at(b, p + 42)? as u64;
        let name_bytes = b.get(p + 46..p + 46 + name_len).ok_or("truncated zip entry name")?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        // ZIP64 extended information in the extra field.
        let extra = b.get(p + 46 + name_len..p + 46 + name_len + extra_len).ok_or("truncated zip extra field")?;
        let mut q = 0;
        while q + 4 <= extra.len() {
            let id = u16_at(extra, q)?;
            let len = u16_at(extra, q + 2)? as usize;
            if id == 0x0001 {
                let mut r = q + 4;
                if usize_ == 0xffff_ffff {
                    usize_ = u64_at(extra, r)?;
                    r += 8;
                }
                if csize == 0xffff_ffff {
                    csize = u64_at(extra, r)?;
                    r += 8;
                }
                if local == 0xffff_ffff {
                    local = u64_at(extra, r)?;
                }
            }
            q += 4 + len;
        }
        if method != 0 {
            return Err(format!("entry `{name}` is compressed (method {method}); PyTorch archives are stored uncompressed"));
        }
        if csize != usize_ {
            return Err(format!("entry `{name}`: stored sizes disagree ({csize} vs {usize_})"));
        }
        let local = to_usize(local, "local header offset", b.len())?;
        if u32_at(b, local)? != 0x0403_4b50 {
            return Err(format!("damaged zip: bad local header for `{name}`"));
        }
        let lname = u16_at(b, local + 26)? as usize;
        let lextra = u16_at(b, local + 28)? as usize;
        if b.get(local + 30..local + 30 + lname) != Some(name_bytes) {
            return Err(format!("damaged zip: the local header of `{name}` names another entry"));
        }
        let start = local + 30 + lname + lextra;
        let len = to_usize(csize, &format!("size of `{name}`"), b.len())?;
        if start.checked_add(len).is_none_or(|e| e > b.len()) {
            return Err(format!("truncated: entry `{name}` extends beyond the end of the file"));
        }
        entries.push(ZipEntry { name, start, len });
        spans.push(local..start + len);
        crcs.push(crc);
        p += 46 + name_len + extra_len + comment_len;
    }
    // The layout first: with no overlap, the CRCs below read each byte of the file once.
    check_layout(&entries, &spans, cd_start..cd_end)?;
    for (e, &crc) in entries.iter().zip(&crcs) {
        check_crc(&e.name, crc, &b[e.start..e.start + e.len])?;
    }
    Ok(entries)
}

/// A CRC-32 of 0 on a non-empty entry means none was recorded
/// (`torch.serialization.set_crc32_options(False)`); any other value must match.
fn check_crc(name: &str, recorded: u32, data: &[u8]) -> Result<(), String> {
    let actual = crc32fast::hash(data);
    if actual != recorded && !(recorded == 0 && !data.is_empty()) {
        return Err(format!(
            "damaged: entry `{name}` does not match its CRC-32 (recorded {recorded:08x}, its {} bytes give {actual:08x})",
            data.len()
        ));
    }
    Ok(())
}

/// No two entries share a name; no two entries (local header to end of data) overlap each
/// other or the central directory.
fn check_layout(entries: &[ZipEntry], spans: &[std::ops::Range<usize>], directory: std::ops::Range<usize>) -> Result<(), String> {
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("damaged zip: two entries are named `{}`", w[0]));
    }
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].start, spans[i].end));
    for w in order.windows(2) {
        let (a, b) = (&spans[w[0]], &spans[w[1]]);
        if b.start < a.end {
            return Err(format!(
                "damaged zip: entries `{}` (bytes {}..{}) and `{}` (bytes {}..{}) overlap",
                entries[w[0]].name, a.start, a.end, entries[w[1]].name, b.start, b.end
            ));
        }
    }
    if let Some(i) = (0..spans.len()).find(|&i| spans[i].start < directory.end && directory.start < spans[i].end) {
        return Err(format!("damaged zip: entry `{}` overlaps the central directory", entries[i].name));
    }
    Ok(())
}
