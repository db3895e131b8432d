//! Short content names: the first 8 bytes of a SHA-256 digest as 16 hex digits (experiment
//! hashes, schema hashes, cache keys, generator recipes).

use sha2::{Digest, Sha256};

/// The first 8 bytes of `digest` as 16 lowercase hex digits.
pub fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The short name of `bytes`: [`short_hex`] of their SHA-256.
pub fn sha256_short(bytes: impl AsRef<[u8]>) -> String {
    short_hex(&Sha256::digest(bytes))
}
