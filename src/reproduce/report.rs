//! Aggregating a reproduction: mean ± std over seeds per cell, relative gains, the paper's
//! numbers beside ours; written as Markdown, CSV, JSON and an SVG plot.

use std::fmt::Write as _;

use serde::Serialize;

use super::significance::{Paired, holm, paired};
use super::spec::Family;
use super::spec::{Cell, Spec};
use crate::train::RunRecord;

#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub row: String,
    pub column: String,
    pub task: String,
    pub seeds: usize,
    pub mean_auc: f64,
    pub std_auc: f64,
    pub mean_log_loss: f64,
    pub oracle_auc: Option<f64>,
    /// Seeds whose selection kept the start model (best epoch 0).
    pub kept_start: usize,
    /// Seeds whose selected model predicts one constant value for this task.
    pub constant: usize,
}

/// The improved method against one baseline in one row and task, paired by seed.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub row: String,
    pub task: String,
    pub method: String,
    pub baseline: String,
    #[serde(flatten)]
    pub paired: Paired,
    /// The p-value after Holm's correction over the comparison's family (`[report]
    /// family`), `None` where there is no p-value.
    pub p_adjusted: Option<f64>,
    /// The smallest difference these seeds resolve: the 95% interval's half-width.
    pub detectable: Option<f64>,
    /// The family the correction ran over: `grid`, the row's label or the method.
    pub family: String,
}

impl Comparison {
    /// Whether the difference is significant at 5% after the family's correction.
    pub fn significant(&self) -> bool {
        self.p_adjusted.is_some_and(|p| p < 0.05) && self.paired.significant()
    }
}

/// Each comparison's p-value adjusted by Holm's method within its family.
fn adjust(comparisons: &mut [Comparison]) {
    let families = distinct(comparisons.iter().map(|c| c.family.clone()));
    for family in families {
        let members: Vec<usize> = (0..comparisons.len())
            .filter(|&i| comparisons[i].family == family)
            .collect();
        let p: Vec<Option<f64>> = members
            .iter()
            .map(|&i| comparisons[i].paired.p_value)
            .collect();
        for (&i, adjusted) in members.iter().zip(holm(&p)) {
            comparisons[i].p_adjusted = adjusted;
        }
    }
}

