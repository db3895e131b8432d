//! The runs of a runs directory: every `<experiment>/<hash>/result.json` below it (the
//! source-pretraining cache `_source/` is no run), read back as records.

use std::path::{Path, PathBuf};

use super::{RunRecord, TrainError};

/// A finished run: its directory and its record.
#[derive(Debug, Clone)]
pub struct IndexedRun {
    pub dir: PathBuf,
    pub record: RunRecord,
}

/// The finished runs under `runs_dir`, ordered by experiment, method and seed; a
/// result.json that does not read is an error naming it.
pub fn finished_runs(runs_dir: &Path) -> Result<Vec<IndexedRun>, TrainError> {
    let mut runs = Vec::new();
    let entries = |dir: &Path| -> Result<Vec<PathBuf>, TrainError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(TrainError::io(dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        paths.sort();
        Ok(paths)
    };
    for experiment in entries(runs_dir)? {
        if experiment.file_name().is_some_and(|n| n == "_source") {
            continue;
        }
        for dir in entries(&experiment)? {
            let path = dir.join("result.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let record: RunRecord = serde_json::from_str(&text)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
            runs.push(IndexedRun { dir, record });
        }
    }
    runs.sort_by(|a, b| {
        (&a.record.experiment, &a.record.method, a.record.seed).cmp(&(
            &b.record.experiment,
            &b.record.method,
            b.record.seed,
        ))
    });
    Ok(runs)
}
