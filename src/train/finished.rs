//! What a run directory's result.json says, read by one rule everywhere (run, reproduce,
//! runs, predict): a result that reads is finished; a missing one is not; a damaged one
//! (not JSON, not a record) is named, left out of listings and tables, and run again.

use std::path::{Path, PathBuf};

use super::record::RunRecord;

/// A run directory's result.
#[derive(Debug, Clone)]
pub enum Finished {
    Done(Box<RunRecord>),
    Missing,
    /// The file is there but does not read as a record: its path and why.
    Damaged {
        path: PathBuf,
        reason: String,
    },
}

impl Finished {
    /// Whether the run finished with a result that reads.
    pub fn is_done(&self) -> bool {
        matches!(self, Finished::Done(_))
    }
}

/// The result in run directory `dir`.
pub fn read(dir: &Path) -> Finished {
    let path = dir.join("result.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Finished::Missing,
        Err(e) => {
            return Finished::Damaged {
                path,
                reason: e.to_string(),
            };
        }
    };
    match serde_json::from_slice::<RunRecord>(&bytes) {
        Ok(record) => Finished::Done(Box::new(record)),
        Err(e) => Finished::Damaged {
            path,
            reason: e.to_string(),
        },
    }
}

/// The log line for a damaged result that is about to be run again.
pub fn warn_rerun(path: &Path, reason: &str) {
    tracing::warn!(result = %path.display(), "damaged result ({reason}): running the cell again");
}
