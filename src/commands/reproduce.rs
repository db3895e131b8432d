//! `daa reproduce NAME`: a paper table or figure, its cells run or reused.

use daa::train::finished::Finished;
use std::process::Command;

use anyhow::{Context, Result};
use daa::config::Registry;
use daa::reproduce::jobs::Stage;
use daa::reproduce::slurm::TaskCommand;
use daa::reproduce::{Options, Plan};

/// What `daa reproduce` does with the plan.
pub enum Mode {
    Run,
    DryRun,
    /// Submit the missing cells as Slurm arrays, with these extra sbatch options.
    Slurm(Vec<String>),
    Collect,
}

pub fn reproduce(registry: &Registry, name: &str, options: &Options, mode: Mode) -> Result<()> {
    let plan = Plan::new(name, registry, options)?;
    match mode {
        Mode::DryRun => {
            dry_run(&plan, options);
            Ok(())
        }
        Mode::Slurm(extra) => submit_slurm(&plan, registry, name, options, &extra),
        Mode::Collect => collect(&plan, options),
        Mode::Run => run(plan, registry, options),
    }
}

/// `--dry-run`: every cell with its hash and state, and what a search cell runs.
fn dry_run(plan: &Plan, options: &Options) {
    // Each cell's result (and a trial's divergence record) read once.
    let results: Vec<(Finished, bool)> = plan
        .cells
        .iter()
        .map(|c| {
            let result = c.result();
            let diverged = !result.is_done() && c.diverged().is_some();
            (result, diverged)
        })
        .collect();
    let finished = results
        .iter()
        .filter(|(r, diverged)| r.is_done() || *diverged)
        .count();
    println!(
        "{} ({}): {} cells, {finished} finished, {} to run",
        plan.name,
        options.profile,
        plan.cells.len(),
        plan.cells.len() - finished
    );
    for (i, (cell, (result, diverged))) in plan.cells.iter().zip(results).enumerate() {
        let state = match result {
            Finished::Done(_) => "done".to_string(),
            Finished::Missing if diverged => "done: diverged".to_string(),
            Finished::Missing => "to run".to_string(),
            Finished::Damaged { path, reason } => format!(
                "to run: damaged result {} ({})",
                path.display(),
                super::message::printable(&reason)
            ),
        };
        // What a search trial runs, or which trial an evaluation cell runs.
        let tuned = cell.cell.tuned.as_ref().map_or(String::new(), |t| {
            let values = daa::reproduce::search::describe(&t.values);
            if t.is_trial {
                format!("  [{values}]")
            } else {
                format!("  [selected trial {}: {values}]", t.trial)
            }
        });
        println!(
            "  {i:>4} {:<40} {}  {state}{tuned}",
            cell.cell.name, cell.resolved.hash
        );
    }
    print_waiting(plan);
}

/// `--slurm`: submit the missing cells as job arrays and say what was submitted.
fn submit_slurm(
    plan: &Plan,
    registry: &Registry,
    name: &str,
    options: &Options,
    extra: &[String],
) -> Result<()> {
    let task = task_command(plan, registry, options)?;
    let dir = std::path::absolute(daa::reproduce::out_dir(plan, options).join("slurm"))?;
    let s = daa::reproduce::slurm::submit(plan, &dir, &task, extra)?;
    println!(
        "{} ({}): {} cells missing of {}; plan: {}",
        plan.name,
        options.profile,
        s.cells,
        plan.cells.len(),
        s.dir.join("plan.tsv").display()
    );
    if let Some(id) = &s.pretrain_job {
        println!(
            "submitted job array {id}: {} source pretraining(s)",
            s.sources
        );
    }
    match &s.cells_job {
        Some(id) => println!(
            "submitted job array {id}: {} cell(s){}; task logs in {}",
            s.cells,
            s.pretrain_job
                .as_ref()
                .map_or(String::new(), |p| format!(", after {p}")),
            s.dir.join("logs").display()
        ),
        None => println!("nothing to submit: every cell is finished"),
    }
    if !plan.waiting.is_empty() {
        println!(
            "{} evaluation cell(s) wait on their search's trials: once the trials' \
             array has finished, submit again (`--slurm`) to run them",
            plan.waiting.len()
        );
    }
    println!(
        "when they are done: daa reproduce {name} --profile {} --collect",
        options.profile
    );
    Ok(())
}

