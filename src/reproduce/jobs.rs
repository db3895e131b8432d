//! Running a plan's missing cells as child processes, `count` at a time: first each
//! distinct source pretraining once (cells that share a source setup would otherwise wait
//! on its lock, a slot each), then the cells. Each child runs one cell of the same plan
//! (`daa reproduce NAME --cell CELL`), with the machine's cores split between the children;
//! its log is appended to `<out>/logs/CELL.log`. A failed child is recorded and the others go on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::queue::{Cells, Fixed, Queue};
use super::{Plan, PlannedCell, ReproduceError};

/// What a child process does for its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Pretrain the cell's source model, then exit.
    Pretrain,
    /// Run the cell (its source model already pretrained, or not needed).
    Cell,
}

/// How to start the child for the cell of this name at `stage` (the command line
/// re-creates the same plan: grid, profile, seeds, filter).
pub type Launcher<'a> = &'a dyn Fn(&str, Stage) -> Command;

/// A cell whose child failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub cell: String,
    pub stage: Stage,
    /// The exit status, as the OS says it, and the exit code where there is one (2: the
    /// cell's input is at fault).
    pub status: String,
    pub code: Option<i32>,
    pub log: PathBuf,
}

/// What a cell's source pretraining depends on (what its key holds, read from the
/// resolved experiment), or `None` when the cell's method needs no source model.
fn source_setup(cell: &PlannedCell) -> Option<serde_json::Value> {
    let exp = &cell.resolved.experiment;
    let method = crate::adapt::method(&exp.adapt.method.kind)?;
    (method.needs)(&exp.adapt.method).source_model.then(|| {
        serde_json::json!({
            "source": exp.data.source, "backbone": exp.model.backbone,
            "embedding": exp.model.embedding, "pretrain": exp.pretrain,
            "batch_size": exp.train.batch_size, "seed": exp.train.seed,
            "valid_rows": exp.data.valid_rows, "device": exp.train.device,
            "runs_dir": exp.output.runs_dir,
        })
    })
}

/// One cell of `missing` per distinct source setup.
pub(super) fn distinct_sources(plan: &Plan, missing: &[usize]) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut firsts = Vec::new();
    for &i in missing {
        if let Some(setup) = source_setup(&plan.cells[i])
            && !seen.contains(&setup)
        {
            seen.push(setup);
            firsts.push(i);
        }
    }
    firsts
}

/// Threads for each of `count` children sharing this machine's cores.
fn threads_per_child(count: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores / count.max(1)).max(1)
}

