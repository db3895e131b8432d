//! Adaptation of the target model. Each method is one file implementing [`Adaptation`],
//! one line of [`METHODS`] and one `registry/methods` entry with its hyperparameters; the
//! training loop (`crate::train`) knows no method by name: it asks a method what it
//! [`Needs`], lets it add its term to the model's loss on each target batch (taking its
//! own steps first, such as critic steps), hands it the model's gradients after each step,
//! and records what it reports per epoch.

mod adversaries;
pub mod coral;
pub mod critic;
mod daa;
mod dann;
mod error;
mod finetune;
mod game;
mod joint;
mod l2sp;
pub mod measure;
pub mod mmd;
mod partial;
mod single_domain;
pub mod source;
mod source_only;
mod step_context;
mod supervised;
mod taa;
pub mod weights;

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

pub use error::AdaptError;
pub use source::SourceBatches;
pub use step_context::{StepContext, TaskLoss};
pub use supervised::Supervised;

use crate::config::registry::{Kind, find};
use crate::config::{Component, Experiment};
use crate::data::Schema;
use crate::data::batch::Tensors;
use crate::models::Output;

/// The kinds of `registry/methods` entries, which `adapt.method` names.
pub const METHODS: &[Kind<Method>] = &[
    single_domain::SINGLE_DOMAIN,
    source_only::SOURCE_ONLY,
    finetune::FINETUNE,
    partial::PARTIAL,
    l2sp::L2SP,
    joint::JOINT,
    daa::DAA,
    daa::DAA_SINGLE,
    daa::DAA_D2,
    taa::TAA,
    dann::DANN,
    coral::CORAL,
    mmd::MMD,
];

/// The method of `kind`, if there is one.
pub fn method(kind: &str) -> Option<&'static Method> {
    find(METHODS, kind).map(|kind| &kind.build)
}

/// What a method needs from the run before its first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The target model starts from the pretrained source model (else a fresh initialisation).
    pub source_model: bool,
    /// Source rows during target training (each epoch a fresh subsample).
    pub source_rows: bool,
    /// The target model trains at all (`source_only` only evaluates the source model).
    pub training: bool,
    /// The optimiser updates the model's body (input layer and bottoms or experts, see
    /// [`Backbone::body`](crate::models::Backbone::body)) as well as its heads.
    pub trains_body: bool,
}

impl Needs {
    /// From the source model, with source rows for a term that compares the domains.
    pub const ALIGNMENT: Needs = Needs {
        source_model: true,
        source_rows: true,
        training: true,
        trains_body: true,
    };
    /// From the source model, on target rows alone.
    pub const FROM_SOURCE: Needs = Needs {
        source_rows: false,
        ..Needs::ALIGNMENT
    };
}

/// One adaptation method: what it needs (from its entry's hyperparameters) and how its
/// state is built. Its one-line description is its registry entry's.
pub struct Method {
    pub needs: fn(&Component) -> Needs,
    pub build: fn(&Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError>,
}

/// What a method is built from.
pub struct Setup<'a> {
    pub experiment: &'a Experiment,
    pub schema: &'a Schema,
    pub device: &'a Device,
    /// Width of the target model's feature (what critics and classifiers see).
    pub feature_width: usize,
    /// How many equal per-task blocks the feature concatenates (1: one shared feature).
    pub feature_blocks: usize,
    /// The pretrained source model, for methods whose [`Needs::source_model`] is set.
    pub source_checkpoint: Option<&'a Path>,
}

impl Setup<'_> {
    /// The pretrained source model, loaded afresh (a frozen copy or an anchor); `who` says
    /// in the error what needed it.
    pub fn source_model(&self, who: &str) -> Result<crate::models::model::Model, AdaptError> {
        let path = self
            .source_checkpoint
            .ok_or_else(|| AdaptError::Invalid(format!("{who} needs a source model")))?;
        let exp = self.experiment;
        let model =
            crate::models::model::Model::new(exp, self.schema, self.device, exp.train.seed)?;
        model.load(path)?;
        Ok(model)
    }
}

/// The target model's output on a target batch, and what the method adds to its loss:
/// the objective is `task_weight` * the task loss + `term`.
pub struct Adapted {
    pub output: Output,
    /// The weight of the target batch's task loss (1 but for methods that mix in other
    /// rows' losses).
    pub task_weight: f64,
    /// The method's term, already weighted (`None`: the task loss alone).
    pub term: Option<Tensor>,
}

impl Adapted {
    /// The task loss alone.
    pub fn plain(output: Output) -> Self {
        Adapted {
            output,
            task_weight: 1.0,
            term: None,
        }
    }

    /// The task loss plus `term`.
    pub fn with_term(output: Output, term: Tensor) -> Self {
        Adapted {
            output,
            task_weight: 1.0,
            term: Some(term),
        }
    }
}

/// Inference-mode features of the alignment probe set (rows that training never sees but
/// the target's own training rows), for a method's held-out measurements.
pub struct ProbeFeatures<'a> {
    /// The frozen source model on the source probe rows (where there is a source model).
    pub frozen_source: Option<&'a Tensor>,
    /// The target model on the source probe rows.
    pub source: Tensor,
    /// The target model on the target probe rows (validation rows).
    pub target: Tensor,
    /// The target model on (up to as many of) the target's training rows, computed when
    /// asked (only methods that measure on them pay for the pass).
    pub target_train: &'a dyn Fn() -> candle_core::Result<Tensor>,
}

/// An adaptation method's behaviour during target training.
pub trait Adaptation {
    /// Called before each epoch's first step (per-epoch random streams start here).
    fn begin_epoch(&mut self, _seed: u64, _epoch: u64) {}

    /// The target model's output on `target` and the method's term for the model's loss.
    /// A method may first update its own networks (critic steps on source batches).
    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError>;

    /// After the model's backward pass, with its gradients (a domain classifier trained
    /// through gradient reversal steps on them).
    fn after_backward(&mut self, _grads: &GradStore) -> Result<(), AdaptError> {
        Ok(())
    }

    /// The settings that scale the method's term (key, value), named when training
    /// diverges.
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// Wall seconds the method spent in its own parts since it was last asked (DAA's critic
    /// steps and frozen source features), by phase name, for result.json's `timing`; resets
    /// them. Kept out of metrics.jsonl: identical runs write identical lines.
    fn take_seconds(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The epoch's measurements (means over its steps) for metrics.jsonl; resets them.
    /// Fails with [`AdaptError::NonFinite`] where the method's own networks diverged.
    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(serde_json::Map::new())
    }

    /// What the method's own networks measure on the probe set (each critic's
    /// Wasserstein estimate on held-out rows, and on the target's training rows, so that a
    /// critic fitting the scarce target rows shows as the difference); for metrics.jsonl's
    /// "alignment".
    fn held_out(
        &self,
        _probe: &ProbeFeatures<'_>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(serde_json::Map::new())
    }

    /// The method's own learned state (parameters, optimiser moments) by name, for
    /// checkpoints that resume bit-identically.
    fn state(&self) -> Result<HashMap<String, Tensor>, AdaptError> {
        Ok(HashMap::new())
    }

    /// Restores [`Self::state`] from a checkpoint's tensors (`shown` names the file).
    fn load_state(
        &mut self,
        _tensors: &HashMap<String, Tensor>,
        _shown: &str,
    ) -> Result<(), AdaptError> {
        Ok(())
    }
}