/// The (method, baseline) column pairs compared: `improve` against each baseline, then
/// every other column against `against`.
fn pairs(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = spec
        .improve
        .iter()
        .flat_map(|i| spec.baselines.iter().map(move |b| (i.clone(), b.clone())))
        .collect();
    if let Some(against) = &spec.against {
        let columns = distinct(results.iter().map(|(c, _)| c.labels[&spec.column].clone()));
        for column in columns.into_iter().filter(|c| c != against) {
            let pair = (column, against.clone());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// Paired comparisons of each compared pair of columns, per row and task.
pub fn comparisons(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<Comparison> {
    // (row, column, seed) -> record
    let key = |cell: &Cell| {
        (
            spec.row_label(cell),
            cell.labels[&spec.column].clone(),
            cell.seed,
        )
    };
    let mut out = Vec::new();
    let rows = distinct(results.iter().map(|(c, _)| spec.row_label(c)));
    let pairs = pairs(spec, results);
    for row in &rows {
        for (method, base) in &pairs {
            let Some((_, first)) = results.iter().find(|(c, _)| key(c).0 == *row) else {
                continue;
            };
            for (t, task) in first.test.tasks.iter().enumerate() {
                let differences: Vec<f64> = results
                    .iter()
                    .filter(|(c, _)| key(c).0 == *row && &key(c).1 == method)
                    .filter_map(|(c, r)| {
                        let other = results.iter().find(|(o, _)| {
                            let (orow, ocol, oseed) = key(o);
                            orow == *row && &ocol == base && oseed == c.seed
                        })?;
                        Some(r.test.tasks[t].auc? - other.1.test.tasks[t].auc?)
                    })
                    .collect();
                if differences.is_empty() {
                    continue;
                }
                let paired = paired(&differences);
                out.push(Comparison {
                    row: row.clone(),
                    task: task.task.clone(),
                    method: method.clone(),
                    baseline: base.clone(),
                    detectable: paired.ci95.map(|[low, high]| (high - low) / 2.0),
                    p_adjusted: None,
                    family: match spec.report.family {
                        Family::Grid => "grid".into(),
                        Family::Row => row.clone(),
                        Family::Method => method.clone(),
                    },
                    paired,
                });
            }
        }
    }
    adjust(&mut out);
    out
}

/// The mean and the sample standard deviation (0 for one value).
fn mean_std(values: &[f64]) -> (f64, f64) {
    use statrs::statistics::Statistics;
    let std = if values.len() > 1 {
        values.std_dev()
    } else {
        0.0
    };
    (values.mean(), std)
}

/// One aggregate per (row, column, task), in grid order.
pub fn aggregate(spec: &Spec, results: &[(Cell, RunRecord)]) -> Vec<Aggregate> {
    let mut groups: Vec<((String, String), Vec<&RunRecord>)> = Vec::new();
    for (cell, record) in results {
        let key = (spec.row_label(cell), cell.labels[&spec.column].clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, records)) => records.push(record),
            None => groups.push((key, vec![record])),
        }
    }
    let mut out = Vec::new();
    for ((row, column), records) in groups {
        for (t, task) in records[0].test.tasks.iter().enumerate() {
            let aucs: Vec<f64> = records.iter().filter_map(|r| r.test.tasks[t].auc).collect();
            if aucs.is_empty() {
                continue;
            }
            let losses: Vec<f64> = records.iter().map(|r| r.test.tasks[t].log_loss).collect();
            let (mean_auc, std_auc) = mean_std(&aucs);
            out.push(Aggregate {
                row: row.clone(),
                column: column.clone(),
                task: task.task.clone(),
                seeds: aucs.len(),
                mean_auc,
                std_auc,
                mean_log_loss: mean_std(&losses).0,
                oracle_auc: task.oracle_auc,
                kept_start: records.iter().filter(|r| r.best_epoch == Some(0)).count(),
                constant: records
                    .iter()
                    .filter(|r| r.test.tasks[t].constant_prediction.is_some())
                    .count(),
            });
        }
    }
    out
}

fn find<'a>(
    aggregates: &'a [Aggregate],
    row: &str,
    column: &str,
    task: &str,
) -> Option<&'a Aggregate> {
    aggregates
        .iter()
        .find(|a| a.row == row && a.column == column && a.task == task)
}

pub(super) fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Relative AUC gains of `spec.improve` over each baseline: (row, task, baseline, gain).
pub fn gains(spec: &Spec, aggregates: &[Aggregate]) -> Vec<(String, String, String, f64)> {
    let Some(improve) = &spec.improve else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in aggregates.iter().filter(|a| &a.column == improve) {
        for base in &spec.baselines {
            if let Some(b) = find(aggregates, &a.row, base, &a.task) {
                out.push((
                    a.row.clone(),
                    a.task.clone(),
                    base.clone(),
                    (a.mean_auc - b.mean_auc) / b.mean_auc,
                ));
            }
        }
    }
    out
}

/// A column as (swept parameter, value): `w_e=0.5` is ("w_e", Some("0.5")); a column without
/// `=` is its own parameter with no value.
pub(super) fn swept(column: &str) -> (&str, Option<&str>) {
    column
        .split_once('=')
        .map_or((column, None), |(p, v)| (p, Some(v)))
}

/// The columns in reading order: the baselines as listed, the other columns, then the
/// improved method; swept values of one parameter (`name=value`) in numeric order.
pub(super) fn ordered_columns(spec: &Spec, aggregates: &[Aggregate]) -> Vec<String> {
    let columns = distinct(aggregates.iter().map(|a| a.column.clone()));
    let group = |c: &str| swept(c).0.to_string();
    let groups = distinct(columns.iter().map(|c| group(c)));
    let key = |c: &String| {
        let rank = match spec.baselines.iter().position(|b| b == c) {
            Some(i) => (0, i),
            None if spec.improve.as_ref() == Some(c) => (2, 0),
            None => (1, 0),
        };
        let value = swept(c)
            .1
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        (rank, groups.iter().position(|g| *g == group(c)), value)
    };
    let mut keyed: Vec<_> = columns.into_iter().map(|c| (key(&c), c)).collect();
    keyed.sort_by(|(a, _), (b, _)| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)));
    keyed.into_iter().map(|(_, c)| c).collect()
}

