//! `daa reproduce NAME`: runs the missing cells of a paper table or figure (in this
//! process, or `--jobs N` child processes at a time), skips those already finished (same
//! config hash, result.json present), aggregates over seeds, and writes
//! reproduce/out/NAME/{table.md, table.csv, results.json, plot.svg}.

mod agreement;
mod alignment;
pub mod jobs;
mod plot;
mod report;
pub mod significance;
pub mod slurm;
pub mod spec;

use std::path::{Path, PathBuf};

use crate::config::{Overrides, Registry, Resolved, resolve};
use crate::train::finished::Finished;
use crate::train::{self, RunOptions, TrainError, run_dir};
pub use spec::{Cell, Spec};

#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    pub seeds: Option<usize>,
    /// Only cells whose name contains this (e.g. "mmoe/nl").
    pub only: Option<String>,
    pub progress: bool,
    /// Where the table, CSV, JSON and plot go (default: reproduce/out/NAME).
    pub out: Option<PathBuf>,
    /// Cells at a time, each in a child process (1: one after another in this process).
    pub jobs: usize,
    /// `--set KEY=VALUE` flags: `slurm.KEY` ones are sbatch options of `--slurm`'s tasks
    /// (over the grid's and the profile's); the others override every cell's experiment.
    pub sets: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    // Not a `source` field: the message already holds the cause, printed once.
    #[error("cell {cell}: {error}")]
    Run {
        cell: String,
        error: Box<TrainError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    #[error("{}", failed_cells(.0))]
    Failed(Vec<jobs::Failure>),
    #[error("{0}")]
    Slurm(String),
}

fn failed_cells(failures: &[jobs::Failure]) -> String {
    let mut text = format!(
        "{} cell(s) failed (the report covers the others; run again to retry them):",
        failures.len()
    );
    for f in failures {
        text.push_str(&format!(
            "\n  {} ({:?}, {}): see {}",
            f.cell,
            f.stage,
            f.status,
            f.log.display()
        ));
    }
    text
}

impl ReproduceError {
    /// The user's input is at fault (the grid file, a cell's config or data), not the
    /// environment.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ReproduceError::Spec(_) | ReproduceError::Config(_) => true,
            ReproduceError::Run { error, .. } => error.is_bad_input(),
            ReproduceError::Failed(failures) => failures.iter().all(|f| f.code == Some(2)),
            ReproduceError::Io { .. } | ReproduceError::Plot(_) | ReproduceError::Slurm(_) => false,
        }
    }
}

impl From<crate::atomic::FileError> for ReproduceError {
    fn from(e: crate::atomic::FileError) -> Self {
        ReproduceError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<crate::config::ConfigError> for ReproduceError {
    fn from(e: crate::config::ConfigError) -> Self {
        ReproduceError::Config(Box::new(e))
    }
}

/// What a reproduction did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub cells: usize,
    pub skipped: usize,
    pub ran: usize,
    /// The cells without a result (not run, interrupted or failed).
    pub missing: Vec<String>,
    pub out_dir: PathBuf,
    /// The table as written to table.md.
    pub markdown: String,
}

fn write(path: &Path, text: &str) -> Result<(), ReproduceError> {
    Ok(crate::atomic::write(path, text.as_bytes())?)
}

/// A cell of a grid with its resolved experiment.
pub struct PlannedCell {
    pub cell: Cell,
    pub resolved: Resolved,
}

impl PlannedCell {
    /// Whether the cell's run directory holds a result that reads (a damaged one is run
    /// again).
    pub fn done(&self) -> bool {
        self.result().is_done()
    }

