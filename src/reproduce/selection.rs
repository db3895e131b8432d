//! Choosing a search's trial per (row, method): the trial with the best mean validation
//! score over the search seeds (the rule every claim uses; ties go to the lower trial), and
//! the oracle, the trial with the best mean test AUC (an upper bound that no claim uses);
//! and the search's section of the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::search::{Values, describe};
use super::spec::{Cell, Spec};

/// What one trial cell (a trial on a search seed) gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Score {
    /// The selected epoch's validation score and the mean test AUC over tasks.
    Finished {
        valid: Option<f64>,
        test: Option<f64>,
    },
    /// Training diverged (the cell's `diverged.json` holds the message): a trial outcome,
    /// never selected.
    Diverged(String),
    /// Not run yet, interrupted or failed.
    Missing,
}

/// What a trial is chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Validation,
    Test,
}

/// The mean over a trial's seeds of its scores by `by`; none when a seed has none
/// (diverged, missing, or no validation score).
fn mean(scores: &[&Score], by: By) -> Option<f64> {
    let values: Vec<f64> = per_seed(scores, by).into_iter().collect::<Option<_>>()?;
    (!values.is_empty() && values.iter().all(|v| v.is_finite()))
        .then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The trial (of `runs`: (trial, score) on each search seed) with the best mean score by
/// `by`; ties go to the lower trial; none when no trial has a score on every seed.
pub fn select(runs: &[(usize, Score)], by: By) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for trial in trials(runs) {
        let scores: Vec<&Score> = runs
            .iter()
            .filter(|(t, _)| *t == trial)
            .map(|(_, s)| s)
            .collect();
        if let Some(m) = mean(&scores, by)
            && best.is_none_or(|(_, b)| m > b)
        {
            best = Some((trial, m));
        }
    }
    best.map(|(t, _)| t)
}

fn trials(runs: &[(usize, Score)]) -> Vec<usize> {
    let mut trials: Vec<usize> = runs.iter().map(|(t, _)| *t).collect();
    trials.sort_unstable();
    trials.dedup();
    trials
}

/// One trial of a (row, method) search, over its search seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub trial: usize,
    pub values: BTreeMap<String, toml::Value>,
    pub seeds: Vec<u64>,
    /// Per search seed: the selected validation score, the mean test AUC (null where the
    /// seed has none).
    pub valid: Vec<Option<f64>>,
    pub test: Vec<Option<f64>>,
    /// The seeds whose training diverged, with the message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diverged: Vec<(u64, String)>,
    pub mean_valid: Option<f64>,
    pub mean_test: Option<f64>,
}

/// The trial a rule chose.
#[derive(Debug, Clone, Serialize)]
pub struct Pick {
    pub trial: usize,
    pub values: BTreeMap<String, toml::Value>,
    pub mean_valid: Option<f64>,
    pub mean_test: Option<f64>,
}

/// A (row, method)'s search.
#[derive(Debug, Clone, Serialize)]
pub struct Searched {
    pub row: String,
    pub method: String,
    /// Trials planned, and those with an outcome on every search seed.
    pub trials: usize,
    pub trials_run: usize,
    pub runs: Vec<Trial>,
    /// By validation: what the evaluation cells run.
    pub selected: Option<Pick>,
    /// By test AUC: an upper bound, no claim uses it.
    pub oracle: Option<Pick>,
}

/// The (row, method) pairs of `cells`, in grid order, each with its trial cells.
type Groups<'a> = Vec<((String, String), Vec<&'a (Cell, Score)>)>;

fn groups<'a>(spec: &Spec, cells: &'a [(Cell, Score)]) -> Groups<'a> {
    let mut groups: Groups = Vec::new();
    for entry in cells {
        let key = (
            spec.row_label(&entry.0),
            entry.0.labels[&spec.column].clone(),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(entry),
            None => groups.push((key, vec![entry])),
        }
    }
    groups
}

/// The scores by `by` of each seed (none where a seed has none).
fn per_seed(scores: &[&Score], by: By) -> Vec<Option<f64>> {
    scores
        .iter()
        .map(|s| match (s, by) {
            (Score::Finished { valid, .. }, By::Validation) => *valid,
            (Score::Finished { test, .. }, By::Test) => *test,
            _ => None,
        })
        .collect()
}

/// Trial `trial` of a group's cells, over its seeds.
fn trial_summary(members: &[&(Cell, Score)], trial: usize) -> Trial {
    let of_trial: Vec<&(Cell, Score)> = members
        .iter()
        .copied()
        .filter(|(c, _)| c.trial() == Some(trial))
        .collect();
    let values: &Values = &of_trial[0].0.tuned.as_ref().expect("a trial cell").values;
    let scores: Vec<&Score> = of_trial.iter().map(|(_, s)| s).collect();
    Trial {
        trial,
        values: values.iter().cloned().collect(),
        seeds: of_trial.iter().map(|(c, _)| c.seed).collect(),
        valid: per_seed(&scores, By::Validation),
        test: per_seed(&scores, By::Test),
        diverged: of_trial
            .iter()
            .filter_map(|(c, s)| match s {
                Score::Diverged(m) => Some((c.seed, m.clone())),
                _ => None,
            })
            .collect(),
        mean_valid: mean(&scores, By::Validation),
        mean_test: mean(&scores, By::Test),
    }
}