pub fn markdown(
    spec: &Spec,
    aggregates: &[Aggregate],
    comparisons: &[Comparison],
    profile: &str,
    synthetic: &[String],
) -> String {
    let rows = distinct(aggregates.iter().map(|a| a.row.clone()));
    let data = Data::of(&rows, synthetic);
    let tasks = distinct(aggregates.iter().map(|a| a.task.clone()));
    let seeds = aggregates.iter().map(|a| a.seeds).max().unwrap_or(0);
    let gains = gains(spec, aggregates);
    let mut md = format!("# {}\n\n{}\n\n", spec.title, spec.description.trim());
    md.push_str(&legend(profile, seeds, &data));
    md.push_str(&main_table(
        spec,
        aggregates,
        comparisons,
        &gains,
        (&rows, &tasks),
        &data,
    ));
    md.push_str(&claims(spec, &gains));
    md.push_str(&reference_table(spec, &tasks));
    md.push_str(&paired_table(comparisons));
    md.push_str(&summary(spec, &gains, comparisons, &data));
    md
}

/// How to read the main table, and which of its rows are synthetic.
fn legend(profile: &str, seeds: usize, data: &Data) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Profile `{profile}`, {seeds} seed(s) per cell; test AUC, mean ± std over seeds; \
         `[k/n start]`: k of n seeds kept the start model (best epoch 0); `[k/n constant]`: \
         k of n seeds' selected models predict one value for every row (collapsed: AUC 0.5 \
         by construction). Relative gains marked `*` have a paired 95% confidence interval that excludes 0 (table below)."
    );
    match data {
        Data::Synthetic => md.push_str("**The data is synthetic** (the embedded default, not AliExpress): the oracle column is the Bayes limit of each target, and no number here is comparable to the paper's.\n"),
        Data::Mixed(some) => {
            let _ = writeln!(
                md,
                "**Rows {} are synthetic** (the embedded default, not AliExpress): the oracle column is the Bayes limit of each of their targets, and none of their numbers is comparable to the paper's; the other rows are real data.",
                some.join(", ")
            );
        }
        Data::Real => {}
    }
    md.push('\n');
    md
}

/// The main table: per row, each column's test AUC per task, the improving method's
/// relative gains (marked where significant), the oracle on synthetic rows, and the
/// published values where the spec has them. `(rows, tasks)` in table order.
fn main_table(
    spec: &Spec,
    aggregates: &[Aggregate],
    comparisons: &[Comparison],
    gains: &[(String, String, String, f64)],
    (rows, tasks): (&[String], &[String]),
    data: &Data,
) -> String {
    let mut md = String::new();
    let columns = ordered_columns(spec, aggregates);
    let mut header = vec!["row".to_string()];
    for c in &columns {
        for t in tasks {
            header.push(format!("{c} {t}"));
        }
    }
    if let Some(improve) = &spec.improve {
        for b in &spec.baselines {
            for t in tasks {
                header.push(format!("{improve} vs {b} {t}"));
            }
        }
    }
    if *data != Data::Real {
        for t in tasks {
            header.push(format!("oracle {t}"));
        }
    }
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}|", vec!["---"; header.len()].join("|"));
    for row in rows {
        let mut cells = vec![row.clone()];
        for c in &columns {
            for t in tasks {
                cells.push(find(aggregates, row, c, t).map_or("n/a".into(), |a| {
                    let start = if a.kept_start > 0 {
                        format!(" [{}/{} start]", a.kept_start, a.seeds)
                    } else {
                        String::new()
                    };
                    let constant = if a.constant > 0 {
                        format!(" **[{}/{} constant]**", a.constant, a.seeds)
                    } else {
                        String::new()
                    };
                    format!("{:.4} ± {:.4}{start}{constant}", a.mean_auc, a.std_auc)
                }));
            }
        }
        if spec.improve.is_some() {
            for b in &spec.baselines {
                for t in tasks {
                    let g = gains
                        .iter()
                        .find(|(r, task, base, _)| r == row && task == t && base == b);
                    let mark = comparisons
                        .iter()
                        .find(|c| {
                            &c.row == row
                                && &c.task == t
                                && &c.baseline == b
                                && spec.improve.as_ref() == Some(&c.method)
                        })
                        .filter(|c| c.significant())
                        .map_or("", |_| "*");
                    cells.push(g.map_or("".into(), |(_, _, _, g)| {
                        format!("{:+.2}%{mark}", 100.0 * g)
                    }));
                }
            }
        }
        if *data != Data::Real {
            for t in tasks {
                let oracle = columns
                    .iter()
                    .find_map(|c| find(aggregates, row, c, t).and_then(|a| a.oracle_auc));
                cells.push(oracle.map_or("".into(), |o| format!("{o:.4}")));
            }
        }
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        if let Some(published) = spec.published.get(row) {
            let mut line = vec![format!("{row} (published)")];
            for c in &columns {
                for (i, _) in tasks.iter().enumerate() {
                    let v = published.get(c).and_then(|v| v.get(i).copied().flatten());
                    line.push(v.map_or("n/a".into(), |v| format!("{v:.4}")));
                }
            }
            let _ = writeln!(md, "| {} |", line.join(" | "));
        }
    }
    if !spec
        .published
        .values()
        .any(|p| p.values().any(|v| v.iter().any(Option::is_some)))
    {
        md.push_str("\nPublished per-cell AUCs: n/a (the paper's full tables are not public here; none is invented).\n");
    }
    md
}

