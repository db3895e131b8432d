//! `daa reproduce NAME`: a paper table or figure, its cells run or reused.

use anyhow::Result;
use daa::config::Registry;
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
        for cell in &plan.cells {
            println!(
                "  {:<40} {}  {}",
                cell.cell.name,
                cell.resolved.hash,
                if cell.done() { "done" } else { "to run" }
            );
        }
        return Ok(());
    }
    let outcome = daa::reproduce::run(&plan, options)?;
    println!("{}", outcome.markdown);
    println!("written: {}", outcome.out_dir.display());
    println!(
        "{} cells: {} run now, {} already finished (skipped)",
        outcome.cells, outcome.ran, outcome.skipped
    );
    Ok(())
}
