//! Planning a grid's cells: per combination of axis values its evaluation cells, and
//! where its method has a search space, its trial cells first and its evaluation cells at
//! the selected trial once every trial has an outcome.

use std::path::Path;

use super::search::Search;
use super::selection::{self, Score};
use super::spec::{self, Cell, Combo, Spec};
use super::{PlannedCell, ReproduceError};
use crate::config::{Overrides, Registry, resolve};

/// What planning a combination needs.
pub(super) struct Planner<'a> {
    pub spec: &'a Spec,
    /// The grid file's folder (its `config` patterns are relative to it).
    pub base: &'a Path,
    /// The command line's overrides of every cell.
    pub sets: &'a [String],
    /// Evaluation seeds: 1..=seeds.
    pub seeds: usize,
    /// The profile's config overlay.
    pub overlay: &'a Path,
    pub registry: &'a Registry,
    /// `--only`: cells whose name contains it.
    pub only: Option<&'a str>,
}

impl Planner<'_> {
    fn keep(&self, cell: &Cell) -> bool {
        self.only.is_none_or(|o| cell.name.contains(o))
    }

    fn resolve(&self, cell: Cell) -> Result<PlannedCell, ReproduceError> {
        let mut overrides = Overrides::from_process(cell.sets.clone());
        overrides.files.push(self.overlay.to_path_buf());
        let resolved = resolve(&cell.config, &overrides, self.registry)?;
        Ok(PlannedCell { cell, resolved })
    }

    /// The evaluation cells of `combo`, at `tuned`'s values where it has them.
    fn evaluation(&self, combo: &Combo, tuned: Option<&spec::Tuned>) -> Vec<Cell> {
        (1..=self.seeds as u64)
            .map(|seed| {
                self.spec
                    .cell(self.base, combo, seed, self.sets, tuned.cloned())
            })
            .filter(|c| self.keep(c))
            .collect()
    }

    /// Adds `combo`'s cells: with `search` (the search and its trial count) its trial
    /// cells, then its evaluation cells at the selected trial to `cells`, or to `waiting`
    /// while a trial has no outcome (or none scored).
    pub fn combo(
        &self,
        combo: &Combo,
        search: Option<(&Search, usize)>,
        cells: &mut Vec<PlannedCell>,
        waiting: &mut Vec<Cell>,
    ) -> Result<(), ReproduceError> {
        let Some((search, trials)) = search else {
            for cell in self.evaluation(combo, None) {
                cells.push(self.resolve(cell)?);
            }
            return Ok(());
        };
        let method = &combo.labels[&self.spec.column];
        let tuned = |trial: usize, is_trial: bool| spec::Tuned {
            trial,
            values: search
                .values(method, trial)
                .expect("the method has a space"),
            is_trial,
        };
        // Every trial cell is planned (the filter applies after): selection reads them all.
        let mut trial_cells = Vec::new();
        for trial in 1..=trials {
            for &seed in &search.seeds {
                let cell =
                    self.spec
                        .cell(self.base, combo, seed, self.sets, Some(tuned(trial, true)));
                trial_cells.push(self.resolve(cell)?);
            }
        }
        let scores: Vec<(usize, Score)> = trial_cells
            .iter()
            .map(|c| (c.cell.trial().expect("a trial cell"), c.score(&c.result())))
            .collect();
        let complete = scores.iter().all(|(_, s)| *s != Score::Missing);
        let selected = complete
            .then(|| selection::select(&scores, selection::By::Validation))
            .flatten();
        cells.extend(trial_cells.into_iter().filter(|c| self.keep(&c.cell)));
        match selected {
            Some(trial) => {
                for cell in self.evaluation(combo, Some(&tuned(trial, false))) {
                    cells.push(self.resolve(cell)?);
                }
            }
            None => waiting.extend(self.evaluation(combo, None)),
        }
        Ok(())
    }
}

/// The grid's search under `profile` (its trials and search seeds), with `seeds` evaluation
/// seeds; an error where a search seed is also an evaluation seed.
pub(super) fn searched(
    spec: &Spec,
    profile: &spec::Profile,
    seeds: usize,
) -> Result<Option<(Search, usize)>, String> {
    let Some(search) = &spec.search else {
        return Ok(None);
    };
    let mut search = search.clone();
    if let Some(k) = profile.search_seeds {
        if k == 0 || k > search.seeds.len() {
            return Err(format!(
                "the profile's search_seeds = {k}: [search] seeds lists {} (1 to {} of them)",
                search.seeds.len(),
                search.seeds.len()
            ));
        }
        search.seeds.truncate(k);
    }
    if let Some(clash) = search.seeds.iter().find(|&&s| s >= 1 && s <= seeds as u64) {
        return Err(format!(
            "search seed {clash} is also an evaluation seed (1 to {seeds}): the selected trial \
             must be evaluated on seeds it was not selected on; use [search] seeds above {seeds}"
        ));
    }
    let trials = profile.trials.unwrap_or(search.trials);
    if trials == 0 {
        return Err("the profile's trials must be at least 1".into());
    }
    Ok(Some((search, trials)))
}
