//! Bearer tokens: `<id>.<secret>`, the id 16 hex digits, the secret 32 random bytes
//! as 64 hex digits. Only the id and the SHA-256 of the secret are replicated (a fast
//! hash is right for a secret of 256 random bits); the secret is shown once, when the
//! token is made. Verifying compares hashes in constant time.

use sha2::{Digest, Sha256};

/// Random bytes of a token's secret.
pub const SECRET_BYTES: usize = 32;

/// A token just made: what the log carries (`id`, `hash`) and what the caller is shown
/// once (`token`).
#[derive(Clone, Debug)]
pub struct NewToken {
    pub id: String,
    pub hash: [u8; 32],
    pub token: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A fresh token from the OS random source.
pub fn generate() -> Result<NewToken, String> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).map_err(|e| format!("the OS random source failed: {e}"))?;
    getrandom::fill(&mut secret).map_err(|e| format!("the OS random source failed: {e}"))?;
    let (id, secret) = (hex(&id), hex(&secret));
    Ok(NewToken {
        hash: hash_secret(&secret),
        token: format!("{id}.{secret}"),
        id,
    })
}

/// Splits `<id>.<secret>`; None when it has no dot or an empty part.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` hashes to `hash`, in time independent of where they differ.
pub fn verify(secret: &str, hash: &[u8; 32]) -> bool {
    let got = hash_secret(secret);
    got.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_verifies_and_others_do_not() {
        let t = generate().unwrap();
        let (id, secret) = split(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert_eq!(secret.len(), 2 * SECRET_BYTES);
        assert!(verify(secret, &t.hash));
        assert!(!verify(&secret[1..], &t.hash));
        assert!(!verify("", &t.hash));
        assert_ne!(generate().unwrap().token, t.token);
    }

    #[test]
    fn malformed_tokens_do_not_split() {
        assert_eq!(split("abc"), None);
        assert_eq!(split(".abc"), None);
        assert_eq!(split("abc."), None);
        assert_eq!(split("a.b.c"), Some(("a", "b.c")));
    }
}
