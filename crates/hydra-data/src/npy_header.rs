//! The header of a NumPy `.npy` file: a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
//!
//! The parser is a single loop over tokens, never recursive: the format has no nesting beyond
//! the flat `shape` tuple, so a bracket inside a value (a nested tuple, list or dict, as in a
//! structured dtype) is refused at once with a clear error, however deep it goes. Exactly the
//! keys `descr`, `fortran_order` and `shape` must appear, each once (as NumPy requires); shapes
//! are bounded in rank and every dimension is checked for overflow before anything is
//! allocated.

/// Most dimensions accepted (NumPy's own limit is 64).
pub const MAX_RANK: usize = 64;

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Dimensions.
    pub shape: Vec<usize>,
}

/// One lexical token of the header.
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Open(char),
    Close(char),
    Colon,
    Comma,
    Str(&'a str),
    Word(&'a str),
}

/// The tokens of `text`, or an error naming the offending character.
fn tokens(text: &str) -> Result<Vec<(usize, Token<'_>)>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0 => {
                i += 1;
                continue;
            }
            b'{' | b'(' | b'[' => {
                i += 1;
                Token::Open(c as char)
            }
            b'}' | b')' | b']' => {
                i += 1;
                Token::Close(c as char)
            }
            b':' => {
                i += 1;
                Token::Colon
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'\'' | b'"' => {
                let end = bytes[i + 1..].iter().position(|&b| b == c || b == b'\\').map(|p| i + 1 + p);
                match end {
                    Some(e) if bytes[e] == c => {
                        i = e + 1;
                        Token::Str(&text[start + 1..e])
                    }
                    Some(e) => return Err(format!("escape sequence in a string at byte {e} (not part of the .npy format)")),
                    None => return Err(format!("unterminated string starting at byte {start}")),
                }
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'+' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'+' | b'.')) {
                    i += 1;
                }
                Token::Word(&text[start..i])
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character {ch:?} at byte {start}"));
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

/// A dimension: a non-negative integer (Python 2's `3L` accepted).
fn dimension(word: &str) -> Result<usize, String> {
    let digits = word.strip_suffix('L').unwrap_or(word);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("shape entry `{word}` is not a non-negative integer"));
    }
    digits.parse::<usize>().map_err(|_| format!("shape entry `{word}` is too large"))
}

/// A parsed value of the dict.
enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Shape(Vec<usize>),
}

