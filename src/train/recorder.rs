//! What an epoch of training measured, as one typed record, and the writers that take it
//! ([`Recorder`]): metrics.jsonl, the console (through the progress bar), TensorBoard event
//! files. Source pretraining and target training feed the same record; a new logger is one
//! more writer.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::Serialize;

use super::TrainError;
use super::epoch::EpochStats;
use super::evaluate::Evaluation;
use super::outputs::append_line;
use super::tensorboard::EventFile;

/// One epoch of a phase: what it trained, how it validated, what the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// Counted from 1; 0 is the start model, validated before any training.
    pub epoch: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<EpochStats>,
    pub valid: Evaluation,
    /// The selection score, written under `score_key`.
    #[serde(skip)]
    pub score: f64,
    /// `valid_mean_auc` for the mean of the tasks' AUCs, `valid_score` for another metric.
    #[serde(skip)]
    pub score_key: &'static str,
    /// The alignment probe's measurements, where the run probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<serde_json::Value>,
    /// Wall seconds of the epoch's training and validation (not in metrics.jsonl: identical
    /// runs write identical lines).
    #[serde(skip)]
    pub seconds: f64,
}

impl EpochRecord {
    /// The record as its metrics.jsonl line.
    pub fn line(&self) -> serde_json::Value {
        let mut line = serde_json::to_value(self).expect("epoch records serialize");
        line[self.score_key] = self.score.into();
        line
    }

    /// Every number of the record by a TensorBoard tag (`train/loss`, `valid/click/auc`,
    /// `alignment/domain_probe/accuracy`, `time/epoch_seconds`, ...).
    pub fn scalars(&self) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        let line = self.line();
        for (section, value) in [("train", &line["train"]), ("alignment", &line["alignment"])] {
            numbers(section, value, &mut out);
        }
        for task in &self.valid.tasks {
            if let Some(auc) = task.auc {
                out.push((format!("valid/{}/auc", task.task), auc as f32));
            }
            out.push((
                format!("valid/{}/log_loss", task.task),
                task.log_loss as f32,
            ));
        }
        out.push((format!("valid/{}", self.score_key), self.score as f32));
        out.push(("time/epoch_seconds".into(), self.seconds as f32));
        out
    }
}

/// The numbers of `value` (objects descended), tagged by their path under `prefix`.
fn numbers(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, f32)>) {
    match value {
        serde_json::Value::Number(n) => out.extend(n.as_f64().map(|v| (prefix.into(), v as f32))),
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                numbers(&format!("{prefix}/{key}"), field, out);
            }
        }
        _ => {}
    }
}

/// A writer of epoch records.
pub trait Recorder {
    fn epoch(&mut self, phase: &str, record: &EpochRecord) -> Result<(), TrainError>;
}

/// metrics.jsonl: one line per epoch, appended and synced.
pub struct MetricsLog {
    pub path: PathBuf,
}

impl Recorder for MetricsLog {
    fn epoch(&mut self, _: &str, record: &EpochRecord) -> Result<(), TrainError> {
        append_line(&self.path, &record.line())
    }
}

/// The log: one line per epoch, printed above the progress bar.
pub struct Console {
    pub bar: ProgressBar,
}

impl Recorder for Console {
    fn epoch(&mut self, phase: &str, record: &EpochRecord) -> Result<(), TrainError> {
        let train = record.train.as_ref();
        self.bar.suspend(|| match train {
            Some(stats) => tracing::info!(
                epoch = record.epoch,
                task_loss = stats.task_loss,
                loss = stats.loss,
                valid_score = record.score,
                "{phase}"
            ),
            None => tracing::info!(
                epoch = record.epoch,
                valid_score = record.score,
                "{phase}: start model"
            ),
        });
        Ok(())
    }
}

/// TensorBoard event files (`output.tensorboard`), tagged `<phase>/<scalar>` by epoch.
pub struct TensorBoard {
    events: EventFile,
}

impl TensorBoard {
    /// A new event file in `dir`.
    pub fn create(dir: &Path) -> Result<Self, TrainError> {
        Ok(TensorBoard {
            events: EventFile::create(dir, &std::process::id().to_string())?,
        })
    }
}

impl Recorder for TensorBoard {
    fn epoch(&mut self, phase: &str, record: &EpochRecord) -> Result<(), TrainError> {
        let tagged: Vec<(String, f32)> = record
            .scalars()
            .into_iter()
            .map(|(tag, value)| (format!("{phase}/{tag}"), value))
            .collect();
        self.events.scalars(record.epoch, &tagged)
    }
}

/// The writers of a phase, each given every record in turn.
pub struct Recorders(pub Vec<Box<dyn Recorder>>);

impl Recorders {
    /// metrics.jsonl of `dir`, the console over `bar`, and TensorBoard where `tensorboard`.
    pub fn standard(dir: &Path, bar: &ProgressBar, tensorboard: bool) -> Result<Self, TrainError> {
        let mut writers: Vec<Box<dyn Recorder>> = vec![
            Box::new(MetricsLog {
                path: dir.join("metrics.jsonl"),
            }),
            Box::new(Console { bar: bar.clone() }),
        ];
        if tensorboard {
            writers.push(Box::new(TensorBoard::create(dir)?));
        }
        Ok(Recorders(writers))
    }

    pub fn epoch(&mut self, phase: &str, record: &EpochRecord) -> Result<(), TrainError> {
        self.0.iter_mut().try_for_each(|w| w.epoch(phase, record))
    }
}
