//! Short content names: the first 8 bytes of a SHA-256 digest as 16 hex digits (experiment
//! hashes, schema hashes, cache keys, generator recipes), and files' content names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The first 8 bytes of `digest` as 16 lowercase hex digits.
pub fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The short name of `bytes`: [`short_hex`] of their SHA-256.
pub fn sha256_short(bytes: impl AsRef<[u8]>) -> String {
    short_hex(&Sha256::digest(bytes))
}

/// How long ago a file must have been modified for its memoised name to be trusted.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// A file's content name: its size and the CRC-32C of all its bytes (hardware CRC at
/// several GB/s), so that any edit gives another name. Memoised for the process by path,
/// size and modification time: a file rewritten in place is read again, and a file seen
/// before (and not modified in the last seconds) is only `stat`ed (an experiment's hash names its data files' content, and a grid
/// resolves hundreds of cells on the same files).
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    type Seen = HashMap<PathBuf, (u64, Option<SystemTime>, String)>;
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let (len, modified) = (meta.len(), meta.modified().ok());
    let seen = SEEN.get_or_init(Default::default);
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some((l, m, name)) = seen.lock().expect("the memo is never poisoned").get(&key)
        && (*l, *m) == (len, modified)
    {
        return Ok(name.clone());
    }
    let crc = if len == 0 {
        0
    } else {
        // SAFETY: the mapping is read-only and dropped here; a file edited while it is
        // read gives a name that matches neither version, so whatever was keyed by it is
        // checked again on next use.
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        crc32c::crc32c(&map)
    };
    let name = format!("size={len} crc32c={crc:08x}");
    // A file modified in the last seconds may be modified again within the clock's
    // granularity, keeping its time (git's "racily clean" files): it is read every time.
    let settled = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= SETTLED);
    if settled {
        seen.lock()
            .expect("the memo is never poisoned")
            .insert(key, (len, modified, name.clone()));
    }
    Ok(name)
}
