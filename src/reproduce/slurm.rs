//! A grid's missing cells as Slurm job arrays: the plan (one line per missing cell), an
//! array of the distinct source pretrainings, then an array of the cells that starts when
//! the first has finished (`--dependency=afterok`), each task running
//! `daa reproduce NAME --cell CELL` (idempotent: a finished cell returns at once; an
//! interrupted one resumes from its last epoch, so a preempted and requeued task loses at
//! most an epoch). `daa reproduce NAME --collect` builds the report afterwards.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::jobs::{self, Stage};
use super::spec::Slurm as Config;
use super::{Plan, ReproduceError};
use crate::train::run_dir;

/// What was submitted.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Where the plan, the lists, the batch scripts and the tasks' logs are.
    pub dir: PathBuf,
    pub sources: usize,
    pub cells: usize,
    /// The job ids of the pretraining array and of the cells' array (none when empty).
    pub pretrain_job: Option<String>,
    pub cells_job: Option<String>,
}

/// How an array task re-creates the plan and runs its cell: the daa command line without
/// `--cell`.
pub struct TaskCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn write(path: &Path, text: &str) -> Result<(), ReproduceError> {
    Ok(crate::whole_file::write(path, text.as_bytes())?)
}

/// The batch script of one array over the cell indices listed in `list`.
fn script(
    name: &str,
    dir: &Path,
    list: &Path,
    count: usize,
    config: &Config,
    task: &TaskCommand,
    stage: Stage,
) -> String {
    let mut text = String::from("#!/bin/bash\n");
    let _ = writeln!(text, "#SBATCH --job-name=daa-{name}-{stage:?}");
    let throttle = config.throttle.map_or(String::new(), |k| format!("%{k}"));
    let _ = writeln!(text, "#SBATCH --array=0-{}{throttle}", count - 1);
    let _ = writeln!(text, "#SBATCH --output={}/logs/%A_%a.log", dir.display());
    let _ = writeln!(text, "#SBATCH --open-mode=append");
    let _ = writeln!(text, "#SBATCH --requeue");
    for directive in config.directives() {
        let _ = writeln!(text, "#SBATCH {directive}");
    }
    let _ = writeln!(
        text,
        "# The cell of this task: line SLURM_ARRAY_TASK_ID + 1 of the list.\n\
         cell=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})",
        shell_quote(&list.display().to_string())
    );
    let mut command = vec![shell_quote(&task.program.display().to_string())];
    command.extend(task.args.iter().map(|a| shell_quote(a)));
    command.push("--cell".into());
    command.push("\"$cell\"".into());
    if stage == Stage::Pretrain {
        command.push("--pretrain-only".into());
    }
    let _ = writeln!(text, "exec {}", command.join(" "));
    text
}

/// Runs sbatch on `script` with `extra` options; returns the job id it prints.
fn sbatch(script: &Path, extra: &[String]) -> Result<String, ReproduceError> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|source| ReproduceError::Io {
            path: PathBuf::from("sbatch"),
            source,
        })?;
    if !output.status.success() {
        return Err(ReproduceError::Slurm(format!(
            "sbatch {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints "id" or "id;cluster".
    Ok(text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Writes the plan and submits the arrays of the plan's missing cells. `extra` sbatch
/// options (`--slurm-opt`) come after the plan's (the grid's `[slurm]` table, the
/// profile's, `--set slurm.KEY=VALUE`) and win.
pub fn submit(
    plan: &Plan,
    dir: &Path,
    task: &TaskCommand,
    extra: &[String],
) -> Result<Submission, ReproduceError> {
    std::fs::create_dir_all(dir.join("logs")).map_err(|source| ReproduceError::Io {
        path: dir.join("logs"),
        source,
    })?;
    let missing: Vec<usize> = (0..plan.cells.len())
        .filter(|&i| !plan.cells[i].done())
        .collect();
    let sources = jobs::distinct_sources(plan, &missing);
    let mut table = String::from("index\tcell\tconfig\toverrides\thash\trun_dir\n");
    for &i in &missing {
        let c = &plan.cells[i];
        let _ = writeln!(
            table,
            "{i}\t{}\t{}\t{}\t{}\t{}",
            c.cell.name,
            c.cell.config.display(),
            c.cell
                .sets
                .iter()
                .map(|s| s.arg.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            c.resolved.hash,
            run_dir(&c.resolved).display()
        );
    }
    write(&dir.join("plan.tsv"), &table)?;
    // One array over `indices` (listed in `list`, run by `batch`), submitted with
    // `options`; none when there is nothing to run.
    let array = |indices: &[usize],
                 list: &str,
                 batch: &str,
                 stage: Stage,
                 options: &[String]|
     -> Result<Option<String>, ReproduceError> {
        if indices.is_empty() {
            return Ok(None);
        }
        let list = dir.join(list);
        write(
            &list,
            &indices
                .iter()
                .map(|&i| format!("{}\n", plan.cells[i].cell.name))
                .collect::<String>(),
        )?;
        let batch = dir.join(batch);
        let text = script(
            &plan.name,
            dir,
            &list,
            indices.len(),
            &plan.slurm,
            task,
            stage,
        );
        write(&batch, &text)?;
        sbatch(&batch, options).map(Some)
    };
    let pretrain_job = array(
        &sources,
        "sources.txt",
        "pretrain.sbatch",
        Stage::Pretrain,
        extra,
    )?;
    let mut options = extra.to_vec();
    if let Some(id) = &pretrain_job {
        options.insert(0, format!("--dependency=afterok:{id}"));
    }
    let cells_job = array(&missing, "cells.txt", "cells.sbatch", Stage::Cell, &options)?;
    Ok(Submission {
        dir: dir.to_path_buf(),
        sources: sources.len(),
        cells: missing.len(),
        pretrain_job,
        cells_job,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Config, Stage, TaskCommand, script};

    #[test]
    fn the_batch_script_runs_the_listed_cell_with_the_grid_options() {
        let config = Config {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            throttle: Some(4),
            options: vec!["--qos=low".into()],
            ..Config::default()
        };
        let task = TaskCommand {
            program: PathBuf::from("/opt/daa"),
            args: vec!["reproduce".into(), "my grid.toml".into()],
        };
        let text = script(
            "t4",
            Path::new("/shared/out/slurm"),
            Path::new("/shared/out/slurm/sources.txt"),
            3,
            &config,
            &task,
            Stage::Pretrain,
        );
        for line in [
            "#SBATCH --array=0-2%4",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --qos=low",
            "#SBATCH --requeue",
            "#SBATCH --output=/shared/out/slurm/logs/%A_%a.log",
            "cell=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" /shared/out/slurm/sources.txt)",
            "exec /opt/daa reproduce 'my grid.toml' --cell \"$cell\" --pretrain-only",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
