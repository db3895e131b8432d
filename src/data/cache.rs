//! The binary cache of CSV splits: the first read converts the CSV into a [`Table`]; later
//! reads memory-map it. A table whose schema or source changed is rebuilt, never used.

use std::path::{Path, PathBuf};

use crate::digest::sha256_short;

use super::csv::csv_to_table;
use super::{DataError, Schema, Table};

/// A table and whether this call had to build it.
#[derive(Debug)]
pub struct Loaded {
    pub table: Table,
    pub built: bool,
}

/// Identifies a CSV file's content ([`crate::digest::file_fingerprint`]), so that any
/// edit makes the cache stale.
pub fn fingerprint(path: &Path) -> Result<String, DataError> {
    crate::digest::file_fingerprint(path)
        .map(|name| format!("csv {name}"))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing {
                path: path.to_path_buf(),
                hint: String::new(),
            },
            _ => DataError::io(path)(e),
        })
}

/// The two places a table of `csv` may live: `.daa-cache/` beside it, and under the
/// system's temporary directory (for a CSV whose folder cannot be written).
fn table_places(csv: &Path) -> [PathBuf; 2] {
    let name = format!(
        "{}.table",
        csv.file_name().unwrap_or_default().to_string_lossy()
    );
    let beside = csv.parent().unwrap_or(Path::new(".")).join(".daa-cache");
    let absolute = std::path::absolute(csv).unwrap_or_else(|_| csv.to_path_buf());
    let key = sha256_short(absolute.to_string_lossy().as_bytes());
    [
        beside.join(&name),
        std::env::temp_dir()
            .join("daa-cache")
            .join(format!("{key}-{name}")),
    ]
}

/// Where the table of `csv` is built: `.daa-cache/` beside it, or under the system's
/// temporary directory when that folder cannot be written.
fn table_path(csv: &Path) -> PathBuf {
    let [beside, temporary] = table_places(csv);
    let folder = beside.parent().expect("tables live in a directory");
    if std::fs::create_dir_all(folder).is_ok() && writable(folder) {
        return beside;
    }
    temporary
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
    let current = |table: &Table| table.header.schema_hash == hash && table.header.source == source;
    // A current table is read without the writer's lock (it is checksummed and written by a
    // rename), so that a cache on read-only storage serves.
    for path in table_places(csv) {
        if let Ok(table) = Table::open(&path)
            && current(&table)
        {
            tracing::debug!(table = %path.display(), "using cached table");
            return Ok(Loaded {
                table,
                built: false,
            });
        }
    }
    let path = table_path(csv);
    let _lock = crate::lock::lock_dir(
        path.parent().expect("tables live in a directory"),
        "the table cache",
    )?;
    match Table::open(&path) {
        Ok(table) if current(&table) => {
            tracing::debug!(table = %path.display(), "using cached table");
            return Ok(Loaded {
                table,
                built: false,
            });
        }
        Err(DataError::Corrupt { message, .. }) => {
            tracing::warn!(table = %path.display(), "cached table unusable ({message}): rebuilding it")
        }
        _ => {}
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
