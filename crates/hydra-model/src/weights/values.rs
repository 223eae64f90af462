//! What a weight file's numbers may be: every float finite, every BatchNorm variance
//! non-negative. Checked on every file read (whatever its format) and on every state
//! applied to a network, so a damaged file or a diverged run's weights are refused by name
//! rather than turning every output into NaN.

use crate::state::{StateDict, TensorValues};

/// "1 NaN value", "3 NaN values".
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// What is wrong with one tensor's values, if anything.
fn problem(key: &str, v: &[f32]) -> Option<String> {
    let (mut nan, mut inf, mut first) = (0usize, 0usize, None::<usize>);
    for (i, x) in v.iter().enumerate() {
        if !x.is_finite() {
            if x.is_nan() {
                nan += 1;
            } else {
                inf += 1;
            }
            first.get_or_insert(i);
        }
    }
    if let Some(first) = first {
        let what = match (nan, inf) {
            (0, i) => count(i, "infinite value"),
            (n, 0) => count(n, "NaN value"),
            (n, i) => format!("{n} NaN and {}", count(i, "infinite value")),
        };
        return Some(format!("tensor `{key}`: {what} (the first at element {first}); weights must be finite"));
    }
    if key.ends_with("running_var") {
        let negative = v.iter().filter(|&&x| x < 0.0).count();
        if negative > 0 {
            return Some(format!("tensor `{key}`: {} (a variance cannot be negative)", count(negative, "negative value")));
        }
    }
    None
}

/// Refuse non-finite floats and negative `running_var` entries, naming the first tensor
/// (keys reported with `prefix` in front, as the file spells them) and counting the others.
pub fn check(state: &StateDict, prefix: &str) -> Result<(), String> {
    let mut found = state.iter().filter_map(|(k, t)| match &t.values {
        TensorValues::F32(v) => problem(&format!("{prefix}{k}"), v),
        TensorValues::I64(_) => None,
    });
    let Some(first) = found.next() else { return Ok(()) };
    let more = found.count();
    Err(if more == 0 { first } else { format!("{first} (and {} with bad values)", count(more, "more tensor")) })
}
