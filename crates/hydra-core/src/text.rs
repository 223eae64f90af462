//! Text from files in messages: a damaged file's names and keys may hold any character.

/// `text` on one line: control characters (newlines included) escaped as Rust writes them
/// (`\n`, `\u{1b}`), so that a refusal quoting a file's text stays one line.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(super::one_line("a\nb\tc\u{1b}é €"), "a\\nb\\tc\\u{1b}é €");
    }
}
