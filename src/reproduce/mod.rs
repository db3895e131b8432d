//! `daa reproduce NAME`: runs the missing cells of a paper table or figure, skips those
//! already finished (same config hash, result.json present), aggregates over seeds, and
//! writes reproduce/out/NAME/{table.md, table.csv, results.json, plot.svg}.

mod plot;
mod report;
pub mod spec;

use std::path::{Path, PathBuf};

use crate::config::{Overrides, Resolved, resolve};
use crate::registry::Registry;
use crate::train::{RunOptions, RunRecord, TrainError, run, run_dir};
pub use spec::{Cell, Spec};

#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    pub seeds: Option<usize>,
    /// Only cells whose name contains this (e.g. "mmoe/nl").
    pub only: Option<String>,
    pub dry_run: bool,
    pub progress: bool,
    /// Where the table, CSV, JSON and plot go (default: reproduce/out/NAME).
    pub out: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    #[error("cell {cell}: {source}")]
    Run {
        cell: String,
        source: Box<TrainError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<crate::config::ConfigError> for ReproduceError {
    fn from(e: crate::config::ConfigError) -> Self {
        ReproduceError::Config(Box::new(e))
    }
}

/// What a reproduction did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub cells: usize,
    pub skipped: usize,
    pub ran: usize,
    pub out_dir: Option<PathBuf>,
}

fn write(path: &Path, text: &str) -> Result<(), ReproduceError> {
    let io = |source| ReproduceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub fn reproduce(
    name: &str,
    registry: &Registry,
    options: &Options,
) -> Result<Outcome, ReproduceError> {
    let project = registry
        .root
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let path = project.join("reproduce").join(format!("{name}.toml"));
    if !path.is_file() {
        return Err(ReproduceError::Spec(format!(
            "no {}; available: {}",
            path.display(),
            crate::registry::toml_names(&project.join("reproduce")).join(", ")
        )));
    }
    let spec = Spec::load(&path).map_err(ReproduceError::Spec)?;
    let profile = spec.profiles.get(&options.profile).ok_or_else(|| {
        ReproduceError::Spec(format!(
            "{}: no profile `{}` (profiles: {})",
            path.display(),
            options.profile,
            spec.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let overlay = project
        .join("configs/profiles")
        .join(format!("{}.toml", options.profile));
    let seeds = options.seeds.unwrap_or(profile.seeds);
    let cells: Vec<Cell> = spec
        .cells(&project, seeds)
        .into_iter()
        .filter(|c| {
            options
                .only
                .as_ref()
                .is_none_or(|o| c.name.contains(o.as_str()))
        })
        .collect();
    let resolved: Vec<Resolved> = cells
        .iter()
        .map(|cell| {
            let mut overrides = Overrides::from_process(cell.sets.clone());
            overrides.files.push(overlay.clone());
            resolve(&cell.config, &overrides, registry)
        })
        .collect::<Result<_, _>>()?;
    let done = |r: &Resolved| run_dir(r).join("result.json").is_file();
    let mut outcome = Outcome {
        cells: cells.len(),
        skipped: resolved.iter().filter(|r| done(r)).count(),
        ..Outcome::default()
    };
    if options.dry_run {
        println!(
            "{} ({}): {} cells, {} finished, {} to run",
            name,
            options.profile,
            cells.len(),
            outcome.skipped,
            cells.len() - outcome.skipped
        );
        for (cell, r) in cells.iter().zip(&resolved) {
            println!(
                "  {:<40} {}  {}",
                cell.name,
                r.hash,
                if done(r) { "done" } else { "to run" }
            );
        }
        return Ok(outcome);
    }
    let mut results = Vec::new();
    for (i, (cell, r)) in cells.iter().zip(&resolved).enumerate() {
        let record_path = run_dir(r).join("result.json");
        if !record_path.is_file() {
            tracing::info!(cell = %cell.name, progress = format!("{}/{}", i + 1, cells.len()), "running");
            run(
                r,
                &RunOptions {
                    resume: true,
                    stop_after_epochs: None,
                    progress: options.progress,
                },
            )
            .map_err(|source| ReproduceError::Run {
                cell: cell.name.clone(),
                source: Box::new(source),
            })?;
            outcome.ran += 1;
        }
        let text = std::fs::read_to_string(&record_path).map_err(|source| ReproduceError::Io {
            path: record_path.clone(),
            source,
        })?;
        let record: RunRecord = serde_json::from_str(&text)
            .map_err(|e| ReproduceError::Spec(format!("{}: {e}", record_path.display())))?;
        results.push((cell.clone(), record));
    }
    let synthetic = resolved
        .iter()
        .any(|r| r.experiment.data.target.kind == "synthetic");
    let aggregates = report::aggregate(&spec, &results);
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| project.join("reproduce/out").join(name));
    std::fs::create_dir_all(&out).map_err(|source| ReproduceError::Io {
        path: out.clone(),
        source,
    })?;
    let markdown = report::markdown(&spec, &aggregates, &options.profile, synthetic);
    write(&out.join("table.md"), &markdown)?;
    write(&out.join("table.csv"), &report::csv(&aggregates))?;
    let records: Vec<serde_json::Value> = results
        .iter()
        .map(|(c, r)| serde_json::json!({"cell": c.name, "record": r}))
        .collect();
    let json = serde_json::json!({"name": name, "profile": options.profile, "seeds": seeds, "aggregates": aggregates, "runs": records});
    write(
        &out.join("results.json"),
        &serde_json::to_string_pretty(&json).expect("results serialize"),
    )?;
    write(&out.join("plot.svg"), &plot::svg(&spec, &aggregates))?;
    println!("{markdown}");
    println!("written: {}", out.display());
    outcome.out_dir = Some(out);
    Ok(outcome)
}
