//! `daa reproduce NAME`: runs the missing cells of a paper table or figure (in this
//! process, or `--jobs N` child processes at a time), skips those already finished (same
//! config hash, result.json present), aggregates over seeds, and writes
//! reproduce/out/NAME/{table.md, table.csv, results.json, plot.svg}.

mod agreement;
mod alignment;
mod cost;
pub mod jobs;
mod planner;
mod plot;
mod queue;
mod report;
pub mod search;
mod selection;
pub mod significance;
pub mod slurm;
pub mod spec;

use std::path::{Path, PathBuf};

use crate::config::{Registry, Resolved};
use crate::train::finished::Finished;
use crate::train::{self, RunOptions, TrainError, run_dir};
use queue::{Cells, Queue};
use selection::Score;
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
    Plot(#[from] crate::chart::ChartError),
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

impl From<crate::whole_file::FileError> for ReproduceError {
    fn from(e: crate::whole_file::FileError) -> Self {
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
    Ok(crate::whole_file::write(path, text.as_bytes())?)
}

/// A cell of a grid with its resolved experiment.
pub struct PlannedCell {
    pub cell: Cell,
    pub resolved: Resolved,
}

impl PlannedCell {
    /// Whether the cell's run directory holds a result that reads (a damaged one is run
    /// again), or the cell is a search trial whose training diverged.
    pub fn done(&self) -> bool {
        self.result().is_done() || self.diverged().is_some()
    }

    /// Where a search trial's divergence is recorded: a diverged trial is an outcome of
    /// the search (never selected), not a failure to run again.
    fn diverged_path(&self) -> Option<PathBuf> {
        self.cell
            .trial()
            .map(|_| run_dir(&self.resolved).join("diverged.json"))
    }

    /// The message of a search trial whose training diverged.
    pub fn diverged(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.diverged_path()?).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(value["error"].as_str()?.to_string())
    }

    /// What a search trial's cell gave, from its `result` as read.
    fn score(&self, result: &Finished) -> Score {
        match result {
            Finished::Done(record) => Score::Finished {
                valid: record.best_valid_mean_auc,
                test: record.test.mean_auc("test").ok(),
            },
            _ => self.diverged().map_or(Score::Missing, Score::Diverged),
        }
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
    /// Evaluation cells of searched methods whose trials are not all finished (planned
    /// once they are), or whose every trial diverged.
    pub waiting: Vec<Cell>,
    /// The seeds the search trials run with (none without a search).
    pub search_seeds: Vec<u64>,
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
        let search = planner::searched(&spec, profile, seeds)
            .map_err(|e| ReproduceError::Spec(format!("{}: {e}", path.display())))?;
        let planner = planner::Planner {
            spec: &spec,
            base: &base,
            sets: &sets,
            seeds,
            overlay: &overlay,
            registry,
            only: options.only.as_deref(),
        };
        let mut cells = Vec::new();
        let mut waiting = Vec::new();
        for combo in spec.combos() {
            let method = &combo.labels[&spec.column];
            let searched = search
                .as_ref()
                .filter(|(s, _)| s.space.contains_key(method))
                .map(|(s, trials)| (s, *trials));
            planner.combo(&combo, searched, &mut cells, &mut waiting)?;
        }
        let search_seeds = search.map(|(s, _)| s.seeds).unwrap_or_default();
        Ok(Plan {
            name,
            file: path,
            project,
            spec,
            seeds,
            cells,
            waiting,
            search_seeds,
            slurm,
        })
    }

    /// How many cells already hold a result.
    pub fn finished(&self) -> usize {
        self.cells.iter().filter(|c| c.done()).count()
    }
}

impl Plan {
    /// The cell `which` names: its name, or its index in the plan (children and array
    /// tasks name it: a search's evaluation cells join the plan once its trials finish,
    /// which moves indices).
    pub fn cell(&self, which: &str) -> Result<&PlannedCell, ReproduceError> {
        if let Some(c) = self.cells.iter().find(|c| c.cell.name == which) {
            return Ok(c);
        }
        if let Ok(index) = which.parse::<usize>() {
            return self.cells.get(index).ok_or_else(|| {
                ReproduceError::Spec(format!(
                    "--cell {index}: the grid has {} cells (0 to {})",
                    self.cells.len(),
                    self.cells.len().saturating_sub(1)
                ))
            });
        }
        let reason = if self.waiting.iter().any(|c| c.name == which) {
            "it waits on its search's trials (planned once they have all finished)"
        } else {
            "no cell of the grid has this name (`daa reproduce NAME --dry-run` lists them)"
        };
        Err(ReproduceError::Spec(format!("--cell {which}: {reason}")))
    }
}

/// Runs the cell `which` (a name or an index) of the plan, resuming it if interrupted, or
/// only its source pretraining: what each child process of `--jobs` does. A search trial
/// whose training diverges records that in its run directory: the search goes on.
pub fn run_cell(
    plan: &Plan,
    which: &str,
    stage: jobs::Stage,
    progress: bool,
) -> Result<(), ReproduceError> {
    let planned = plan.cell(which)?;
    let ran = train::run(
        &planned.resolved,
        &RunOptions {
            resume: true,
            progress,
            pretrain_only: stage == jobs::Stage::Pretrain,
            ..RunOptions::default()
        },
    );
    match (ran, planned.diverged_path()) {
        (Ok(_), _) => Ok(()),
        (Err(error @ TrainError::NonFinite { .. }), Some(path)) => {
            tracing::warn!(
                cell = planned.cell.name,
                "{error}: the trial is recorded as diverged"
            );
            let record = serde_json::json!({"error": error.to_string()});
            write(&path, &record.to_string())
        }
        (Err(error), _) => Err(ReproduceError::Run {
            cell: planned.cell.name.clone(),
            error: Box::new(error),
        }),
    }
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
/// finished ones. A search's evaluation cells join the queue, first, as soon as its last
/// trial finishes. Children that fail are listed in the error after the report is
/// written; in this process the first failure stops the grid.
pub fn run(
    plan: Plan,
    registry: &Registry,
    options: &Options,
    launch: jobs::Launcher<'_>,
) -> Result<Outcome, ReproduceError> {
    let skipped = plan.finished();
    let mut failures = Vec::new();
    let mut queue = Queue::new(plan, registry, options);
    loop {
        failures.extend(run_queue(&mut queue, options, launch)?);
        let plan = queue.plan();
        if plan.waiting.is_empty() {
            break;
        }
        // Another process may have finished the trials a search still waited on.
        let next = Plan::new(&plan.file.display().to_string(), registry, options)?;
        if next.waiting.len() == plan.waiting.len() {
            break;
        }
        queue = Queue::new(next, registry, options);
    }
    let outcome = report(queue.plan(), options, skipped)?;
    if !failures.is_empty() {
        return Err(ReproduceError::Failed(failures));
    }
    Ok(outcome)
}

/// Runs the queue's cells; returns the failed children.
fn run_queue(
    queue: &mut Queue<'_>,
    options: &Options,
    launch: jobs::Launcher<'_>,
) -> Result<Vec<jobs::Failure>, ReproduceError> {
    if options.jobs > 1 {
        let logs = out_dir(queue.plan(), options).join("logs");
        return jobs::run(queue, options.jobs, launch, &logs, options.progress);
    }
    let mut started = 0;
    while let Some(cell) = queue.next() {
        started += 1;
        let progress = format!("{started}/{}", started + queue.len());
        tracing::info!(cell = %cell, progress = %progress, "running");
        run_cell(queue.plan(), &cell, jobs::Stage::Cell, options.progress)?;
        queue.ended(&cell, true)?;
    }
    Ok(Vec::new())
}

/// Writes the table, CSV, JSON and plot of the plan's finished cells (`skipped` of them
/// were finished before this invocation); what `--collect` does alone.
pub fn report(plan: &Plan, options: &Options, skipped: usize) -> Result<Outcome, ReproduceError> {
    let total = plan.cells.len() + plan.waiting.len();
    let out = out_dir(plan, options);
    // Every finished run (trials too), the evaluation cells' apart (the tables'), and the
    // trial cells' scores (the search's).
    let mut runs = Vec::new();
    let mut trials = Vec::new();
    let mut missing = Vec::new();
    for planned in &plan.cells {
        // Each result read once: the trial's score comes from the same read.
        let result = planned.result();
        let score = planned.cell.trial().map(|_| planned.score(&result));
        let diverged = matches!(score, Some(Score::Diverged(_)));
        if let Some(score) = score {
            trials.push((planned.cell.clone(), score));
        }
        match result {
            Finished::Done(record) => runs.push((planned.cell.clone(), *record)),
            Finished::Missing if diverged => {}
            Finished::Missing => missing.push(planned.cell.name.clone()),
            Finished::Damaged { path, reason } => {
                tracing::warn!(cell = planned.cell.name, result = %path.display(), "damaged result ({reason}): left out of the table; `daa reproduce` runs the cell again");
                missing.push(planned.cell.name.clone());
            }
        }
    }
    missing.extend(plan.waiting.iter().map(|c| c.name.clone()));
    let ran = (runs.len()
        + trials
            .iter()
            .filter(|(_, s)| matches!(s, Score::Diverged(_)))
            .count())
    .saturating_sub(skipped);
    let results: Vec<(Cell, crate::train::RunRecord)> = runs
        .iter()
        .filter(|(c, _)| c.trial().is_none())
        .cloned()
        .collect();
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
    let searches = selection::summarize(spec, &trials);
    markdown.push_str(&selection::markdown(&searches, &plan.search_seeds));
    // Over every run: a search's trials are the pairs that say most about selection.
    let agreement = agreement::summarize(spec, &runs);
    markdown.push_str(&agreement::markdown(&agreement));
    let cost = cost::summarize(spec, &runs);
    markdown.push_str(&cost::markdown(&cost));
    write(&out.join("table.md"), &markdown)?;
    write(&out.join("table.csv"), &report::csv(&aggregates))?;
    let records: Vec<serde_json::Value> = runs
        .iter()
        .map(|(c, r)| serde_json::json!({"cell": c.name, "record": r}))
        .collect();
    let mut json = serde_json::json!({"name": plan.name, "profile": options.profile, "seeds": plan.seeds, "aggregates": aggregates, "comparisons": comparisons, "alignment": alignment, "selection_agreement": agreement, "cost": cost, "runs": records});
    if plan.spec.search.is_some() {
        json["search"] = serde_json::json!({"seeds": plan.search_seeds, "searches": searches});
    }
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