    /// The cell's result, as its run directory holds it.
    pub fn result(&self) -> Finished {
        crate::train::finished::read(&run_dir(&self.resolved))
    }
}

/// A grid resolved: its file, its spec and its cells.
pub struct Plan {
    pub name: String,
    /// The grid file.
    pub file: PathBuf,
    pub project: PathBuf,
    pub spec: Spec,
    pub seeds: usize,
    pub cells: Vec<PlannedCell>,
    /// The sbatch options of `--slurm`'s array tasks.
    pub slurm: spec::Slurm,
}

impl Plan {
    /// The cells of a grid under `options`' profile, seeds and filter. `grid` is a name
    /// of the project's `reproduce/` or a path to any grid file (anything with a `/` or
    /// ending in `.toml`); its `config` patterns are relative to the grid file.
    pub fn new(grid: &str, registry: &Registry, options: &Options) -> Result<Self, ReproduceError> {
        let project = registry
            .root
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let explicit = grid.contains(std::path::MAIN_SEPARATOR) || grid.ends_with(".toml");
        let path = if explicit {
            PathBuf::from(grid)
        } else {
            project.join("reproduce").join(format!("{grid}.toml"))
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !path.is_file() {
            return Err(ReproduceError::Spec(if explicit {
                format!("{grid}: no such grid file")
            } else {
                format!(
                    "no {}; available: {} (or give a path to a grid file)",
                    path.display(),
                    crate::config::registry::toml_names(&project.join("reproduce")).join(", ")
                )
            }));
        }
        let name = path
            .file_stem()
            .map_or_else(|| grid.to_string(), |s| s.to_string_lossy().into_owned());
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
        let mut slurm = spec
            .slurm
            .clone()
            .unwrap_or_default()
            .then(profile.slurm.clone().unwrap_or_default());
        let mut sets = Vec::new();
        for arg in &options.sets {
            let (key, value) = crate::config::parse_set(arg)?;
            match key.strip_prefix("slurm.") {
                Some(option) => {
                    let more = spec::Slurm::from_set(option, value)
                        .map_err(|e| ReproduceError::Spec(format!("--set {arg}: {e}")))?;
                    slurm = slurm.then(more);
                }
                None => sets.push(arg.clone()),
            }
        }
        let cells = spec
            .cells(&base, seeds, &sets)
            .into_iter()
            .filter(|c| {
                options
                    .only
                    .as_ref()
                    .is_none_or(|o| c.name.contains(o.as_str()))
            })
            .map(|cell| {
                let mut overrides = Overrides::from_process(cell.sets.clone());
                overrides.files.push(overlay.clone());
                let resolved = resolve(&cell.config, &overrides, registry)?;
                Ok(PlannedCell { cell, resolved })
            })
            .collect::<Result<_, ReproduceError>>()?;
        Ok(Plan {
            name,
            file: path,
            project,
            spec,
            seeds,
            cells,
            slurm,
        })
    }

    /// How many cells already hold a result.
    pub fn finished(&self) -> usize {
        self.cells.iter().filter(|c| c.done()).count()
    }
}

/// Runs cell `index` of the plan (resuming it if interrupted), or only its source
/// pretraining: what each child process of `--jobs` does.
pub fn run_cell(
    plan: &Plan,
    index: usize,
    stage: jobs::Stage,
    progress: bool,
) -> Result<(), ReproduceError> {
    let planned = plan.cells.get(index).ok_or_else(|| {
        ReproduceError::Spec(format!(
            "--cell {index}: the grid has {} cells (0 to {})",
            plan.cells.len(),
            plan.cells.len().saturating_sub(1)
        ))
    })?;
    train::run(
        &planned.resolved,
        &RunOptions {
            resume: true,
            progress,
            pretrain_only: stage == jobs::Stage::Pretrain,
            ..RunOptions::default()
        },
    )
    .map_err(|error| ReproduceError::Run {
        cell: planned.cell.name.clone(),
        error: Box::new(error),
    })?;
    Ok(())
}

/// Where a plan's table, CSV, JSON, plot and logs go.
pub fn out_dir(plan: &Plan, options: &Options) -> PathBuf {
    options
        .out
        .clone()
        .unwrap_or_else(|| plan.project.join("reproduce/out").join(&plan.name))
}

/// Runs the plan's missing cells (resuming interrupted ones), one after another here or
/// `options.jobs` at a time as children started by `launch`, then writes the report of the
/// finished ones. Children that fail are listed in the error after the report is written;
/// in this process the first failure stops the grid.
pub fn run(
    plan: &Plan,
    options: &Options,
    launch: jobs::Launcher<'_>,
) -> Result<Outcome, ReproduceError> {
    let total = plan.cells.len();
    let skipped = plan.finished();
    let failures = if options.jobs > 1 {
        let logs = out_dir(plan, options).join("logs");
        jobs::run(plan, options.jobs, launch, &logs, options.progress)?
    } else {
        for (i, planned) in plan.cells.iter().enumerate() {
            if !planned.done() {
                tracing::info!(cell = %planned.cell.name, progress = format!("{}/{total}", i + 1), "running");
                run_cell(plan, i, jobs::Stage::Cell, options.progress)?;
            }
        }
        Vec::new()
    };
    let outcome = report(plan, options, skipped)?;
    if !failures.is_empty() {
        return Err(ReproduceError::Failed(failures));
    }
    Ok(outcome)
}

/// Writes the table, CSV, JSON and plot of the plan's finished cells (`skipped` of them
/// were finished before this invocation); what `--collect` does alone.
pub fn report(plan: &Plan, options: &Options, skipped: usize) -> Result<Outcome, ReproduceError> {
    let total = plan.cells.len();
    let out = out_dir(plan, options);
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for planned in &plan.cells {
        match planned.result() {
            Finished::Done(record) => results.push((planned.cell.clone(), *record)),
            Finished::Missing => missing.push(planned.cell.name.clone()),
            Finished::Damaged { path, reason } => {
                tracing::warn!(cell = planned.cell.name, result = %path.display(), "damaged result ({reason}): left out of the table; `daa reproduce` runs the cell again");
                missing.push(planned.cell.name.clone());
            }
        }
    }
    let ran = results.len().saturating_sub(skipped);
    // The row labels of the cells on synthetic data.
    let mut synthetic: Vec<String> = plan
        .cells
        .iter()
        .filter(|c| c.resolved.experiment.data.target.kind == "synthetic")
        .map(|c| plan.spec.row_label(&c.cell))
        .collect();
    synthetic.sort();
    synthetic.dedup();
    let spec = &plan.spec;
    let aggregates = report::aggregate(spec, &results);
    std::fs::create_dir_all(&out).map_err(|source| ReproduceError::Io {
        path: out.clone(),
        source,
    })?;
    let comparisons = report::comparisons(spec, &results);
    let alignment = alignment::summarize(spec, &results);
    let mut markdown = report::markdown(
        spec,
        &aggregates,
        &comparisons,
        &options.profile,
        &synthetic,
    );
    markdown.push_str(&alignment::markdown(&alignment));
    let agreement = agreement::summarize(spec, &results);
    markdown.push_str(&agreement::markdown(&agreement));
    write(&out.join("table.md"), &markdown)?;
    write(&out.join("table.csv"), &report::csv(&aggregates))?;
    let records: Vec<serde_json::Value> = results
        .iter()
        .map(|(c, r)| serde_json::json!({"cell": c.name, "record": r}))
        .collect();
    let json = serde_json::json!({"name": plan.name, "profile": options.profile, "seeds": plan.seeds, "aggregates": aggregates, "comparisons": comparisons, "alignment": alignment, "selection_agreement": agreement, "runs": records});
    write(
        &out.join("results.json"),
        &serde_json::to_string_pretty(&json).expect("results serialize"),
    )?;
    write(&out.join("plot.svg"), &plot::svg(spec, &aggregates)?)?;
    Ok(Outcome {
        cells: total,
        skipped,
        ran,
        missing,
        out_dir: out,
        markdown,
    })
}
