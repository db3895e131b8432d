//! What a reproduction cost, per column value (a method): its cells' seconds (search trials
//! included: they are what a search costs), in all and on average, and where they went by
//! phase (result.json's `timing`), so that a study can be planned from a smaller one.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::spec::{Cell, Spec};
use crate::train::{RunRecord, Timing};

/// The cost of one column value's cells.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cost {
    pub column: String,
    pub cells: usize,
    /// Wall seconds over the cells (every session of each).
    pub total_seconds: f64,
    pub mean_seconds: f64,
    /// Seconds by phase, summed over the cells that recorded their timing.
    pub phases: Timing,
}

/// The cost of each column value of `runs`, in the order the values first appear.
pub fn summarize(spec: &Spec, runs: &[(Cell, RunRecord)]) -> Vec<Cost> {
    let mut order: Vec<String> = Vec::new();
    let mut by_column: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for (cell, record) in runs {
        let column = cell.labels.get(&spec.column).cloned().unwrap_or_default();
        if !by_column.contains_key(&column) {
            order.push(column.clone());
        }
        by_column.entry(column).or_default().push(record);
    }
    order
        .into_iter()
        .map(|column| {
            let records = &by_column[&column];
            let total: f64 = records.iter().map(|r| r.wall_seconds).sum();
            let phases = records
                .iter()
                .filter_map(|r| r.timing.as_ref())
                .fold(Timing::default(), |all, t| all.merged(t));
            Cost {
                cells: records.len(),
                total_seconds: total,
                mean_seconds: total / records.len() as f64,
                phases,
                column,
            }
        })
        .collect()
}

/// The "Cost" section of a report.
pub fn markdown(costs: &[Cost]) -> String {
    if costs.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Cost\n\nWall seconds of the finished cells (search trials included), and the \
         three largest phases of their time (result.json `timing`).\n\n\
         | column | cells | total s | mean s | largest phases |\n|---|---|---|---|---|\n",
    );
    for c in costs {
        let phases = c.phases.describe_largest(3);
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {} |",
            c.column,
            c.cells,
            c.total_seconds,
            c.mean_seconds,
            if phases.is_empty() { "-" } else { &phases }
        );
    }
    md
}
