//! Files of a run directory, each written atomically (temporary file, then rename).

use std::io::Write;
use std::path::Path;

use super::TrainError;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .map_err(TrainError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(TrainError::io(path))
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let mut text = serde_json::to_string_pretty(value).expect("run records serialize");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Appends one JSON line to metrics.jsonl.
pub fn append_line(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(TrainError::io(path))?;
    let line = serde_json::to_string(value).expect("run records serialize");
    writeln!(file, "{line}")
        .and_then(|_| file.sync_all())
        .map_err(TrainError::io(path))
}

/// Keeps the lines of metrics.jsonl whose epoch is below `epoch` (resuming drops the lines
/// of epochs that the last checkpoint does not include).
pub fn truncate_lines(path: &Path, epoch: usize) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["epoch"].as_u64())
                .is_some_and(|e| (e as usize) < epoch)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}