/// The searches of `cells` (trial cells with their scores), per (row, method) in grid order.
pub fn summarize(spec: &Spec, cells: &[(Cell, Score)]) -> Vec<Searched> {
    groups(spec, cells)
        .into_iter()
        .map(|((row, method), members)| {
            let runs: Vec<(usize, Score)> = members
                .iter()
                .filter_map(|(c, s)| c.trial().map(|t| (t, s.clone())))
                .collect();
            let listed = trials(&runs);
            let summaries: Vec<Trial> =
                listed.iter().map(|&t| trial_summary(&members, t)).collect();
            let trials_run = listed
                .iter()
                .filter(|&&t| runs.iter().all(|(u, s)| *u != t || *s != Score::Missing))
                .count();
            // Selection waits for every trial: a partial search selects nothing.
            let complete = trials_run == listed.len();
            let chosen = |by: By| {
                let t = select(&runs, by).filter(|_| complete)?;
                let s = summaries.iter().find(|s| s.trial == t).expect("listed");
                Some(Pick {
                    trial: t,
                    values: s.values.clone(),
                    mean_valid: s.mean_valid,
                    mean_test: s.mean_test,
                })
            };
            Searched {
                row,
                method,
                trials: listed.len(),
                trials_run,
                selected: chosen(By::Validation),
                oracle: chosen(By::Test),
                runs: summaries,
            }
        })
        .collect()
}

fn values_line(values: &BTreeMap<String, toml::Value>) -> String {
    describe(&values.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn score(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

/// The report's search section (empty without a search).
pub fn markdown(searches: &[Searched], search_seeds: &[u64]) -> String {
    if searches.is_empty() {
        return String::new();
    }
    let seeds = search_seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "\n## Search\n\nEach method with a search space ran its trials on the search seeds \
         ({seeds}); the trial with the best mean validation score over them was run on the \
         evaluation seeds, which the tables above report. Validation and test are the mean \
         over the search seeds (test: the mean AUC over tasks).\n\n\
         | row | method | trials run | selected | valid | test | values |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for s in searches {
        let (trial, valid, test, values) = match &s.selected {
            Some(p) => (
                format!("trial {}", p.trial),
                score(p.mean_valid),
                score(p.mean_test),
                values_line(&p.values),
            ),
            None if s.trials_run < s.trials => (
                "waits on its trials".into(),
                "-".into(),
                "-".into(),
                String::new(),
            ),
            None => (
                "none: no trial scored on every seed".into(),
                "-".into(),
                "-".into(),
                String::new(),
            ),
        };
        let diverged: usize = s.runs.iter().map(|t| t.diverged.len()).sum();
        let note = if diverged > 0 {
            format!(" ({diverged} diverged runs)")
        } else {
            String::new()
        };
        let _ = writeln!(
            text,
            "| {} | {} | {}/{}{note} | {trial} | {valid} | {test} | {values} |",
            s.row, s.method, s.trials_run, s.trials
        );
    }
    text.push_str(
        "\n### Oracle: selected by test AUC (an upper bound; no claim uses it)\n\n\
         The trial with the best mean test AUC over the search seeds, beside the trial that \
         validation selected, on the same seeds. The gap is what a perfect selection rule \
         could add.\n\n\
         | row | method | oracle | oracle test | selected test | gap | values |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for s in searches {
        let (Some(oracle), Some(selected)) = (&s.oracle, &s.selected) else {
            continue;
        };
        let gap = oracle.mean_test.zip(selected.mean_test).map(|(o, s)| o - s);
        let _ = writeln!(
            text,
            "| {} | {} | trial {} | {} | {} | {} | {} |",
            s.row,
            s.method,
            oracle.trial,
            score(oracle.mean_test),
            score(selected.mean_test),
            gap.map_or("-".into(), |g| format!("{g:+.4}")),
            values_line(&oracle.values)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(valid: f64, test: f64) -> Score {
        Score::Finished {
            valid: Some(valid),
            test: Some(test),
        }
    }

    #[test]
    fn selection_takes_the_best_mean_over_seeds_and_the_lower_trial_on_ties() {
        // Trial 1: valid mean 0.70; trial 2: 0.72 (best by validation), test 0.60;
        // trial 3: one seed diverged (never selected though its other seed is best);
        // trial 4: valid 0.65, test 0.75 (best by test).
        let runs = vec![
            (1, finished(0.69, 0.62)),
            (1, finished(0.71, 0.64)),
            (2, finished(0.73, 0.61)),
            (2, finished(0.71, 0.59)),
            (3, finished(0.99, 0.99)),
            (3, Score::Diverged("NaN".into())),
            (4, finished(0.60, 0.74)),
            (4, finished(0.70, 0.76)),
        ];
        assert_eq!(select(&runs, By::Validation), Some(2));
        assert_eq!(select(&runs, By::Test), Some(4));
        // A tie: 0.71 + 0.73 = 0.72 + 0.72; the lower trial wins whatever the order.
        let tie = vec![
            (5, finished(0.72, 0.5)),
            (5, finished(0.72, 0.5)),
            (2, finished(0.71, 0.5)),
            (2, finished(0.73, 0.5)),
        ];
        assert_eq!(select(&tie, By::Validation), Some(2));
        // No trial scored on every seed.
        let none = vec![(1, Score::Diverged("x".into())), (1, finished(0.7, 0.7))];
        assert_eq!(select(&none, By::Validation), None);
        // A run without a validation score (select_on = test) is not selectable by it.
        let unvalidated = vec![(
            1,
            Score::Finished {
                valid: None,
                test: Some(0.7),
            },
        )];
        assert_eq!(select(&unvalidated, By::Validation), None);
        assert_eq!(select(&unvalidated, By::Test), Some(1));
    }
}
