//! Files of a run directory (each written whole or not at all) and the progress bars.

use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::TrainError;

/// A run file's JSON text: pretty, with a final newline.
pub fn json_text(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("run records serialize");
    text.push('\n');
    text
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    Ok(crate::whole_file::write(path, json_text(value).as_bytes())?)
}

/// The records of a metrics.jsonl, one per non-empty line; a line that does not parse is
/// an error naming the file and the line.
pub fn read_lines(path: &Path) -> Result<Vec<serde_json::Value>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| TrainError::Invalid(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
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

/// Keeps the lines of metrics.jsonl of epochs `first..=epochs`: resuming drops the lines
/// of epochs that the last checkpoint does not include. The kept lines must be those
/// epochs' lines, each once and in order: a file that lacks one (cut short, or a line
/// damaged), repeats one or reorders them was not written by the run, and is refused.
pub fn truncate_lines(path: &Path, first: usize, epochs: usize) -> Result<(), TrainError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(TrainError::io(path)(e)),
    };
    let refuse = |what: String| {
        TrainError::Invalid(format!(
            "{} {what} (edited or damaged); the run cannot resume: run it without --resume \
             to start afresh",
            path.display()
        ))
    };
    let mut kept = String::new();
    let mut expected = first;
    for line in text.lines() {
        let epoch = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["epoch"].as_u64())
            .map(|e| e as usize);
        let Some(epoch) = epoch.filter(|&e| e <= epochs) else {
            continue;
        };
        if epoch != expected {
            return Err(refuse(if epoch < expected {
                format!(
                    "holds the line of epoch {epoch} again, after epoch {}",
                    expected - 1
                )
            } else {
                let missing: Vec<String> = (expected..epoch).map(|e| e.to_string()).collect();
                format!(
                    "lacks the lines of epochs {} that the run's state has finished",
                    missing.join(", ")
                )
            }));
        }
        expected += 1;
        kept.push_str(line);
        kept.push('\n');
    }
    if expected <= epochs {
        let missing: Vec<String> = (expected..=epochs).map(|e| e.to_string()).collect();
        return Err(refuse(format!(
            "lacks the lines of epochs {} that the run's state has finished",
            missing.join(", ")
        )));
    }
    Ok(crate::whole_file::write(path, kept.as_bytes())?)
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