/// The paper's claims beside what this run measured.
fn claims(spec: &Spec, gains: &[(String, String, String, f64)]) -> String {
    let mut md = String::new();
    for claim in &spec.claims {
        let ours: Vec<f64> = gains
            .iter()
            .filter(|(r, _, b, _)| r.starts_with(&claim.row) && *b == claim.over)
            .map(|g| g.3)
            .collect();
        let shown = if ours.is_empty() {
            "not measured in this run".to_string()
        } else {
            let (mean, _) = mean_std(&ours);
            let (lo, hi) = ours
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), g| {
                    (l.min(*g), h.max(*g))
                });
            format!(
                "{:+.2}% on average over {} row×task cells (range {:+.2}% to {:+.2}%)",
                100.0 * mean,
                ours.len(),
                100.0 * lo,
                100.0 * hi
            )
        };
        let _ = writeln!(
            md,
            "\nPaper: {} over {} for {}: {:+.2}% ({}). Here: {}.",
            claim.method,
            claim.over,
            claim.row,
            100.0 * claim.relative_gain,
            claim.note,
            shown
        );
    }
    md
}

/// The spec's reference values (another implementation's numbers), where it has them.
fn reference_table(spec: &Spec, tasks: &[String]) -> String {
    let mut md = String::new();
    if let Some(reference) = &spec.reference {
        let _ = writeln!(md, "\nReference ({}):\n", reference.note);
        let _ = writeln!(md, "| row | {} |", tasks.join(" | "));
        let _ = writeln!(md, "|---|{}|", vec!["---"; tasks.len()].join("|"));
        for (row, values) in &reference.rows {
            let v: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
            let _ = writeln!(md, "| {row} | {} |", v.join(" | "));
        }
    }
    md
}

/// The paired comparisons as a table: n, mean difference, 95% CI, p.
fn paired_table(comparisons: &[Comparison]) -> String {
    if comparisons.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Paired differences\n\nTest AUC of the method minus the baseline's, paired by seed (same split, same source model): mean, 95% Student-t interval, two-sided p, p after Holm's correction over the family (`[report] family`), and the smallest difference these seeds resolve (the interval's half-width); `*` where the adjusted p is below 0.05.\n\n| row | task | comparison | seeds | Δ mean | 95% CI | p | Holm p | family | detectable |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in comparisons {
        let p = &c.paired;
        let untested = if p.no_variance { "no variance" } else { "n/a" };
        let ci = p
            .ci95
            .map_or(untested.into(), |[l, h]| format!("[{l:+.4}, {h:+.4}]"));
        let shown = |v: Option<f64>| v.map_or(untested.to_string(), |v| format!("{v:.2e}"));
        let (pv, adjusted) = (shown(p.p_value), shown(c.p_adjusted));
        let detectable = c.detectable.map_or(untested.into(), |d| format!("±{d:.4}"));
        let _ = writeln!(
            md,
            "| {} | {} | {} − {} | {} | {:+.4}{} | {ci} | {pv} | {adjusted} | {} | {detectable} |",
            c.row,
            c.task,
            c.method,
            c.baseline,
            p.seeds,
            p.delta_mean,
            if c.significant() { "*" } else { "" },
            c.family,
        );
    }
    md
}

