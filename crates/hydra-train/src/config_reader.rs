//! A strict reader of TOML tables: every key is checked for type and range, unknown keys are
//! errors that suggest the closest valid key, and every message names the full key path,
//! the value found and what is allowed.

use std::cell::RefCell;
use std::collections::BTreeSet;

use toml::Value;

/// A configuration error: one line naming the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Levenshtein distance (for "did you mean").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `options` to `key`, if reasonably close.
pub fn closest<'a>(key: &str, options: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    options
        .into_iter()
        .map(|o| (edit_distance(key, o), o))
        .filter(|(d, o)| *d <= 3.max(o.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// One table of the configuration being read.
pub struct Section<'a> {
    path: String,
    table: Option<&'a toml::Table>,
    known: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Section<'a> {
    /// The root table.
    pub fn root(table: &'a toml::Table) -> Self {
        Self { path: String::new(), table: Some(table), known: RefCell::new(BTreeSet::new()) }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() { k.to_string() } else { format!("{}.{k}", self.path) }
    }

    fn get(&self, k: &'static str) -> Option<&'a Value> {
        self.known.borrow_mut().insert(k);
        self.table.and_then(|t| t.get(k))
    }

    fn wrong(&self, k: &str, v: &Value, expected: &str) -> ConfigError {
        ConfigError(format!("{} = {}: expected {expected}, found {}", self.key(k), show(v), type_name(v)))
    }

    /// A sub-table (absent = empty).
    pub fn section(&self, k: &'static str) -> Result<Section<'a>, ConfigError> {
        let table = match self.get(k) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(v) => return Err(self.wrong(k, v, "a table")),
        };
        Ok(Section { path: self.key(k), table, known: RefCell::new(BTreeSet::new()) })
    }

    /// Whether this section exists in the file.
    pub fn present(&self) -> bool {
        self.table.is_some()
    }

    /// The section's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A float in `[lo, hi]`.
    pub fn f64(&self, k: &'static str, default: f64, lo: f64, hi: f64) -> Result<f64, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => {
                let x = match v {
                    Value::Float(f) => *f,
                    Value::Integer(i) => *i as f64,
                    _ => return Err(self.wrong(k, v, &format!("a number in [{lo}, {hi}]"))),
                };
                if !(x.is_finite() && x >= lo && x <= hi) {
                    return Err(ConfigError(format!("{} = {}: must be in [{lo}, {hi}]", self.key(k), show(v))));
                }
                Ok(x)
            }
        }
    }

    /// An integer in `[lo, hi]`.
    pub fn int(&self, k: &'static str, default: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Integer(i)) if *i >= lo && *i <= hi => Ok(*i),
            Some(v @ Value::Integer(_)) => Err(ConfigError(format!("{} = {}: must be an integer in [{lo}, {hi}]", self.key(k), show(v)))),
            Some(v) => Err(self.wrong(k, v, &format!("an integer in [{lo}, {hi}]"))),
        }
    }

    /// A non-negative integer in `[lo, hi]`.
    pub fn usize(&self, k: &'static str, default: usize, lo: usize, hi: usize) -> Result<usize, ConfigError> {
        self.int(k, default as i64, lo as i64, hi as i64).map(|v| v as usize)
    }

    /// A u64 (seeds).
    pub fn u64(&self, k: &'static str, default: u64) -> Result<u64, ConfigError> {
        self.int(k, default as i64, 0, i64::MAX).map(|v| v as u64)
    }

    /// A boolean.
    pub fn bool(&self, k: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.wrong(k, v, "true or false")),
        }
    }

    /// An optional string.
    pub fn opt_string(&self, k: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(k, v, "a string")),
        }
    }

    /// A string.
    pub fn string(&self, k: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.opt_string(k)?.unwrap_or_else(|| default.to_string()))
    }

    /// One of `choices`.
    pub fn choice(&self, k: &'static str, default: &str, choices: &[&str]) -> Result<String, ConfigError> {
        let s = self.string(k, default)?;
        if choices.contains(&s.as_str()) {
            return Ok(s);
        }
        let hint = closest(&s, choices.iter().copied()).map(|c| format!(" (did you mean \"{c}\"?)")).unwrap_or_default();
        Err(ConfigError(format!("{} = \"{s}\": must be one of {}{hint}", self.key(k), choices.join(", "))))
    }

    /// An array of floats with `len` entries (or any length if `len` is 0), each in `[lo, hi]`.
    pub fn f64_array(&self, k: &'static str, default: &[f64], len: usize, lo: f64, hi: f64) -> Result<Vec<f64>, ConfigError> {
        let Some(v) = self.get(k) else { return Ok(default.to_vec()) };
        let what = if len > 0 { format!("an array of {len} numbers in [{lo}, {hi}]") } else { format!("an array of numbers in [{lo}, {hi}]") };
        let Value::Array(a) = v else { return Err(self.wrong(k, v, &what)) };
        if len > 0 && a.len() != len {
            return Err(ConfigError(format!("{} = {}: expected {what}", self.key(k), show(v))));
        }
        a.iter()
            .map(|x| match x {
                Value::Float(f) if f.is_finite() && *f >= lo && *f <= hi => Ok(*f),
                Value::Integer(i) if (*i as f64) >= lo && (*i as f64) <= hi => Ok(*i as f64),
                _ => Err(ConfigError(format!("{} = {}: expected {what}", self.key(k), show(v)))),
            })
            .collect()
    }

    /// An array of whole numbers (pixels, epochs) in `[lo, hi]`: a fractional value is an
    /// error, not truncated.
    pub fn usize_array(&self, k: &'static str, default: &[usize], len: usize, lo: usize, hi: usize) -> Result<Vec<usize>, ConfigError> {
        let d: Vec<f64> = default.iter().map(|&v| v as f64).collect();
        let values = self.f64_array(k, &d, len, lo as f64, hi as f64)?;
        if let Some(v) = values.iter().find(|v| v.fract() != 0.0) {
            return Err(ConfigError(format!("{} = {}: {v} is not a whole number", self.key(k), show(self.get(k).expect("present")))));
        }
        Ok(values.into_iter().map(|v| v as usize).collect())
    }

    /// An array of strings, each one of `choices` (if non-empty).
    pub fn string_array(&self, k: &'static str, default: &[&str], choices: &[&str]) -> Result<Vec<String>, ConfigError> {
        let Some(v) = self.get(k) else { return Ok(default.iter().map(|s| s.to_string()).collect()) };
        let Value::Array(a) = v else { return Err(self.wrong(k, v, "an array of strings")) };
        a.iter()
            .map(|x| match x {
                Value::String(s) if choices.is_empty() || choices.contains(&s.as_str()) => Ok(s.clone()),
                Value::String(s) => Err(ConfigError(format!(
                    "{} = {}: \"{s}\" must be one of {}",
                    self.key(k),
                    show(v),
                    choices.join(", ")
                ))),
                _ => Err(self.wrong(k, v, "an array of strings")),
            })
            .collect()
    }

    /// Fail on keys no reader asked for, suggesting the closest known key.
    pub fn finish(&self) -> Result<(), ConfigError> {
        let Some(t) = self.table else { return Ok(()) };
        let known = self.known.borrow();
        for k in t.keys() {
            if !known.contains(k.as_str()) {
                let hint = closest(k, known.iter().copied()).map(|c| format!(" (did you mean `{}`?)", self.key(c))).unwrap_or_default();
                let valid: Vec<&str> = known.iter().copied().collect();
                return Err(ConfigError(format!("{}: unknown key{hint}; valid keys here: {}", self.key(k), valid.join(", "))));
            }
        }
        Ok(())
    }
}

