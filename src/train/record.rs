//! A finished run's record (its result.json): what ran, from which build and data, what was
//! selected and what it scored on the test rows.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::evaluate::Evaluation;
use super::timing::Timing;
use crate::config::Resolved;
use crate::config::schema::SelectMetric;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub experiment: String,
    pub config_hash: String,
    pub method: String,
    pub seed: u64,
    pub device: String,
    /// The GPU, on a CUDA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::device::Gpu>,
    pub git_commit: Option<String>,
    pub versions: serde_json::Value,
    pub target_train_rows: usize,
    pub valid_rows: usize,
    /// The selected epoch, counted from 1.
    pub best_epoch: Option<usize>,
    /// The selected epoch's validation score: the mean AUC, or what `select_metric` says.
    pub best_valid_mean_auc: Option<f64>,
    /// `train.select_metric` where it is not the mean AUC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_metric: Option<SelectMetric>,
    /// How the validation rows were chosen (`data.valid` in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::config::schema::Validation>,
    pub epochs_run: usize,
    pub source_checkpoint: Option<PathBuf>,
    pub test: Evaluation,
    pub wall_seconds: f64,
    /// `wall_seconds` by phase, adding up to it (see [`Timing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The alignment diagnostics (metrics.jsonl's "alignment") of the start model (epoch
    /// 0, `start`) and of the selected epoch (`selected`), where the run measured them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<serde_json::Value>,
}

/// The experiment's name: its file's stem.
pub(super) fn experiment_name(resolved: &Resolved) -> String {
    resolved
        .path
        .file_stem()
        .map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned())
}

/// The git commit the binary was built from (`-dirty` when tracked files differed).
pub(super) fn git_commit() -> Option<String> {
    Some(env!("GIT_COMMIT_OF_DAA").to_string()).filter(|c| !c.is_empty())
}
