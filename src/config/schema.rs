use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{Invalid, Validate, ensure};
use crate::device::Device;

/// A fully resolved experiment: every key set by the registry, the `extends` chain, the
/// file, the environment or `--set`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Experiment {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub adapt: AdaptConfig,
    pub pretrain: PretrainConfig,
    pub optim: OptimConfig,
    pub train: TrainConfig,
    pub output: OutputConfig,
}

/// A registry entry after resolution: its name, its kind (which selects the Rust type of
/// its parameters) and the parameters, typed and re-serialized into canonical form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Component {
    #[serde(rename = "use")]
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing)]
    pub description: String,
    #[serde(default)]
    pub params: serde_json::Value,
    /// The version of the code that makes this kind's output (see
    /// [`Kind::version`](super::registry::Kind)), set when the config resolves.
    #[serde(skip)]
    pub version: u32,
}

impl Component {
    /// The parameters as the type that this component's kind declares.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.params.clone())
            .expect("component parameters were validated as this type when the config resolved")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataConfig {
    /// The data-rich source domain (a `registry/datasets` entry).
    pub source: Component,
    /// The data-scarce target domain (a `registry/datasets` entry).
    pub target: Component,
    /// Fraction of the target's training rows kept for training, stratified by the first label.
    pub target_rate: f64,
    /// Target training rows (outside the kept subset) held out for model selection.
    pub valid_rows: usize,
    /// Which of the target's training rows validate: the latest `valid_rows` in time, the
    /// scarce training rows drawn from those before them (`latest`), or a stratified
    /// random draw (`random`). Absent: `latest` where the target's rows are in time order
    /// (a data set entry with `ordered = true`), else `random`
    /// ([`Experiment::validation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Validation>,
    /// Fraction of the source rows drawn afresh each epoch of adaptation.
    pub source_fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    pub backbone: Component,
    pub embedding: Component,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdaptConfig {
    /// The adaptation method and its hyperparameters (a `registry/methods` entry).
    pub method: Component,
    /// The critic architecture and its optimiser (a `registry/critics` entry).
    pub critic: Component,
    /// The loss weights (a `registry/losses` entry).
    pub weights: Component,
    /// What passes of the target model over source rows do to its BatchNorm running
    /// statistics.
    pub source_batchnorm: SourceBatchNorm,
    /// How the critics' real and fake features are computed (DAA and TAA).
    #[serde(default)]
    pub critic_inputs: CriticInputs,
}

/// How the features that the critics of DAA and TAA compare are computed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CriticInputs {
    /// Every critic input, real or fake, is an inference-mode feature (running BatchNorm
    /// statistics, no dropout): the frozen source model's on source rows, the target
    /// model's on source rows and on target rows. The model's term scores the target
    /// rows' inference-mode features, which are what the test sees.
    #[default]
    Symmetric,
    /// daa before 0.2: D1's reals from the frozen model in inference mode, D2's reals from
    /// the target model on source rows with each source batch's own BatchNorm statistics
    /// and dropout, the fakes from the training pass over target rows (dropout on).
    Released,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceBatchNorm {
    /// Batch statistics only: the running statistics come from target rows alone.
    BatchOnly,
    /// Released-code behaviour: source rows enter the running statistics too.
    Update,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// torch.optim.Adam: weight decay added to the gradient (L2).
    Adam,
    /// Decoupled weight decay.
    Adamw,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptimConfig {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
}

/// Source-domain pretraining (MTReclib-style supervised training on the source).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PretrainConfig {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub patience: usize,
}

/// Which of the target's training rows validate (`data.valid`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// The latest rows in time: selection then predicts a test that is later still.
    Latest,
    /// A stratified random draw from the training period.
    Random,
}

impl Validation {
    /// The default for a data set with canonical parameters `params`: `latest` where it
    /// declares its rows in time order (`ordered = true`), else `random`.
    pub fn default_for(params: &serde_json::Value) -> Self {
        if params["ordered"].as_bool() == Some(true) {
            Validation::Latest
        } else {
            Validation::Random
        }
    }

    /// The rule as configured: `latest` or `random`.
    pub fn name(self) -> &'static str {
        match self {
            Validation::Latest => "latest",
            Validation::Random => "random",
        }
    }
}