/// Apply `--set a.b.c=value` to a table. The value is parsed as TOML (`0.1`, `true`,
/// `[1, 2]`, `"text"`); a bare word that is not valid TOML is taken as a string.
pub fn apply_override(root: &mut toml::Table, spec: &str) -> Result<(), ConfigError> {
    let (path, raw) = spec
        .split_once('=')
        .ok_or_else(|| ConfigError(format!("--set {spec}: expected section.key=value")))?;
    let path: Vec<&str> = path.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError(format!("--set {spec}: empty key in `{}`", path.join("."))));
    }
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed"),
        Err(_) => Value::String(raw.to_string()),
    };
    let mut table = root;
    for (i, p) in path.iter().enumerate() {
        if i + 1 == path.len() {
            table.insert(p.to_string(), value);
            return Ok(());
        }
        let entry = table.entry(p.to_string()).or_insert_with(|| Value::Table(toml::Table::new()));
        table = match entry {
            Value::Table(t) => t,
            _ => return Err(ConfigError(format!("--set {spec}: `{}` is not a table", path[..=i].join(".")))),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn unknown_key_suggests_closest() {
        let t = table("[optimizer]\nmomentun = 0.9\n");
        let root = Section::root(&t);
        let o = root.section("optimizer").unwrap();
        o.f64("momentum", 0.9, 0.0, 1.0).unwrap();
        o.f64("weight_decay", 0.0, 0.0, 1.0).unwrap();
        let e = o.finish().unwrap_err().0;
        assert!(e.contains("optimizer.momentun: unknown key (did you mean `optimizer.momentum`?)"), "{e}");
    }

    #[test]
    fn range_and_type_errors_name_key_and_value() {
        let t = table("a = 1.5\nb = \"x\"\nc = 3\n");
        let r = Section::root(&t);
        assert_eq!(r.f64("a", 0.0, 0.0, 1.0).unwrap_err().0, "a = 1.5: must be in [0, 1]");
        assert_eq!(r.f64("b", 0.0, 0.0, 1.0).unwrap_err().0, "b = \"x\": expected a number in [0, 1], found a string");
        assert!(r.usize("c", 1, 4, 8).unwrap_err().0.contains("c = 3: must be an integer in [4, 8]"));
    }

    #[test]
    fn choice_suggests() {
        let t = table("kind = \"adamm\"\n");
        let e = Section::root(&t).choice("kind", "sgd", &["sgd", "adam", "adamw"]).unwrap_err().0;
        assert!(e.contains("did you mean \"adam\"?"), "{e}");
    }

    #[test]
    fn overrides_parse_toml_values() {
        let mut t = table("[training]\nepochs = 3\n");
        apply_override(&mut t, "training.epochs=7").unwrap();
        apply_override(&mut t, "optimizer.kind=adam").unwrap();
        apply_override(&mut t, "augment.scale=[0.5, 2.0]").unwrap();
        assert_eq!(t["training"]["epochs"].as_integer(), Some(7));
        assert_eq!(t["optimizer"]["kind"].as_str(), Some("adam"));
        assert_eq!(t["augment"]["scale"].as_array().unwrap().len(), 2);
        assert!(apply_override(&mut t, "training.epochs.x=1").is_err());
        assert!(apply_override(&mut t, "noequals").is_err());
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("lr", ["encoder_lr", "momentum"]), None);
        assert_eq!(closest("encoder_l", ["encoder_lr", "momentum"]), Some("encoder_lr"));
    }

    #[test]
    fn edit_distances_by_hand() {
        // kitten → sitten → sittin → sitting; deletions, insertions and substitutions each 1.
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("ab", "a"), 1);
        assert_eq!(edit_distance("a", "ab"), 1);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn a_long_key_is_suggested_within_a_third_of_its_length() {
        // 19 characters: up to 6 edits away is close (`3.max(19 / 3)`).
        assert_eq!(edit_distance("checkpoint_int", "checkpoint_interval"), 5);
        assert_eq!(closest("checkpoint_int", ["checkpoint_interval"]), Some("checkpoint_interval"));
        assert_eq!(closest("checkpoint", ["checkpoint_interval"]), None, "9 edits is not close");
        // The closer of two wins.
        assert_eq!(closest("momentun", ["momentum", "moment"]), Some("momentum"));
    }

    #[test]
    fn number_arrays_check_length_and_every_entry() {
        let t = table("a = [1, 2.5, 3]\nb = [0.5, 2.0]\nc = [-0.5, 0.5]\nd = [0.25, 0.75]\n");
        let r = Section::root(&t);
        // Length 0: any length.
        assert_eq!(r.f64_array("a", &[], 0, 0.0, 10.0), Ok(vec![1.0, 2.5, 3.0]));
        assert!(r.f64_array("a", &[], 2, 0.0, 10.0).unwrap_err().0.contains("expected an array of 2 numbers"));
        // Every entry in range: above and below are both refused.
        assert!(r.f64_array("b", &[], 2, 0.0, 1.0).unwrap_err().0.contains("b = [0.5, 2.0]: expected an array of 2 numbers in [0, 1]"));
        assert!(r.f64_array("c", &[], 2, 0.0, 1.0).is_err());
        // Any length: the message does not speak of a length.
        assert!(r.f64_array("c", &[], 0, 0.0, 1.0).unwrap_err().0.ends_with("c = [-0.5, 0.5]: expected an array of numbers in [0, 1]"));
        assert_eq!(r.f64_array("d", &[], 2, 0.0, 1.0), Ok(vec![0.25, 0.75]));
        assert_eq!(r.f64_array("missing", &[7.0], 1, 0.0, 10.0), Ok(vec![7.0]));
    }
}
