//! `Filter`: which keys one watch follows, an exact key or a prefix.
//!
//! Invariant: a prefix matches a key when it is a byte prefix of it; the empty prefix
//! matches every key. Since both are UTF-8, a prefix that matches ends on one of the
//! key's char boundaries (the index relies on this to look prefixes up by length).

/// Which keys a watch follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    Key(String),
    Prefix(String),
}

impl Filter {
    /// Whether a change of `key` belongs to this watch.
    pub fn matches(&self, key: &str) -> bool {
        match self {
            Filter::Key(k) => k == key,
            Filter::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn keys_match_exactly_and_prefixes_by_bytes() {
        assert!(Filter::Key("a/b".into()).matches("a/b"));
        assert!(!Filter::Key("a/b".into()).matches("a/bc"));
        assert!(Filter::Prefix("a/".into()).matches("a/bc"));
        assert!(!Filter::Prefix("a/".into()).matches("a"));
        assert!(Filter::Prefix(String::new()).matches("anything"));
    }
}