/// The closing reading: does the improved method beat each baseline, by how much.
fn summary(
    spec: &Spec,
    gains: &[(String, String, String, f64)],
    comparisons: &[Comparison],
    data: &Data,
) -> String {
    if spec.improve.is_none() && spec.against.is_none() {
        return String::new();
    }
    let mut text = String::from("\n## Reading\n\n");
    let significant = |paired: &[&Comparison]| {
        let count = |sign: f64| {
            paired
                .iter()
                .filter(|c| c.significant() && c.paired.delta_mean * sign > 0.0)
                .count()
        };
        (count(1.0), count(-1.0))
    };
    for (improve, base) in spec
        .improve
        .iter()
        .flat_map(|i| spec.baselines.iter().map(move |b| (i, b)))
    {
        let g: Vec<f64> = gains.iter().filter(|x| &x.2 == base).map(|x| x.3).collect();
        if g.is_empty() {
            continue;
        }
        let wins = g.iter().filter(|v| **v > 0.0).count();
        let (mean, std) = mean_std(&g);
        let paired: Vec<&Comparison> = comparisons
            .iter()
            .filter(|c| &c.baseline == base && &c.method == improve)
            .collect();
        let (better, worse) = significant(&paired);
        let _ = writeln!(
            text,
            "- {improve} vs {base}: higher AUC in {wins} of {} row×task cells; mean relative gain {:+.2}% (std {:.2}%); significantly higher in {better}, significantly lower in {worse} of {} paired comparisons.",
            g.len(),
            100.0 * mean,
            100.0 * std,
            paired.len()
        );
    }
    if let Some(against) = &spec.against {
        let methods = distinct(
            comparisons
                .iter()
                .filter(|c| &c.baseline == against)
                .map(|c| c.method.clone()),
        );
        for method in methods {
            let paired: Vec<&Comparison> = comparisons
                .iter()
                .filter(|c| &c.baseline == against && c.method == method)
                .collect();
            let deltas: Vec<f64> = paired.iter().map(|c| c.paired.delta_mean).collect();
            let (mean, _) = mean_std(&deltas);
            let higher = deltas.iter().filter(|d| **d > 0.0).count();
            let (better, worse) = significant(&paired);
            let _ = writeln!(
                text,
                "- {method} vs {against}: higher mean AUC in {higher} of {} row×task cells; mean paired difference {mean:+.4}; significantly higher in {better}, significantly lower in {worse}.",
                paired.len()
            );
        }
    }
    match data {
        Data::Synthetic => text.push_str(
            "- These numbers come from the synthetic default data set, not from AliExpress.\n",
        ),
        Data::Mixed(some) => {
            let _ = writeln!(
                text,
                "- Rows {} come from the synthetic default data set, not from AliExpress; the counts above pool them with the real rows.",
                some.join(", ")
            );
        }
        Data::Real => {}
    }
    text
}

/// Whether a table's rows are synthetic (the text says so and shows the oracle AUCs).
#[derive(Debug, PartialEq, Eq)]
enum Data {
    Synthetic,
    /// These rows are synthetic, the others real.
    Mixed(Vec<String>),
    Real,
}

impl Data {
    fn of(rows: &[String], synthetic: &[String]) -> Data {
        let some: Vec<String> = rows
            .iter()
            .filter(|r| synthetic.contains(r))
            .cloned()
            .collect();
        if some.is_empty() {
            Data::Real
        } else if some.len() == rows.len() {
            Data::Synthetic
        } else {
            Data::Mixed(some)
        }
    }
}

pub fn csv(aggregates: &[Aggregate]) -> String {
    let mut out = String::from(
        "row,column,task,seeds,mean_auc,std_auc,mean_log_loss,oracle_auc,constant_seeds\n",
    );
    for a in aggregates {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.6},{:.6},{:.6},{},{}",
            a.row,
            a.column,
            a.task,
            a.seeds,
            a.mean_auc,
            a.std_auc,
            a.mean_log_loss,
            a.oracle_auc.map_or(String::new(), |o| format!("{o:.6}")),
            a.constant
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Data;

    #[test]
    fn a_table_is_synthetic_real_or_mixed_by_its_rows() {
        let rows: Vec<String> = ["mmoe/nl", "mmoe/ml_young"].map(String::from).into();
        assert_eq!(Data::of(&rows, &[]), Data::Real);
        assert_eq!(Data::of(&rows, &rows), Data::Synthetic);
        assert_eq!(
            Data::of(&rows, &["mmoe/nl".into(), "ple/nl".into()]),
            Data::Mixed(vec!["mmoe/nl".into()])
        );
    }
}