/// Parse the header text (the bytes between the length field and the data, as UTF-8).
pub fn parse_header(text: &str) -> Result<NpyHeader, String> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let nested = |at: usize, c: char| {
        format!("`{c}` at byte {at}: nested tuples, lists or dicts are not part of a .npy header (structured dtypes are not supported)")
    };
    match it.next() {
        Some((_, Token::Open('{'))) => {}
        Some((at, _)) => return Err(format!("expected `{{` at byte {at}: the header must be a dict")),
        None => return Err("empty header".into()),
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        // Key, or the end of the dict.
        let key = match it.next() {
            Some((_, Token::Close('}'))) => break,
            Some((_, Token::Str(k))) => k,
            Some((at, Token::Open(c))) => return Err(nested(at, c)),
            Some((at, t)) => return Err(format!("expected a quoted key at byte {at}, found {t:?}")),
            None => return Err("the header dict is not closed with `}`".into()),
        };
        if !["descr", "fortran_order", "shape"].contains(&key) {
            return Err(format!("unexpected key '{key}' (a .npy header has descr, fortran_order and shape)"));
        }
        match it.next() {
            Some((_, Token::Colon)) => {}
            Some((at, _)) => return Err(format!("expected `:` after key '{key}' at byte {at}")),
            None => return Err(format!("the header ends after key '{key}'")),
        }
        let value = match it.next() {
            Some((_, Token::Str(s))) => Value::Str(s),
            Some((_, Token::Word("True"))) => Value::Bool(true),
            Some((_, Token::Word("False"))) => Value::Bool(false),
            Some((_, Token::Open('('))) => {
                let mut dims = Vec::new();
                loop {
                    match it.next() {
                        Some((_, Token::Close(')'))) => break,
                        Some((at, Token::Word(w))) => {
                            if dims.len() == MAX_RANK {
                                return Err(format!("shape has more than {MAX_RANK} dimensions (at byte {at})"));
                            }
                            dims.push(dimension(w)?);
                            match it.next() {
                                Some((_, Token::Comma)) => {}
                                Some((_, Token::Close(')'))) => break,
                                Some((at, Token::Open(c))) => return Err(nested(at, c)),
                                Some((at, _)) => return Err(format!("expected `,` or `)` in the shape at byte {at}")),
                                None => return Err("the shape tuple is not closed".into()),
                            }
                        }
                        Some((at, Token::Open(c))) => return Err(nested(at, c)),
                        Some((at, t)) => return Err(format!("expected a dimension in the shape at byte {at}, found {t:?}")),
                        None => return Err("the shape tuple is not closed".into()),
                    }
                }
                Value::Shape(dims)
            }
            Some((at, Token::Open(c))) => return Err(nested(at, c)),
            Some((at, t)) => return Err(format!("unsupported value for '{key}' at byte {at}: {t:?}")),
            None => return Err(format!("the header ends after key '{key}'")),
        };
        let slot_taken = match (key, value) {
            ("descr", Value::Str(s)) => descr.replace(s.to_string()).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Shape(s)) => shape.replace(s).is_some(),
            _ => return Err(format!("'{key}' has a value of the wrong type")),
        };
        if slot_taken {
            return Err(format!("duplicate key '{key}'"));
        }
        match it.next() {
            Some((_, Token::Comma)) => {}
            Some((_, Token::Close('}'))) => break,
            Some((at, _)) => return Err(format!("expected `,` or `}}` at byte {at}")),
            None => return Err("the header dict is not closed with `}`".into()),
        }
    }
    if let Some((at, _)) = it.next() {
        return Err(format!("unexpected text after the header dict at byte {at}"));
    }
    Ok(NpyHeader {
        descr: descr.ok_or("header without descr")?,
        fortran_order: fortran.ok_or("header without fortran_order")?,
        shape: shape.ok_or("header without shape")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_headers_parse() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }          \n").unwrap();
        assert_eq!(h, NpyHeader { descr: "<f4".into(), fortran_order: false, shape: vec![2, 3, 4] });
        assert_eq!(parse_header("{'descr':'|u1','fortran_order':True,'shape':(5,)}").unwrap().shape, vec![5]);
        assert_eq!(parse_header("{'descr': '<i8', 'fortran_order': False, 'shape': (), }").unwrap().shape, Vec::<usize>::new());
        assert_eq!(parse_header("{\"shape\": (3L, 4L), \"fortran_order\": False, \"descr\": \"<f8\"}").unwrap().shape, vec![3, 4]);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (9,), }").unwrap_err();
        assert_eq!(e, "duplicate key 'shape'");
    }

    #[test]
    fn nesting_is_refused_without_recursion() {
        let deep = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}, }}", "(".repeat(100_000), ")".repeat(100_000));
        let e = parse_header(&deep).unwrap_err();
        assert!(e.contains("nested"), "{e}");
        let e = parse_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }").unwrap_err();
        assert!(e.contains("structured dtypes"), "{e}");
    }

    #[test]
    fn absurd_shapes_are_refused() {
        let e = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }").unwrap_err();
        assert!(e.contains("not a non-negative integer"), "{e}");
        let many = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", "1,".repeat(65));
        assert!(parse_header(&many).unwrap_err().contains("more than 64 dimensions"));
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        assert_eq!(parse_header("{'descr': '<f4', 'shape': (2,)}").unwrap_err(), "header without fortran_order");
        assert!(parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}").unwrap_err().contains("unexpected key 'x'"));
    }
}
