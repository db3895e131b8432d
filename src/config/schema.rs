use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check::{Invalid, Validate, ensure};
use crate::device::Device;

/// A fully resolved experiment: every key set by the registry, the `extends` chain, the
/// file, the environment or `--set`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Experiment {
    /// The domains and how the target's rows split.
    pub data: DataConfig,
    /// The model: backbone and input layer.
    pub model: ModelConfig,
    /// The adaptation: method, critics, loss weights.
    pub adapt: AdaptConfig,
    /// Source-domain pretraining.
    pub pretrain: PretrainConfig,
    /// The target model's optimiser during adaptation.
    pub optim: OptimConfig,
    /// Target training, selection and evaluation.
    pub train: TrainConfig,
    /// Where results go.
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
    /// The parameters that name files a run reads (see
    /// [`Kind::reads`](super::registry::Kind)), set when the config resolves.
    #[serde(skip)]
    pub reads: &'static [&'static str],
}

/// How a config file sets a component slot: a registry entry's name (`"ple"`), or a table
/// that names one with `use` and overrides its parameters (`{ use = "ple", dropout = 0.1 }`;
/// without `use`, it overrides the entry in force). The parameters depend on the entry's
/// kind: `daa registry list DIR` lists the entries.
fn component(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {"use": {"type": "string"}}}
        ]
    })
}

impl Component {
    /// The parameters as the type that this component's kind declares.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.params.clone())
            .expect("component parameters were validated as this type when the config resolved")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct DataConfig {
    /// The data-rich source domain (a `registry/datasets` entry).
    #[schemars(schema_with = "component")]
    pub source: Component,
    /// The data-scarce target domain (a `registry/datasets` entry).
    #[schemars(schema_with = "component")]
    pub target: Component,
    /// Fraction of the target's training rows kept for training, stratified by the first label.
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub target_rate: f64,
    /// Target training rows (outside the kept subset) held out for model selection.
    #[schemars(range(min = 1))]
    pub valid_rows: usize,
    /// Which of the target's training rows validate: the latest `valid_rows` in time, the
    /// scarce training rows drawn from those before them (`latest`), or a stratified
    /// random draw (`random`). Absent: `latest` where the target's rows are in time order
    /// (a data set entry with `ordered = true`), else `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Validation>,
    /// Fraction of the source rows drawn afresh each epoch of adaptation.
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub source_fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ModelConfig {
    /// The multi-task backbone (a `registry/backbones` entry: sharedbottom, omoe, mmoe,
    /// ple, aitm, singletask, metaheac).
    #[schemars(schema_with = "component")]
    pub backbone: Component,
    /// The input layer (a `registry/embeddings` entry).
    #[schemars(schema_with = "component")]
    pub embedding: Component,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct AdaptConfig {
    /// The adaptation method and its hyperparameters (a `registry/methods` entry).
    #[schemars(schema_with = "component")]
    pub method: Component,
    /// The critic architecture and its optimiser (a `registry/critics` entry).
    #[schemars(schema_with = "component")]
    pub critic: Component,
    /// The loss weights (a `registry/losses` entry).
    #[schemars(schema_with = "component")]
    pub weights: Component,
    /// What passes of the target model over source rows do to its BatchNorm running
    /// statistics.
    pub source_batchnorm: SourceBatchNorm,
    /// How the critics' real and fake features are computed (DAA and TAA).
    #[serde(default)]
    pub critic_inputs: CriticInputs,
}

/// How the features that the critics of DAA and TAA compare are computed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CriticInputs {
    /// Every critic input, real or fake, is an inference-mode feature (running BatchNorm
    /// statistics, no dropout): the frozen source model's on source rows, the target
    /// model's on source rows and on target rows. The model's term scores the target
    /// rows' inference-mode features, which are what the test sees.
    #[default]
    Symmetric,
    /// As the released code feeds them: D1's reals from the frozen model in inference
    /// mode, D2's reals from the target model on source rows with each source batch's own
    /// BatchNorm statistics and dropout, the fakes from the training pass over target rows
    /// (dropout on).
    Released,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceBatchNorm {
    /// Batch statistics only: the running statistics come from target rows alone.
    BatchOnly,
    /// Released-code behaviour: source rows enter the running statistics too.
    Update,
}

/// An Adam-family optimiser.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// torch.optim.Adam: weight decay added to the gradient (L2).
    Adam,
    /// Decoupled weight decay.
    Adamw,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct OptimConfig {
    /// The target model's optimiser during adaptation.
    pub optimizer: Optimizer,
    /// Its learning rate.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub lr: f64,
    /// Its weight decay (L2 for adam, decoupled for adamw).
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
}

/// Source-domain pretraining (MTReclib-style supervised training on the source).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct PretrainConfig {
    /// The source model's optimiser.
    pub optimizer: Optimizer,
    /// Its learning rate.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub lr: f64,
    /// Its weight decay.
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
    /// The most epochs of source pretraining.
    #[schemars(range(min = 1))]
    pub epochs: usize,
    /// Epochs without a better source validation AUC before pretraining stops.
    pub patience: usize,
}

/// Which of the target's training rows validate (`data.valid`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectOn {
    /// Early stopping and model selection on the validation split.
    Valid,
    /// Released-code behaviour: selection on the test set.
    Test,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AucMode {
    /// One exact ROC AUC over the whole set.
    Exact,
    /// Released-code behaviour: the mean of AUCs over 2,097,152-row chunks.
    ChunkMean,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct TrainConfig {
    /// The experiment seed: every random draw comes from a stream keyed by it.
    pub seed: u64,
    /// The most epochs of target training; each ends in a validation (the start model is
    /// epoch 0's candidate).
    #[schemars(range(min = 1))]
    pub epochs: usize,
    /// Batch size of source pretraining and of evaluation.
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Batch size of target training steps (scarce targets want batches that fit their
    /// rows; at least 2: BatchNorm needs a batch variance).
    #[schemars(range(min = 2))]
    pub target_batch_size: usize,
    /// The fewest optimiser steps an epoch of target training holds: an epoch is as many
    /// passes over the target rows as that takes (one pass when one pass has enough).
    #[schemars(range(min = 1))]
    pub steps_per_epoch: usize,
    /// Epochs without a better validation score before target training stops.
    #[schemars(range(min = 1))]
    pub patience: usize,
    /// The split that selects the epoch and stops training.
    pub select_on: SelectOn,
    /// The validation score that selects: the mean of the tasks' AUCs (`"mean"`), one
    /// task's (`{ task = "click" }`: a conversion AUC from a few dozen positives is noise),
    /// or a weighted mean (`{ weights = [1.0, 0.2] }`).
    #[serde(default)]
    pub select_metric: SelectMetric,
    /// How the AUC is computed.
    pub auc: AucMode,
    /// Where tensors live: `cpu`, `cuda` or `cuda:N` (a build with the `cuda` feature).
    #[schemars(with = "String")]
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
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct OutputConfig {
    /// Where run directories go (`<runs_dir>/<experiment>/<hash>/`), relative to the
    /// working directory; not part of the hash.
    pub runs_dir: PathBuf,
    /// Also write TensorBoard event files (`events.out.tfevents.*`) of every epoch's
    /// losses, AUCs, alignment and time, in the run directory (and the source model's).
    #[serde(default)]
    pub tensorboard: bool,
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
