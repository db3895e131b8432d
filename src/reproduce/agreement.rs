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
    /// The row's runs that start from the source model (every method but those trained
    /// from scratch). Runs from scratch usually land far below the rest, where any rule
    /// places them, which lifts ρ over all runs; among these runs, often a few thousandths
    /// apart, is where selection has to be right.
    pub source_runs: usize,
    pub source_spearman: Option<f64>,
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

/// One run's scores, where it belongs, and how it was validated and started.
struct Point {
    row: String,
    rule: String,
    from_source: bool,
    valid: f64,
    test: f64,
}

/// The agreement per row of `results`.
pub fn summarize(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<Agreement> {
    let points = results.iter().filter_map(|(cell, record)| {
        let test: Vec<f64> = record.test.tasks.iter().filter_map(|t| t.auc).collect();
        let valid = record.best_valid_mean_auc.filter(|_| !test.is_empty())?;
        Some(Point {
            row: spec.row_label(cell),
            // Runs from before the key validated on random rows.
            rule: record.validation.map_or("random", |v| v.name()).to_string(),
            from_source: record.source_checkpoint.is_some(),
            valid,
            test: test.iter().sum::<f64>() / test.len() as f64,
        })
    });
    by_row(points)
}

/// The agreement of each row of `points`, rows in the order they first appear.
fn by_row(points: impl Iterator<Item = Point>) -> Vec<Agreement> {
    let mut rows: Vec<(String, Vec<Point>)> = Vec::new();
    for point in points {
        match rows.iter_mut().find(|(row, _)| *row == point.row) {
            Some((_, members)) => members.push(point),
            None => rows.push((point.row.clone(), vec![point])),
        }
    }
    let rho = |points: &[&Point]| {
        let valid: Vec<f64> = points.iter().map(|p| p.valid).collect();
        let test: Vec<f64> = points.iter().map(|p| p.test).collect();
        spearman(&valid, &test)
    };
    rows.into_iter()
        .map(|(row, members)| {
            let all: Vec<&Point> = members.iter().collect();
            let from_source: Vec<&Point> = members.iter().filter(|p| p.from_source).collect();
            let mut validation: Vec<String> = Vec::new();
            for p in &members {
                if !validation.contains(&p.rule) {
                    validation.push(p.rule.clone());
                }
            }
            Agreement {
                row,
                runs: all.len(),
                validation,
                spearman: rho(&all),
                source_runs: from_source.len(),
                source_spearman: rho(&from_source),
            }
        })
        .collect()
}

/// The markdown section of `agreements` (empty where there is none). The columns of the
/// runs from the source model appear where some row also has runs from scratch.
pub fn markdown(agreements: &[Agreement]) -> String {
    if agreements.is_empty() {
        return String::new();
    }
    let subset = agreements.iter().any(|a| a.source_runs != a.runs);
    let rho = |r: Option<f64>| r.map_or("—".into(), |r| format!("{r:.3}"));
    let mut md = String::from(
        "\n## Does validation predict the test?\n\nPer row, over its runs (every method and \
         seed): Spearman's rank correlation between the selected validation score and the \
         test AUC (mean over tasks). Near 0, selection on validation says little about the \
         test.",
    );
    let mut columns = vec!["row", "validation", "runs", "Spearman ρ"];
    if subset {
        md.push_str(
            " The last two columns leave out the runs trained from scratch, whose AUCs \
             usually lie far below the rest and lift ρ over all runs: among the runs from \
             the source model, often a few thousandths apart, is where selection has to be \
             right.",
        );
        columns.extend(["runs from the source model", "Spearman ρ"]);
    }
    let _ = writeln!(
        md,
        "\n\n| {} |\n|{}",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
    for a in agreements {
        let _ = write!(
            md,
            "| {} | {} | {} | {} |",
            a.row,
            a.validation.join(", "),
            a.runs,
            rho(a.spearman)
        );
        if subset {
            let _ = write!(md, " {} | {} |", a.source_runs, rho(a.source_spearman));
        }
        md.push('\n');
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

    fn point(row: &str, from_source: bool, valid: f64, test: f64) -> Point {
        Point {
            row: row.into(),
            rule: "latest".into(),
            from_source,
            valid,
            test,
        }
    }

    #[test]
    fn rows_give_rho_over_all_runs_and_over_the_runs_from_the_source_model() {
        // Row a: three runs from the source model whose validation order is the test's
        // reversed, and one from scratch last on both. All four: ranks (4, 3, 2, 1) against
        // (2, 3, 4, 1), d² = 4 + 0 + 4 + 0 = 8, ρ = 1 - 6 * 8 / (4 * 15) = 0.2. From the
        // source model: ρ = -1.
        let points = vec![
            point("a", true, 0.74, 0.70),
            point("b", true, 0.60, 0.61),
            point("a", true, 0.73, 0.71),
            point("a", true, 0.72, 0.72),
            point("a", false, 0.60, 0.60),
            point("b", true, 0.61, 0.60),
            point("b", true, 0.62, 0.62),
        ];
        let rows = by_row(points.into_iter());
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!((a.row.as_str(), a.runs, a.source_runs), ("a", 4, 3));
        assert!((a.spearman.unwrap() - 0.2).abs() < 1e-12, "{a:?}");
        assert_eq!(a.source_spearman, Some(-1.0));
        // Row b: every run from the source model; ranks (1, 2, 3) against (2, 1, 3):
        // d² = 2, ρ = 1 - 6 * 2 / (3 * 8) = 0.5, the same over both sets.
        let b = &rows[1];
        assert_eq!((b.runs, b.source_runs), (3, 3));
        assert!((b.spearman.unwrap() - 0.5).abs() < 1e-12, "{b:?}");
        assert_eq!(b.spearman, b.source_spearman);
        assert_eq!(b.validation, vec!["latest".to_string()]);
        // The extra columns appear because row a has a run from scratch.
        let md = markdown(&rows);
        assert!(
            md.contains("| a | latest | 4 | 0.200 | 3 | -1.000 |"),
            "{md}"
        );
        assert!(
            md.contains("| b | latest | 3 | 0.500 | 3 | 0.500 |"),
            "{md}"
        );
        assert!(!markdown(&rows[1..]).contains("from the source model"));
    }
}
