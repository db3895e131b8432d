//! The order in which a reproduction runs its cells: the plan's missing cells in plan
//! order, and a search's evaluation cells as soon as its last trial finishes, ahead of the
//! rest. A long searched grid so completes its rows one search after another instead of
//! holding every evaluation back until the last trial of the last row.

use std::collections::{HashSet, VecDeque};

use super::{Options, Plan, ReproduceError};
use crate::config::registry::Registry;

/// Cells handed out one at a time, told when each ends.
pub trait Cells {
    /// The next cell to run, by name.
    fn next(&mut self) -> Option<String>;
    /// The cell ended, `succeeded` or not; returns how many cells joined the queue.
    fn ended(&mut self, cell: &str, succeeded: bool) -> Result<usize, ReproduceError>;
}

/// A fixed list of cells.
pub struct Fixed(pub VecDeque<String>);

impl Cells for Fixed {
    fn next(&mut self) -> Option<String> {
        self.0.pop_front()
    }

    fn ended(&mut self, _: &str, _: bool) -> Result<usize, ReproduceError> {
        Ok(0)
    }
}

/// A plan's missing cells; planned again when a search's trials have all finished, so
/// that its evaluation cells run next.
pub struct Queue<'a> {
    plan: Plan,
    pending: VecDeque<String>,
    /// Every cell queued, running or finished: a cell joins once.
    known: HashSet<String>,
    registry: &'a Registry,
    options: &'a Options,
}

impl<'a> Queue<'a> {
    pub fn new(plan: Plan, registry: &'a Registry, options: &'a Options) -> Self {
        let pending = plan
            .cells
            .iter()
            .filter(|c| !c.done())
            .map(|c| c.cell.name.clone())
            .collect();
        let known = plan.cells.iter().map(|c| c.cell.name.clone()).collect();
        Queue {
            plan,
            pending,
            known,
            registry,
            options,
        }
    }

    /// The plan as last planned.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Cells queued, not yet handed out.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Takes `cell` out of the queue (its source model failed: it cannot run).
    pub fn remove(&mut self, cell: &str) {
        self.pending.retain(|c| c != cell);
    }

    /// Whether `cell` is a search trial whose search now has every trial finished (or
    /// diverged) while evaluation cells wait on it.
    fn completes_a_search(&self, cell: &str) -> bool {
        if self.plan.waiting.is_empty() {
            return false;
        }
        let Some(planned) = self.plan.cells.iter().find(|c| c.cell.name == cell) else {
            return false;
        };
        if planned.cell.trial().is_none() {
            return false;
        }
        self.plan
            .cells
            .iter()
            .filter(|c| c.cell.trial().is_some() && c.cell.labels == planned.cell.labels)
            .all(|c| c.done())
    }
}

impl Cells for Queue<'_> {
    fn next(&mut self) -> Option<String> {
        self.pending.pop_front()
    }

    fn ended(&mut self, cell: &str, succeeded: bool) -> Result<usize, ReproduceError> {
        if !succeeded || !self.completes_a_search(cell) {
            return Ok(0);
        }
        let grid = self.plan.file.display().to_string();
        let next = Plan::new(&grid, self.registry, self.options)?;
        let joined: Vec<String> = next
            .cells
            .iter()
            .filter(|c| !c.done() && !self.known.contains(&c.cell.name))
            .map(|c| c.cell.name.clone())
            .collect();
        for name in joined.iter().rev() {
            self.pending.push_front(name.clone());
        }
        self.known.extend(joined.iter().cloned());
        self.plan = next;
        if !joined.is_empty() {
            tracing::info!(
                cells = joined.len(),
                "a search finished: its evaluation cells run next"
            );
        }
        Ok(joined.len())
    }
}
