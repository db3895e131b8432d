//! `daa run`: one experiment, its test metrics printed.

use anyhow::Result;
use daa::config::Resolved;
use daa::train::{RunOptions, run};

pub fn execute(resolved: &Resolved, options: &RunOptions) -> Result<()> {
    let result = run(resolved, options)?;
    let Some(record) = result.record else {
        println!(
            "stopped early as asked; continue with --resume ({})",
            result.dir.display()
        );
        return Ok(());
    };
    if result.reused {
        println!(
            "finished earlier; its result is reused (--rerun runs it again): {}",
            result.dir.display()
        );
    }
    println!(
        "{} ({}, seed {}, {} target rows, best epoch {}), test set of {} rows:",
        record.experiment,
        record.method,
        record.seed,
        record.target_train_rows,
        record.best_epoch.map_or("-".into(), |e| e.to_string()),
        record.test.rows
    );
    println!(
        "  {:<12} {:>8} {:>9} {:>11}",
        "task", "AUC", "log-loss", "oracle AUC"
    );
    for t in &record.test.tasks {
        let shown = |auc: Option<f64>| auc.map_or("n/a".into(), |a| format!("{a:.4}"));
        println!(
            "  {:<12} {:>8} {:>9.5} {:>11}",
            t.task,
            shown(t.auc),
            t.log_loss,
            shown(t.oracle_auc)
        );
    }
    for t in &record.test.tasks {
        if let Some(p) = t.constant_prediction {
            eprintln!(
                "warning: the selected model predicts {p} for every test row of `{}`: it has \
                 collapsed (its AUC is 0.5 by construction); result.json marks it \
                 (constant_prediction). Lower the learning rate or check the data",
                t.task
            );
        }
    }
    println!(
        "run directory: {} ({:.1} s)",
        result.dir.display(),
        record.wall_seconds
    );
    if let Some(timing) = &record.timing {
        println!(
            "time: {} (result.json `timing`)",
            timing.describe_largest(3)
        );
    }
    Ok(())
}
