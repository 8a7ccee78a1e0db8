//! Idempotency-Keys: 128 random bits from the operating system, as 32 hex digits.
//!
//! Invariant: one key per logical write, generated before its first attempt and sent
//! unchanged with every retry of that write; never reused for another write (two
//! random 128-bit keys collide with probability about 2^-64 after 2^32 keys).

use crate::error::Error;

/// A fresh key.
pub fn new_key() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::InvalidArgument(format!("no OS randomness for an Idempotency-Key: {e}"))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_32_hex_digits_and_differ() {
        let keys: HashSet<String> = (0..1000).map(|_| new_key().unwrap_or_default()).collect();
        assert_eq!(keys.len(), 1000);
        assert!(keys
            .iter()
            .all(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
