//! Does validation predict the test? Per row of a grid, the Spearman rank correlation
//! between each run's selected validation score and its test score (the mean of its
//! tasks' AUCs), over the row's runs: every method and seed. Selection is only as good as
//! this agreement; a grid with `data.valid` as an axis compares the rules.

use std::fmt::Write;

use serde::Serialize;

use super::spec::{Cell, Spec};
use crate::train::RunRecord;

/// The agreement of one row's runs.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub row: String,
    /// Runs with both a validation and a test score.
    pub runs: usize,
    /// The validation rules the runs used (`latest`, `random`), as recorded.
    pub validation: Vec<String>,
    /// `None` with fewer than three runs or a constant score.
    pub spearman: Option<f64>,
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let shared = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = shared;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation of `x` and `y` (Pearson's of their ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// One row's (validation, test) score pairs and the rules they were validated under.
struct Row {
    label: String,
    pairs: Vec<(f64, f64)>,
    rules: Vec<String>,
}

/// The agreement per row of `results`.
pub fn summarize(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<Agreement> {
    let mut rows: Vec<Row> = Vec::new();
    for (cell, record) in results {
        let test: Vec<f64> = record.test.tasks.iter().filter_map(|t| t.auc).collect();
        let (Some(valid), false) = (record.best_valid_mean_auc, test.is_empty()) else {
            continue;
        };
        let pair = (valid, test.iter().sum::<f64>() / test.len() as f64);
        // Runs from before the key validated on random rows.
        let rule = record.validation.map_or("random", |v| v.name()).to_string();
        let label = spec.row_label(cell);
        let row = match rows.iter().position(|r| r.label == label) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Row {
                    label,
                    pairs: Vec::new(),
                    rules: Vec::new(),
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.pairs.push(pair);
        if !row.rules.contains(&rule) {
            row.rules.push(rule);
        }
    }
    rows.into_iter()
        .map(|r| {
            let (valid, test): (Vec<f64>, Vec<f64>) = r.pairs.iter().copied().unzip();
            Agreement {
                row: r.label,
                runs: r.pairs.len(),
                validation: r.rules,
                spearman: spearman(&valid, &test),
            }
        })
        .collect()
}

/// The markdown section of `agreements` (empty where there is none).
pub fn markdown(agreements: &[Agreement]) -> String {
    if agreements.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Does validation predict the test?\n\nPer row, over its runs (every method and \
         seed): Spearman's rank correlation between the selected validation score and the \
         test AUC (mean over tasks). Near 0, selection on validation says little about the \
         test.\n\n| row | validation | runs | Spearman ρ |\n|---|---|---|---|\n",
    );
    for a in agreements {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            a.row,
            a.validation.join(", "),
            a.runs,
            a.spearman.map_or("—".into(), |r| format!("{r:.3}"))
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_hand_computed_values() {
        // One swapped pair of four: 1 - 6 * 2 / (4 * 15) = 0.8.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        // Ties share ranks: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3): 1.5 / sqrt(1.5 * 2).
        let r = spearman(&[0.7, 0.7, 0.9], &[0.1, 0.2, 0.3]).unwrap();
        assert!((r - 1.5 / 3f64.sqrt()).abs() < 1e-12, "{r}");
        // Reversed order: -1; monotone but not linear: 1.
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[1.0, 10.0, 1000.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
    }
}