/// `--collect`: the report from the finished cells, and the missing ones listed.
fn collect(plan: &Plan, options: &Options) -> Result<()> {
    let outcome = daa::reproduce::report(plan, options, plan.finished())?;
    println!("{}", outcome.markdown);
    println!("written: {}", outcome.out_dir.display());
    println!(
        "{} cells: {} finished, {} missing",
        outcome.cells,
        outcome.cells - outcome.missing.len(),
        outcome.missing.len()
    );
    for cell in &outcome.missing {
        println!("  missing: {cell}");
    }
    Ok(())
}

/// Run the missing cells (children under `--jobs`), then the report.
fn run(plan: Plan, registry: &Registry, options: &Options) -> Result<()> {
    let task = task_command(&plan, registry, options)?;
    let launch = |cell: &str, stage: Stage| {
        let mut command = Command::new(&task.program);
        command.args(&task.args).args(["--cell", cell]);
        if stage == Stage::Pretrain {
            command.arg("--pretrain-only");
        }
        command
    };
    let outcome = daa::reproduce::run(plan, registry, options, &launch)?;
    println!("{}", outcome.markdown);
    println!("written: {}", outcome.out_dir.display());
    println!(
        "{} cells: {} run now, {} already finished (skipped)",
        outcome.cells, outcome.ran, outcome.skipped
    );
    Ok(())
}

/// The evaluation cells of searches whose trials have not all finished.
fn print_waiting(plan: &Plan) {
    if plan.waiting.is_empty() {
        return;
    }
    println!(
        "{} evaluation cell(s) wait on their search's trials (planned with the selected \
         trial once every trial has finished, or never where every trial diverged):",
        plan.waiting.len()
    );
    for cell in &plan.waiting {
        println!("       {}", cell.name);
    }
}

/// The command line, without `--cell`, with which a child or an array task re-creates the
/// same plan (grid file, profile, seeds, filter, overrides, registry, output) and runs one
/// of its cells.
fn task_command(plan: &Plan, registry: &Registry, options: &Options) -> Result<TaskCommand> {
    let program = std::env::current_exe().context("finding the daa executable")?;
    let mut args: Vec<String> = vec!["-q".into(), "--registry".into()];
    args.push(std::path::absolute(&registry.root)?.display().to_string());
    args.extend([
        "reproduce".into(),
        std::path::absolute(&plan.file)?.display().to_string(),
        "--profile".into(),
        options.profile.clone(),
    ]);
    if let Some(seeds) = options.seeds {
        args.extend(["--seeds".into(), seeds.to_string()]);
    }
    if let Some(only) = &options.only {
        args.extend(["--only".into(), only.clone()]);
    }
    for set in &options.sets {
        args.extend(["--set".into(), set.clone()]);
    }
    if let Some(out) = &options.out {
        args.extend([
            "--out".into(),
            std::path::absolute(out)?.display().to_string(),
        ]);
    }
    Ok(TaskCommand { program, args })
}

/// `daa reproduce NAME --cell CELL [--pretrain-only]`: one cell of the grid, in this process.
pub fn cell(
    registry: &Registry,
    name: &str,
    options: &Options,
    which: &str,
    pretrain_only: bool,
) -> Result<()> {
    let plan = Plan::new(name, registry, options)?;
    let stage = if pretrain_only {
        Stage::Pretrain
    } else {
        Stage::Cell
    };
    daa::reproduce::run_cell(&plan, which, stage, options.progress)?;
    Ok(())
}
