//! `curves.svg` of a run: per epoch of target training, the task loss and the objective,
//! what the method reports (each critic's loss and Wasserstein estimate, a domain
//! classifier's loss), the alignment diagnostics (probe accuracy, drift, MMD, the critics'
//! estimates on the probe rows), and the validation AUC per task, with the selected epoch
//! marked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::TrainError;
use crate::chart::{ChartError, Line, Panel, panels};

/// Draws `dir/curves.svg` from the run's `metrics.jsonl` (the selected epoch from
/// `result.json`, else from `progress.json` of a run still going; the title's method and
/// seed from `run`, else from `result.json`); returns its path.
pub fn write(dir: &Path, run: Option<(&str, u64)>) -> Result<PathBuf, TrainError> {
    let records = super::outputs::read_lines(&dir.join("metrics.jsonl"))?;
    let selected = ["result.json", "progress.json"].iter().find_map(|name| {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        value["best_epoch"].as_u64().map(|e| e as usize)
    });
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut title = format!("{} {}", name(dir.parent()), name(Some(dir)));
    let from_result = || {
        let text = std::fs::read_to_string(dir.join("result.json")).ok()?;
        let result = serde_json::from_str::<Value>(&text).ok()?;
        let method = result["method"].as_str().unwrap_or("?").to_string();
        Some((method, result["seed"].as_u64()?))
    };
    if let Some((method, seed)) = run.map(|(m, s)| (m.to_string(), s)).or_else(from_result) {
        title = format!("{title}: {method}, seed {seed}");
    }
    let path = dir.join("curves.svg");
    crate::whole_file::write(&path, svg(&records, selected, &title)?.as_bytes())?;
    Ok(path)
}

/// The chart of a run's per-epoch `records` (metrics.jsonl lines).
pub fn svg(records: &[Value], selected: Option<usize>, title: &str) -> Result<String, ChartError> {
    // The last record of each epoch (a resumed run rewrites the ones it repeats).
    let epochs: BTreeMap<u64, &Value> = records
        .iter()
        .filter_map(|r| r["epoch"].as_u64().map(|e| (e, r)))
        .collect();
    let mut series: BTreeMap<(String, String), Line> = BTreeMap::new();
    let mut add = |panel: &str, line: String, x: u64, y: Option<f64>| {
        if let Some(y) = y.filter(|y| y.is_finite()) {
            let entry = series
                .entry((panel.to_string(), line.clone()))
                .or_insert_with(|| Line {
                    name: line,
                    ..Line::default()
                });
            entry.points.push((x as f64, y));
        }
    };
    let mut order: Vec<String> = vec!["losses".into()];
    for (&epoch, record) in &epochs {
        if let Some(train) = record["train"].as_object() {
            for (key, value) in train {
                let (panel, line) = match key.as_str() {
                    "steps" => continue,
                    "task_loss" => ("losses".to_string(), "task loss".to_string()),
                    "loss" => ("losses".to_string(), "objective".to_string()),
                    other => (other.replace('_', " "), String::new()),
                };
                if !order.contains(&panel) {
                    order.push(panel.clone());
                }
                match value {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            add(&panel, format!("critic {}", i + 1), epoch, item.as_f64());
                        }
                    }
                    scalar => {
                        let line = if line.is_empty() { panel.clone() } else { line };
                        add(&panel, line, epoch, scalar.as_f64());
                    }
                }
            }
        }
        let alignment = &record["alignment"];
        for (key, line) in [
            ("probe_accuracy", "probe accuracy"),
            ("drift", "drift"),
            ("mmd", "MMD"),
        ] {
            add("alignment", line.into(), epoch, alignment[key].as_f64());
        }
        for (key, set) in [
            ("critic_wasserstein", "held-out"),
            ("critic_wasserstein_train_rows", "train rows"),
        ] {
            for (i, w) in alignment[key].as_array().into_iter().flatten().enumerate() {
                let line = format!("critic {} {set}", i + 1);
                add("critic estimates on the probe", line, epoch, w.as_f64());
            }
        }
        for task in record["valid"]["tasks"].as_array().into_iter().flatten() {
            let name = task["task"].as_str().unwrap_or("task").to_string();
            add("validation AUC", name, epoch, task["auc"].as_f64());
        }
    }
    order.extend(
        [
            "alignment",
            "critic estimates on the probe",
            "validation AUC",
        ]
        .map(String::from),
    );
    let marker = selected.map(|e| (e as f64, format!("selected: epoch {e}")));
    let charts: Vec<Panel> = order
        .iter()
        .map(|panel| Panel {
            title: panel.clone(),
            x_label: "epoch".into(),
            y_label: panel.clone(),
            lines: series
                .iter()
                .filter(|((of, _), _)| of == panel)
                .map(|(_, line)| line.clone())
                .collect(),
            marker: marker.clone(),
            ..Panel::default()
        })
        .filter(|p| !p.lines.is_empty())
        .collect();
    panels(title, &charts, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn one_panel_per_reported_quantity_and_one_line_per_critic() {
        let records = [
            record(
                r#"{"epoch":0,"valid":{"tasks":[{"task":"click","auc":0.70},{"task":"conversion","auc":null}]}}"#,
            ),
            record(
                r#"{"epoch":1,"train":{"steps":20,"task_loss":0.3,"loss":0.1,"critic_loss":[0.5,0.4],"wasserstein":[1.0,2.0]},"valid":{"tasks":[{"task":"click","auc":0.72},{"task":"conversion","auc":0.6}]}}"#,
            ),
            record(
                r#"{"epoch":2,"train":{"steps":20,"task_loss":0.2,"loss":0.0,"critic_loss":[0.3,0.2],"wasserstein":[1.5,2.5]},"valid":{"tasks":[{"task":"click","auc":0.71},{"task":"conversion","auc":0.65}]},"alignment":{"probe_accuracy":0.6,"drift":0.2,"mmd":0.1,"critic_wasserstein":[0.3,0.1],"critic_wasserstein_train_rows":[0.4,0.2]}}"#,
            ),
        ];
        let svg = svg(&records, Some(1), "mmoe_nl abc").unwrap();
        for text in [
            "losses",
            "critic loss",
            "wasserstein",
            "validation AUC",
            "critic 2",
            "task loss",
            "objective",
            "selected: epoch 1",
            "alignment",
            "probe accuracy",
            "critic 2 held-out",
            "critic 1 train rows",
        ] {
            assert!(svg.contains(text), "`{text}` missing");
        }
        // Lines: losses 2, critic loss 2, wasserstein 2, AUC 2 (each with its legend
        // swatch), plus the dashed markers.
        let lines = svg.matches("<polyline").count();
        assert!(lines >= 8, "{lines}");
        assert!(!svg.contains("NaN"));
    }
}