/// Makes the child die with this process however it ends (SIGTERM, SIGINT, SIGKILL, a
/// panic): Linux sends it SIGTERM when its parent dies. The cell stays resumable: an
/// interrupted run resumes from its last state. The pool runs on the thread that lives as
/// long as the process (the death signal follows the thread that forked).
fn die_with_this_process(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: runs in the child between fork and exec, where only async-signal-safe
        // calls are allowed: prctl, getppid and _exit are, and nothing here allocates
        // (`last_os_error` reads errno into a plain value).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the signal was armed: go with it.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

struct Running {
    child: Child,
    cell: String,
    stage: Stage,
    log: PathBuf,
}

/// Runs the children of `stage` for `cells`, `count` at a time, telling `cells` as each
/// ends (cells that join meanwhile lengthen the bar); returns the failures.
fn pool(
    cells: &mut dyn Cells,
    stage: Stage,
    count: usize,
    launch: Launcher<'_>,
    logs: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Failure>, ReproduceError> {
    let threads = threads_per_child(count).to_string();
    let mut running: Vec<Running> = Vec::new();
    let mut failures = Vec::new();
    loop {
        while running.len() < count {
            let Some(cell) = cells.next() else { break };
            let suffix = if stage == Stage::Pretrain {
                ".pretrain"
            } else {
                ""
            };
            let log = logs.join(format!("{}{suffix}.log", cell.replace('/', "_")));
            // Appended to: a retry's log keeps the failed attempt's, and two reproductions
            // of one grid lose neither child's lines.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|source| ReproduceError::Io {
                    path: log.clone(),
                    source,
                })?;
            let err = file.try_clone().map_err(|source| ReproduceError::Io {
                path: log.clone(),
                source,
            })?;
            let mut command = launch(&cell, stage);
            die_with_this_process(&mut command);
            let child = command
                .env("RAYON_NUM_THREADS", &threads)
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(err)
                .spawn()
                .map_err(|source| ReproduceError::Io {
                    path: PathBuf::from("the daa executable"),
                    source,
                })?;
            bar.set_message(cell.clone());
            running.push(Running {
                child,
                cell,
                stage,
                log,
            });
        }
        if running.is_empty() {
            return Ok(failures);
        }
        let mut finished = None;
        for (k, r) in running.iter_mut().enumerate() {
            if let Some(status) = r.child.try_wait().map_err(|source| ReproduceError::Io {
                path: r.log.clone(),
                source,
            })? {
                finished = Some((k, status));
                break;
            }
        }
        match finished {
            Some((k, status)) => {
                let r = running.swap_remove(k);
                bar.inc(1);
                let joined = bar.suspend(|| cells.ended(&r.cell, status.success()))?;
                bar.inc_length(joined as u64);
                if !status.success() {
                    let cell = r.cell;
                    bar.suspend(|| {
                        tracing::warn!(cell, log = %r.log.display(), "{status}: the cell failed")
                    });
                    failures.push(Failure {
                        cell,
                        stage: r.stage,
                        status: status.to_string(),
                        code: status.code(),
                        log: r.log,
                    });
                }
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs the queue's cells as children, `count` at a time, after the source pretraining of
/// its plan's missing cells; returns the failures (a cell whose pretraining failed is not
/// run).
pub fn run(
    queue: &mut Queue<'_>,
    count: usize,
    launch: Launcher<'_>,
    logs: &Path,
    progress: bool,
) -> Result<Vec<Failure>, ReproduceError> {
    std::fs::create_dir_all(logs).map_err(|source| ReproduceError::Io {
        path: logs.to_path_buf(),
        source,
    })?;
    let plan = queue.plan();
    let missing: Vec<usize> = (0..plan.cells.len())
        .filter(|&i| !plan.cells[i].done())
        .collect();
    let sources = distinct_sources(plan, &missing);
    let bar = if progress {
        indicatif::ProgressBar::new((sources.len() + missing.len()) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("source models");
    let names = |indices: &[usize]| -> Vec<String> {
        indices
            .iter()
            .map(|&i| plan.cells[i].cell.name.clone())
            .collect()
    };
    let mut pretraining = Fixed(names(&sources).into());
    let mut failures = pool(&mut pretraining, Stage::Pretrain, count, launch, logs, &bar)?;
    // The cells whose source model failed are not run; each is listed with the failure.
    let setup_of = |cell: &str| {
        plan.cells
            .iter()
            .find(|c| c.cell.name == cell)
            .and_then(source_setup)
    };
    let unpretrained: Vec<(Option<serde_json::Value>, Failure)> = failures
        .iter()
        .map(|f| (setup_of(&f.cell), f.clone()))
        .collect();
    let mut unrunnable = Vec::new();
    for cell in names(&missing) {
        let setup = setup_of(&cell);
        if let Some((_, failed)) = unpretrained
            .iter()
            .find(|(s, _)| setup.is_some() && *s == setup)
        {
            if failed.cell != cell {
                failures.push(Failure {
                    cell: cell.clone(),
                    status: format!("not run: its source model failed with {}", failed.cell),
                    ..failed.clone()
                });
            }
            unrunnable.push(cell);
        }
    }
    bar.inc(unrunnable.len() as u64);
    for cell in &unrunnable {
        queue.remove(cell);
    }
    bar.set_prefix("cells");
    failures.extend(pool(queue, Stage::Cell, count, launch, logs, &bar)?);
    bar.finish_and_clear();
    Ok(failures)
}