/// The validation score that selects the epoch and stops training (`train.select_metric`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SelectMetric {
    /// The mean of the tasks' AUCs (where defined).
    #[default]
    Mean,
    /// One task's AUC, by label name: `{ task = "click" }`.
    Task(String),
    /// A weighted mean of the tasks' AUCs, one weight per label: `{ weights = [1.0, 0.2] }`.
    Weights(Vec<f64>),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SelectOn {
    /// Early stopping and model selection on the validation split.
    Valid,
    /// Released-code behaviour: selection on the test set.
    Test,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AucMode {
    /// One exact ROC AUC over the whole set.
    Exact,
    /// Released-code behaviour: the mean of AUCs over 2,097,152-row chunks.
    ChunkMean,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub seed: u64,
    /// The most epochs of target training; each ends in a validation (the start model is
    /// epoch 0's candidate).
    pub epochs: usize,
    /// Batch size of source pretraining and of evaluation.
    pub batch_size: usize,
    /// Batch size of target training steps (scarce targets want batches that fit their rows).
    pub target_batch_size: usize,
    /// The fewest optimiser steps an epoch of target training holds: an epoch is as many
    /// passes over the target rows as that takes (one pass when one pass has enough).
    pub steps_per_epoch: usize,
    /// Epochs without a better validation score before target training stops.
    pub patience: usize,
    pub select_on: SelectOn,
    /// The validation score that selects: the mean of the tasks' AUCs (`"mean"`), one
    /// task's (`{ task = "click" }`: a conversion AUC from a few dozen positives is noise),
    /// or a weighted mean (`{ weights = [1.0, 0.2] }`).
    #[serde(default)]
    pub select_metric: SelectMetric,
    pub auc: AucMode,
    pub device: Device,
    /// Rows per domain of the alignment probe set (source rows held out of pretraining
    /// and adaptation, target validation rows); 0 turns the alignment diagnostics off.
    #[serde(default = "default_probe_rows")]
    pub probe_rows: usize,
    /// Which kernels a CUDA device runs; nothing changes on the CPU.
    #[serde(default)]
    pub kernels: Kernels,
}

fn default_probe_rows() -> usize {
    2000
}

/// The kernels of a CUDA device (the CPU always runs daa's fused CPU kernels).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// candle's tensor operations; dropout masks drawn on the host and uploaded.
    #[default]
    Portable,
    /// daa's CUDA kernels (`kernels/daa.cu`): dropout masks computed on the device from the
    /// same counter-based stream. Not the default until its parity tests have passed on a
    /// GPU (scripts/gpu-check.sh).
    Device,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputConfig {
    pub runs_dir: PathBuf,
}

fn rate(value: f64) -> bool {
    value > 0.0 && value <= 1.0
}

impl Validate for Experiment {
    fn validate(&self) -> Result<(), Invalid> {
        let d = &self.data;
        ensure(rate(d.target_rate), "data.target_rate", "must be in (0, 1]")?;
        ensure(
            rate(d.source_fraction),
            "data.source_fraction",
            "must be in (0, 1]",
        )?;
        ensure(d.valid_rows > 0, "data.valid_rows", "must be positive")?;
        for (key, optim) in [
            ("optim", (self.optim.lr, self.optim.weight_decay)),
            ("pretrain", (self.pretrain.lr, self.pretrain.weight_decay)),
        ] {
            ensure(
                optim.0 > 0.0 && optim.0.is_finite(),
                &format!("{key}.lr"),
                "must be positive",
            )?;
            ensure(
                optim.1 >= 0.0 && optim.1.is_finite(),
                &format!("{key}.weight_decay"),
                "must be zero or positive",
            )?;
        }
        ensure(
            self.pretrain.epochs > 0,
            "pretrain.epochs",
            "must be positive",
        )?;
        let t = &self.train;
        if let SelectMetric::Weights(weights) = &t.select_metric {
            ensure(
                weights.iter().all(|w| *w >= 0.0 && w.is_finite())
                    && weights.iter().any(|w| *w > 0.0),
                "train.select_metric.weights",
                "must be zero or positive, at least one positive",
            )?;
        }
        ensure(t.epochs > 0, "train.epochs", "must be positive")?;
        ensure(t.batch_size > 0, "train.batch_size", "must be positive")?;
        ensure(
            t.target_batch_size > 1,
            "train.target_batch_size",
            "must be at least 2 (BatchNorm needs a batch variance)",
        )?;
        ensure(
            t.steps_per_epoch > 0,
            "train.steps_per_epoch",
            "must be positive",
        )?;
        ensure(t.patience > 0, "train.patience", "must be positive")
    }
}
