//! `daa runs`: the index of finished runs a researcher would otherwise write by hand.

use std::path::Path;

use anyhow::{Result, bail};
use daa::train::index::{IndexedRun, finished_runs};

use super::UsageError;
use crate::cli::RunsFormat;

const COLUMNS: [&str; 9] = [
    "experiment",
    "method",
    "seed",
    "hash",
    "best epoch",
    "test AUCs",
    "wall s",
    "commit",
    "dir",
];

fn fields(run: &IndexedRun) -> [String; 9] {
    let r = &run.record;
    let aucs: Vec<String> = r
        .test
        .tasks
        .iter()
        .map(|t| {
            let auc = t.auc.map_or("n/a".into(), |a| format!("{a:.4}"));
            format!("{} {auc}", t.task)
        })
        .collect();
    [
        r.experiment.clone(),
        r.method.clone(),
        r.seed.to_string(),
        r.config_hash.clone(),
        r.best_epoch.map_or("-".into(), |e| e.to_string()),
        aucs.join(" / "),
        format!("{:.1}", r.wall_seconds),
        r.git_commit
            .as_deref()
            .map_or("-".into(), |c| c.chars().take(10).collect()),
        run.dir.display().to_string(),
    ]
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn list(runs_dir: &Path, experiment: Option<&str>, format: RunsFormat) -> Result<()> {
    if !runs_dir.is_dir() {
        bail!(UsageError(format!(
            "--runs-dir {}: no such directory",
            runs_dir.display()
        )));
    }
    let runs: Vec<IndexedRun> = finished_runs(runs_dir)?
        .into_iter()
        .filter(|r| experiment.is_none_or(|e| r.record.experiment.contains(e)))
        .collect();
    match format {
        RunsFormat::Json => {
            let records: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| serde_json::json!({"dir": r.dir, "record": r.record}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&records)?);
        }
        RunsFormat::Csv => {
            println!("{}", COLUMNS.join(","));
            for run in &runs {
                let row: Vec<String> = fields(run).iter().map(|f| csv_field(f)).collect();
                println!("{}", row.join(","));
            }
        }
        RunsFormat::Md => {
            println!("| {} |", COLUMNS.join(" | "));
            println!("|{}|", vec!["---"; COLUMNS.len()].join("|"));
            for run in &runs {
                println!("| {} |", fields(run).join(" | "));
            }
            println!(
                "\n{} finished run(s) under {}",
                runs.len(),
                runs_dir.display()
            );
        }
    }
    Ok(())
}
