//! The rules for tags (`key=value` strings on entries): one place that checks them, used by
//! every put, by documents before their tensors are appended, and by the command line.

use crate::error::{Error, Result};

/// Longest tag key, in bytes.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE: usize = 1024;

/// Check one tag against the archive's rules: a key of 1 to `MAX_TAG_KEY` bytes without `=`,
/// white space or control characters; a value of at most `MAX_TAG_VALUE` bytes without
/// control characters.
pub fn validate_tag(key: &str, value: &str) -> Result<()> {
    let input = || format!("tag {key}={value}");
    // Printable ASCII, the common case, is checked byte by byte; anything else by chars.
    let plain_key = key.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
    let plain_value = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if plain_key
        && plain_value
        && (1..=MAX_TAG_KEY).contains(&key.len())
        && value.len() <= MAX_TAG_VALUE
    {
        return Ok(());
    }
    if key.is_empty() || key.len() > MAX_TAG_KEY {
        return Err(Error::invalid(
            input(),
            format!("a tag key takes 1 to {MAX_TAG_KEY} bytes"),
        ));
    }
    if key
        .chars()
        .any(|c| c == '=' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            input(),
            "a tag key cannot hold `=`, spaces or control characters",
        ));
    }
    if value.len() > MAX_TAG_VALUE || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            input(),
            format!("a tag value takes at most {MAX_TAG_VALUE} bytes and no control characters"),
        ));
    }
    Ok(())
}

/// Check every tag (see [`validate_tag`]).
pub fn validate_tags(tags: &[(&str, &str)]) -> Result<()> {
    tags.iter().try_for_each(|(k, v)| validate_tag(k, v))
}

/// Owned copies of tags.
pub(crate) fn owned_tags(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_outside_the_rules_are_refused() {
        assert!(validate_tags(&[("run", "a b"), ("split", "")]).is_ok());
        assert!(validate_tag("", "x").is_err());
        assert!(validate_tag("a=b", "x").is_err());
        assert!(validate_tag("a b", "x").is_err());
        assert!(validate_tag(&"k".repeat(MAX_TAG_KEY + 1), "x").is_err());
        assert!(validate_tag("k", &"v".repeat(MAX_TAG_VALUE + 1)).is_err());
        assert!(validate_tag("k", "line\nbreak").is_err());
        assert!(validate_tag(&"k".repeat(MAX_TAG_KEY), &"v".repeat(MAX_TAG_VALUE)).is_ok());
    }
}
