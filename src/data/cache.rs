//! The binary cache of CSV splits: the first read converts the CSV into a [`Table`]; later
//! reads memory-map it. A table whose schema or source changed is rebuilt, never used.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::digest::{sha256_short, short_hex};

use super::csv::csv_to_table;
use super::{DataError, Schema, Table};

/// A table and whether this call had to build it.
#[derive(Debug)]
pub struct Loaded {
    pub table: Table,
    pub built: bool,
}

/// Identifies a file's content cheaply: size, modification time and a hash of its first
/// and last MiB.
pub fn fingerprint(path: &Path) -> Result<String, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            path: path.to_path_buf(),
            hint: String::new(),
        },
        _ => DataError::io(path)(e),
    })?;
    let meta = file.metadata().map_err(DataError::io(path))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    let window = 1u64 << 20;
    let mut buffer = Vec::new();
    (&mut file)
        .take(window)
        .read_to_end(&mut buffer)
        .map_err(DataError::io(path))?;
    if meta.len() > window {
        file.seek(SeekFrom::Start(
            meta.len().saturating_sub(window).max(window),
        ))
        .map_err(DataError::io(path))?;
        file.read_to_end(&mut buffer).map_err(DataError::io(path))?;
    }
    hasher.update(&buffer);
    Ok(format!(
        "csv size={} mtime={} sample={}",
        meta.len(),
        modified,
        short_hex(&hasher.finalize())
    ))
}

/// Where the table of `csv` lives: `.daa-cache/` beside it, or under the system's temporary
/// directory when that folder cannot be written.
pub fn table_path(csv: &Path) -> PathBuf {
    let name = format!(
        "{}.table",
        csv.file_name().unwrap_or_default().to_string_lossy()
    );
    let beside = csv.parent().unwrap_or(Path::new(".")).join(".daa-cache");
    if std::fs::create_dir_all(&beside).is_ok() && writable(&beside) {
        return beside.join(name);
    }
    let absolute = std::path::absolute(csv).unwrap_or_else(|_| csv.to_path_buf());
    let key = sha256_short(absolute.to_string_lossy().as_bytes());
    std::env::temp_dir()
        .join("daa-cache")
        .join(format!("{key}-{name}"))
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// The table of `csv` under `schema`, built from the CSV if missing or stale.
pub fn load_csv(csv: &Path, schema: &Schema) -> Result<Loaded, DataError> {
    let source = fingerprint(csv)?;
    let hash = schema.hash();
    let path = table_path(csv);
    if let Ok(table) = Table::open(&path)
        && table.header.schema_hash == hash
        && table.header.source == source
    {
        tracing::debug!(table = %path.display(), "using cached table");
        return Ok(Loaded {
            table,
            built: false,
        });
    }
    tracing::info!(csv = %csv.display(), table = %path.display(), "building the binary cache");
    let started = std::time::Instant::now();
    let header = csv_to_table(csv, schema, &path, source, hash)?;
    tracing::info!(
        rows = header.rows,
        seconds = started.elapsed().as_secs_f64(),
        "cache built"
    );
    Ok(Loaded {
        table: Table::open(&path)?,
        built: true,
    })
}
