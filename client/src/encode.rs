//! Keys and values in URLs: every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`)
//! is percent-encoded, `/` and `+` included, which the server decodes back to the
//! same key (docs/API.md: percent-decoding is the one rule).
//!
//! A key that is exactly `.` or `..` cannot travel in a path: URL parsers remove such
//! segments (`%2e` included), so [`key_path`] refuses them (a transaction can name them).

use crate::error::Error;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One URL component (a path segment or a query value).
pub fn component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The path of a key: `/v1/keys/{key}`.
pub fn key_path(key: &str) -> Result<String, Error> {
    if key == "." || key == ".." {
        return Err(Error::InvalidArgument(format!(
            "the key {key:?} cannot be sent in a URL path (URL parsers drop dot segments); \
             use a transaction"
        )));
    }
    Ok(format!("/v1/keys/{}", component(key)))
}

/// A query string from (name, value) pairs, each value encoded; "" when none.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", component(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bytes_are_encoded_and_dot_segments_refused() {
        assert_eq!(component("a/b+c d"), "a%2Fb%2Bc%20d");
        assert_eq!(component("x.y_z~-"), "x.y_z~-");
        assert_eq!(component("é"), "%C3%A9");
        assert_eq!(key_path("a/b"), Ok("/v1/keys/a%2Fb".into()));
        assert!(key_path("..").is_err());
        assert_eq!(key_path("..."), Ok("/v1/keys/...".into()));
        assert_eq!(
            query(&[("prefix", "a b".into()), ("limit", "3".into())]),
            "?prefix=a%20b&limit=3"
        );
    }
}
