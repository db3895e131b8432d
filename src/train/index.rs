//! The runs of a runs directory: every `<experiment>/<hash>/result.json` below it (the
//! source-pretraining cache `_source/` is no run), read back as records.

use std::path::{Path, PathBuf};

use super::TrainError;
use super::finished::Finished;
use super::record::RunRecord;

/// A finished run: its directory and its record.
#[derive(Debug, Clone)]
pub struct IndexedRun {
    pub dir: PathBuf,
    pub record: RunRecord,
}

/// The runs under a runs directory: the finished ones, and the result files that do not
/// read (left out, named).
#[derive(Debug, Default)]
pub struct Index {
    pub runs: Vec<IndexedRun>,
    pub damaged: Vec<(PathBuf, String)>,
}

/// The finished runs under `runs_dir`, ordered by experiment, method and seed, and the
/// damaged results found beside them.
pub fn finished_runs(runs_dir: &Path) -> Result<Index, TrainError> {
    let mut runs = Vec::new();
    let mut damaged = Vec::new();
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
            match super::finished::read(&dir) {
                Finished::Done(record) => runs.push(IndexedRun {
                    dir,
                    record: *record,
                }),
                Finished::Damaged { path, reason } => damaged.push((path, reason)),
                Finished::Missing => {}
            }
        }
    }
    runs.sort_by(|a, b| {
        (&a.record.experiment, &a.record.method, a.record.seed).cmp(&(
            &b.record.experiment,
            &b.record.method,
            b.record.seed,
        ))
    });
    Ok(Index { runs, damaged })
}
