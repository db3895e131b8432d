//! Streaming evaluation: eval-mode probabilities batch by batch, then per task the exact
//! AUC (or the released code's chunk mean) and the log-loss.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::config::schema::{AucMode, SelectMetric};
use crate::data::Table;
use crate::data::batch::{Batches, LastBatch};
use crate::metrics;
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::Mode;

/// The released code's AUC chunk: 2,097,152 rows.
const RELEASED_CHUNK: usize = 2_097_152;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskMetrics {
    pub task: String,
    /// `None` where the rows hold one class only (a scarce conversion label can have no
    /// positive in a small validation set): the AUC is undefined there.
    pub auc: Option<f64>,
    pub log_loss: f64,
    /// AUC of the true probabilities (synthetic data only): the Bayes limit.
    pub oracle_auc: Option<f64>,
    /// The one probability the model gave every row, where it gave one value to all (a
    /// model collapsed by a learning rate too high: its AUC is 0.5 by construction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant_prediction: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub rows: usize,
    pub tasks: Vec<TaskMetrics>,
}

impl Evaluation {
    /// The selection score under `metric` (`train.select_metric`): the mean of the tasks'
    /// AUCs, one task's, or a weighted mean over the tasks where the AUC is defined. `set`
    /// names the rows in the error when no AUC it needs is defined.
    pub fn score(&self, metric: &SelectMetric, set: &str) -> Result<f64, TrainError> {
        let undefined = |what: String| {
            TrainError::Invalid(format!(
                "the {set} rows ({}) hold one class only in {what}, so train.select_metric has \
                 no AUC to select on; use more of them (data.valid_rows) or select on other tasks",
                self.rows
            ))
        };
        match metric {
            SelectMetric::Mean => self.mean_auc(set),
            SelectMetric::Task(name) => self
                .tasks
                .iter()
                .find(|t| &t.task == name)
                .and_then(|t| t.auc)
                .ok_or_else(|| undefined(format!("task `{name}`"))),
            SelectMetric::Weights(weights) => {
                let (sum, total) = self
                    .tasks
                    .iter()
                    .zip(weights)
                    .filter_map(|(t, &w)| t.auc.filter(|_| w > 0.0).map(|auc| (auc * w, w)))
                    .fold((0.0, 0.0), |(s, n), (a, w)| (s + a, n + w));
                if total == 0.0 {
                    return Err(undefined("every task with a positive weight".into()));
                }
                Ok(sum / total)
            }
        }
    }

    /// The mean AUC of the tasks where it is defined. `set` names the
    /// rows in the error when no task has both classes.
    pub fn mean_auc(&self, set: &str) -> Result<f64, TrainError> {
        let defined: Vec<f64> = self.tasks.iter().filter_map(|t| t.auc).collect();
        if defined.is_empty() {
            return Err(TrainError::Invalid(format!(
                "the {set} rows ({}) hold one class only in every task, so no AUC is defined; \
                 use more of them (data.valid_rows)",
                self.rows
            )));
        }
        Ok(defined.iter().sum::<f64>() / defined.len() as f64)
    }
}

/// `model`'s inference-mode outputs on `rows` of `table`, batch by batch in row order: the
/// one inference loop of evaluation, the alignment probe and `daa predict`.
pub fn inference_outputs<E: From<candle_core::Error>>(
    model: &Model,
    table: &Table,
    rows: &[u32],
    batch_size: usize,
    device: &Device,
    mut each: impl FnMut(Output) -> Result<(), E>,
) -> Result<(), E> {
    let mut batches = Batches::new(
        table,
        rows.to_vec(),
        batch_size,
        LastBatch::Keep,
        Some(model.offsets.clone()),
    );
    let mut batch = Default::default();
    while batches.next_into(&mut batch) {
        let t = batch.to_tensors(table.header.fields, table.header.numerical, device)?;
        each(model.forward(&t.categorical, &t.numerical, &mut Mode::eval())?)?;
    }
    Ok(())
}

