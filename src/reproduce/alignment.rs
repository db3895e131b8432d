//! The alignment table of a reproduction: per row and column, the runs' alignment
//! diagnostics (result.json's "alignment") at the start model and at the selected epoch,
//! so that "the critics did not align" reads apart from "they aligned and it did not help".

use std::fmt::Write;

use serde::Serialize;

use super::spec::{Cell, Spec};
use crate::train::RunRecord;

/// Means over a (row, column)'s runs of their alignment diagnostics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlignmentSummary {
    pub row: String,
    pub column: String,
    /// Runs with diagnostics.
    pub runs: usize,
    /// The domain probe's accuracy on the start model (epoch 0), where measured.
    pub start_probe_accuracy: Option<f64>,
    /// At the selected epoch: the probe's accuracy, mean and standard deviation.
    pub probe_accuracy: f64,
    pub probe_accuracy_std: f64,
    pub a_distance: f64,
    pub mmd: f64,
    /// The target model's feature drift from the frozen source model's.
    pub drift: Option<f64>,
    /// Per critic: its Wasserstein estimate on held-out rows, and on the target's training
    /// rows (empty for methods without critics).
    pub critic_wasserstein: Vec<f64>,
    pub critic_wasserstein_train_rows: Vec<f64>,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn std(values: &[f64]) -> f64 {
    let Some(m) = mean(values).filter(|_| values.len() > 1) else {
        return 0.0;
    };
    let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Per critic, the mean over runs of `key` (a list per run).
fn per_critic(selected: &[&serde_json::Value], key: &str) -> Vec<f64> {
    let lists: Vec<Vec<f64>> = selected
        .iter()
        .filter_map(|a| a[key].as_array())
        .map(|l| l.iter().filter_map(serde_json::Value::as_f64).collect())
        .collect();
    let critics = lists.iter().map(Vec::len).min().unwrap_or(0);
    (0..critics)
        .filter_map(|k| mean(&lists.iter().map(|l| l[k]).collect::<Vec<_>>()))
        .collect()
}

/// One summary per (row, column) whose runs recorded alignment, in grid order.
pub fn summarize(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<AlignmentSummary> {
    let mut groups: Vec<((String, String), Vec<&serde_json::Value>)> = Vec::new();
    for (cell, record) in results {
        let Some(alignment) = &record.alignment else {
            continue;
        };
        let key = (spec.row_label(cell), cell.labels[&spec.column].clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(alignment),
            None => groups.push((key, vec![alignment])),
        }
    }
    groups
        .into_iter()
        .filter_map(|((row, column), runs)| {
            let selected: Vec<&serde_json::Value> = runs
                .iter()
                .map(|a| &a["selected"])
                .filter(|s| s.is_object())
                .collect();
            let field = |of: &[&serde_json::Value], key: &str| -> Vec<f64> {
                of.iter().filter_map(|a| a[key].as_f64()).collect()
            };
            let starts: Vec<&serde_json::Value> = runs.iter().map(|a| &a["start"]).collect();
            let accuracy = field(&selected, "probe_accuracy");
            Some(AlignmentSummary {
                runs: selected.len(),
                start_probe_accuracy: mean(&field(&starts, "probe_accuracy")),
                probe_accuracy: mean(&accuracy)?,
                probe_accuracy_std: std(&accuracy),
                a_distance: mean(&field(&selected, "a_distance"))?,
                mmd: mean(&field(&selected, "mmd"))?,
                drift: mean(&field(&selected, "drift")),
                critic_wasserstein: per_critic(&selected, "critic_wasserstein"),
                critic_wasserstein_train_rows: per_critic(
                    &selected,
                    "critic_wasserstein_train_rows",
                ),
                row,
                column,
            })
        })
        .collect()
}

/// The summaries as a Markdown section (empty when no run recorded alignment).
pub fn markdown(summaries: &[AlignmentSummary]) -> String {
    if summaries.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Alignment at the selected epoch\n\nMeans over the runs; probe: a logistic \
         regression telling the domains apart on held-out rows' features (0.5 = chance), \
         at the start model and at the selected epoch; drift: mean distance between the \
         target and the frozen source model's features on the same rows; critic W: each \
         critic's Wasserstein estimate on held-out rows, and on the target's training rows \
         (a critic that fits the scarce training rows reads higher there).\n\n\
         | row | column | runs | probe start | probe selected | A-distance | MMD | drift | critic W held-out | critic W train rows |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let list = |values: &[f64]| {
        if values.is_empty() {
            "—".to_string()
        } else {
            values
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" / ")
        }
    };
    let optional = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    for s in summaries {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.3} ± {:.3} | {:.3} | {:.3} | {} | {} | {} |",
            s.row,
            s.column,
            s.runs,
            optional(s.start_probe_accuracy),
            s.probe_accuracy,
            s.probe_accuracy_std,
            s.a_distance,
            s.mmd,
            optional(s.drift),
            list(&s.critic_wasserstein),
            list(&s.critic_wasserstein_train_rows),
        );
    }
    md
}
