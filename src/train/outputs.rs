//! Files of a run directory (each written whole or not at all) and the progress bars.

use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::TrainError;

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let mut text = serde_json::to_string_pretty(value).expect("run records serialize");
    text.push('\n');
    Ok(crate::atomic::write(path, text.as_bytes())?)
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

/// Keeps the lines of metrics.jsonl of epochs up to `epochs` (counted from 1): resuming
/// drops the lines of epochs that the last checkpoint does not include.
pub fn truncate_lines(path: &Path, epochs: usize) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["epoch"].as_u64())
                .is_some_and(|e| (e as usize) <= epochs)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(crate::atomic::write(path, kept.as_bytes())?)
}

/// A progress bar on a terminal's stderr (hidden elsewhere or when `show` is off).
pub fn progress_bar(show: bool, label: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_prefix(label.to_string());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} {msg:>9} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}