/// Evaluates `model` on `rows` of `table` (all rows when `None`).
pub fn evaluate(
    model: &Model,
    table: &Table,
    rows: Option<&[u32]>,
    labels: &[String],
    batch_size: usize,
    auc: AucMode,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let order: Vec<u32> = rows.map_or_else(|| (0..table.rows() as u32).collect(), <[u32]>::to_vec);
    let tasks = table.header.labels;
    let mut scores = vec![Vec::with_capacity(order.len()); tasks];
    let mut truth = vec![Vec::with_capacity(order.len()); tasks];
    let mut oracle = vec![Vec::new(); tasks];
    let table_labels = table.labels();
    let probabilities = table.probabilities();
    inference_outputs(model, table, &order, batch_size, device, |out| {
        for row in out.probabilities.to_vec2::<f32>()? {
            for (task, value) in row.into_iter().enumerate() {
                scores[task].push(value);
            }
        }
        Ok::<(), TrainError>(())
    })?;
    for &row in &order {
        for task in 0..tasks {
            let i = row as usize * tasks + task;
            truth[task].push(table_labels[i]);
            if let Some(p) = probabilities {
                oracle[task].push(p[i]);
            }
        }
    }
    let tasks = (0..tasks)
        .map(|task| {
            let auc_value = match auc {
                AucMode::Exact => metrics::auc(&scores[task], &truth[task]),
                AucMode::ChunkMean => {
                    metrics::chunk_mean_auc(&scores[task], &truth[task], RELEASED_CHUNK)
                }
            };
            if let Err(e) = &auc_value {
                tracing::warn!(task = %labels[task], rows = order.len(), "{e}");
            }
            Ok(TaskMetrics {
                task: labels[task].clone(),
                auc: auc_value.ok(),
                log_loss: metrics::log_loss(&scores[task], &truth[task]),
                oracle_auc: (!oracle[task].is_empty())
                    .then(|| metrics::auc(&oracle[task], &truth[task]).ok())
                    .flatten(),
                constant_prediction: constant(&scores[task]).map(f64::from),
            })
        })
        .collect::<Result<_, TrainError>>()?;
    Ok(Evaluation {
        rows: order.len(),
        tasks,
    })
}

/// The one value of `scores`, where they hold one value only.
fn constant(scores: &[f32]) -> Option<f32> {
    let first = *scores.first()?;
    scores.iter().all(|&s| s == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(aucs: &[Option<f64>]) -> Evaluation {
        Evaluation {
            rows: 50,
            tasks: aucs
                .iter()
                .map(|&auc| TaskMetrics {
                    task: "t".into(),
                    auc,
                    log_loss: 0.1,
                    oracle_auc: None,
                    constant_prediction: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_selection_score_is_the_mean_one_task_or_a_weighted_mean() {
        let e = evaluation(&[Some(0.6), None, Some(0.9)]);
        let score = |m: SelectMetric| e.score(&m, "validation");
        assert!((score(SelectMetric::Mean).unwrap() - 0.75).abs() < 1e-12);
        // Tasks are all named "t" here: the first is the one found.
        assert!((score(SelectMetric::Task("t".into())).unwrap() - 0.6).abs() < 1e-12);
        // (1 * 0.6 + 3 * 0.9) / 4; the undefined task's weight is left out.
        let weighted = score(SelectMetric::Weights(vec![1.0, 5.0, 3.0])).unwrap();
        assert!((weighted - 3.3 / 4.0).abs() < 1e-12, "{weighted}");
        let error = score(SelectMetric::Weights(vec![0.0, 1.0, 0.0])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("every task with a positive weight")
        );
        let error = score(SelectMetric::Task("u".into())).unwrap_err();
        assert!(error.to_string().contains("task `u`"), "{error}");
    }

    #[test]
    fn selection_skips_undefined_aucs_and_refuses_when_none_is_defined() {
        let score = evaluation(&[Some(0.6), None, Some(0.7)]).mean_auc("validation");
        assert!((score.unwrap() - 0.65).abs() < 1e-12);
        let error = evaluation(&[None, None])
            .mean_auc("validation")
            .unwrap_err()
            .to_string();
        assert!(error.contains("validation rows (50)") && error.contains("data.valid_rows"));
    }
}
