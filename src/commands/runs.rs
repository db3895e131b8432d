//! `daa runs`: the index of finished runs a researcher would otherwise write by hand.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use daa::train::index::{IndexedRun, finished_runs};

use super::UsageError;
use crate::cli::{Cli, RunsFormat, SetArgs};

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

/// The directory `daa runs` lists: `--runs-dir`, else `output.runs_dir` of `config` (or
/// of `configs/base.toml` beside the registry) through the same layers as `daa run`: the
/// environment (`DAA_OUTPUT__RUNS_DIR`), `--profile` and `--set`.
pub fn directory(
    cli: &Cli,
    flag: &Option<PathBuf>,
    config: Option<&Path>,
    set: &SetArgs,
) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.clone());
    }
    let base;
    let config = match config {
        Some(path) => path,
        None => {
            let base_of = |registry: daa::config::Registry| {
                registry
                    .root
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("configs/base.toml")
            };
            match super::registry_for(cli, Path::new(".")).map(base_of) {
                Ok(path) if path.is_file() => {
                    base = path;
                    &base
                }
                // Outside a project: the environment and `--set` alone.
                _ => return Ok(outside_a_project(set)),
            }
        }
    };
    Ok(super::resolve(cli, config, set)?.experiment.output.runs_dir)
}

/// `output.runs_dir` from the last `--set` of it, else `DAA_OUTPUT__RUNS_DIR`, else `runs`.
fn outside_a_project(set: &SetArgs) -> PathBuf {
    let from_set = set.sets.iter().rev().find_map(|s| {
        let (key, value) = s.split_once('=')?;
        (key.trim() == "output.runs_dir").then(|| {
            let value = value.trim();
            toml::from_str::<toml::Value>(&format!("v = {value}"))
                .ok()
                .and_then(|t| t["v"].as_str().map(String::from))
                .unwrap_or_else(|| value.to_string())
        })
    });
    from_set
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DAA_OUTPUT__RUNS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("runs"))
}

pub fn list(runs_dir: &Path, experiment: Option<&str>, format: RunsFormat) -> Result<()> {
    if !runs_dir.is_dir() {
        bail!(UsageError(format!(
            "{}: no such runs directory (set it with --runs-dir, `--set output.runs_dir=DIR`, \
             DAA_OUTPUT__RUNS_DIR or an experiment's [output] runs_dir)",
            runs_dir.display()
        )));
    }
    let index = finished_runs(runs_dir)?;
    for (path, reason) in &index.damaged {
        eprintln!(
            "warning: {}: damaged result ({}); left out. `daa run` or `daa reproduce` runs it again",
            path.display(),
            super::message::printable(reason)
        );
    }
    let runs: Vec<IndexedRun> = index
        .runs
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
