//! `daa reproduce NAME`: a paper table or figure, its cells run or reused.

use std::process::Command;

use anyhow::{Context, Result};
use daa::config::Registry;
use daa::reproduce::jobs::Stage;
use daa::reproduce::{Options, Plan};

pub fn reproduce(registry: &Registry, name: &str, options: &Options, dry_run: bool) -> Result<()> {
    let plan = Plan::new(name, registry, options)?;
    if dry_run {
        println!(
            "{} ({}): {} cells, {} finished, {} to run",
            plan.name,
            options.profile,
            plan.cells.len(),
            plan.finished(),
            plan.cells.len() - plan.finished()
        );
        for (i, cell) in plan.cells.iter().enumerate() {
            println!(
                "  {i:>4} {:<40} {}  {}",
                cell.cell.name,
                cell.resolved.hash,
                if cell.done() { "done" } else { "to run" }
            );
        }
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the daa executable for --jobs")?;
    // A child re-creates the same plan (grid, profile, seeds, filter, registry) and runs one
    // of its cells.
    let launch = |index: usize, stage: Stage| {
        let mut command = Command::new(&exe);
        command
            .arg("-q")
            .arg("--registry")
            .arg(&registry.root)
            .args(["reproduce", name, "--profile", &options.profile]);
        if let Some(seeds) = options.seeds {
            command.args(["--seeds", &seeds.to_string()]);
        }
        if let Some(only) = &options.only {
            command.args(["--only", only]);
        }
        command.args(["--cell", &index.to_string()]);
        if stage == Stage::Pretrain {
            command.arg("--pretrain-only");
        }
        command
    };
    let outcome = daa::reproduce::run(&plan, options, &launch)?;
    println!("{}", outcome.markdown);
    println!("written: {}", outcome.out_dir.display());
    println!(
        "{} cells: {} run now, {} already finished (skipped)",
        outcome.cells, outcome.ran, outcome.skipped
    );
    Ok(())
}

/// `daa reproduce NAME --cell I [--pretrain-only]`: one cell of the grid, in this process.
pub fn cell(
    registry: &Registry,
    name: &str,
    options: &Options,
    index: usize,
    pretrain_only: bool,
) -> Result<()> {
    let plan = Plan::new(name, registry, options)?;
    let stage = if pretrain_only {
        Stage::Pretrain
    } else {
        Stage::Cell
    };
    daa::reproduce::run_cell(&plan, index, stage, options.progress)?;
    Ok(())
}
