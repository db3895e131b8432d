//! Adaptation of the target model. Each method is one file implementing [`Adaptation`]
//! and one line of [`METHODS`]; the training loop (`crate::train`) knows no method by
//! name: it asks a method what it [`Needs`], lets it add its term to the model's loss on
//! each target batch (taking its own steps first, such as critic steps), hands it the
//! model's gradients after each step, and records what it reports per epoch.

mod adversaries;
pub mod critic;
mod daa;
mod dann;
mod error;
pub mod source;
mod step;
mod supervised;
pub mod weights;

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

pub use error::AdaptError;
pub use source::SourceBatches;
pub use step::Step;
pub use supervised::Supervised;

use crate::config::Experiment;
use crate::config::registry::{Kind, find, no_params};
use crate::data::Schema;
use crate::data::batch::Tensors;
use crate::models::Output;

/// Every adaptation method `adapt.method` may name.
pub const METHODS: &[Kind<Method>] = &[
    supervised::SINGLE_DOMAIN,
    supervised::SOURCE_ONLY,
    supervised::FINETUNE,
    daa::DAA,
    daa::DAA_SINGLE,
    daa::DAA_D2,
    dann::DANN,
];

/// The method `name`, if there is one.
pub fn method(name: &str) -> Option<&'static Method> {
    find(METHODS, name).map(|kind| &kind.build)
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
}

/// One adaptation method: a one-line description, what it needs, and how its state is built.
pub struct Method {
    pub about: &'static str,
    pub needs: Needs,
    pub build: fn(&Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError>,
}

/// A registry-style entry for a method (methods have no parameters of their own yet; their
/// settings live in `adapt.critic` and `adapt.weights`).
const fn entry(name: &'static str, method: Method) -> Kind<Method> {
    Kind::new(name, no_params, method)
}

/// What a method is built from.
pub struct Setup<'a> {
    pub experiment: &'a Experiment,
    pub schema: &'a Schema,
    pub device: &'a Device,
    /// Width of the target model's feature (what critics and classifiers see).
    pub feature_width: usize,
    /// The pretrained source model, for methods whose [`Needs::source_model`] is set.
    pub source_checkpoint: Option<&'a Path>,
}

/// The target model's output on a target batch, and what the method adds to its loss.
pub struct Adapted {
    pub output: Output,
    /// The method's term, already weighted, added to the task loss (`None`: the task loss
    /// alone).
    pub term: Option<Tensor>,
}

/// An adaptation method's behaviour during target training.
pub trait Adaptation {
    /// Called before each epoch's first step (per-epoch random streams start here).
    fn begin_epoch(&mut self, _seed: u64, _epoch: u64) {}

    /// The target model's output on `target` and the method's term for the model's loss.
    /// A method may first update its own networks (critic steps on source batches).
    fn forward(&mut self, step: &mut Step<'_, '_>, target: &Tensors)
    -> Result<Adapted, AdaptError>;

    /// After the model's backward pass, with its gradients (a domain classifier trained
    /// through gradient reversal steps on them).
    fn after_backward(&mut self, _grads: &GradStore) -> Result<(), AdaptError> {
        Ok(())
    }

    /// The epoch's measurements (means over its steps) for metrics.jsonl; resets them.
    fn end_epoch(&mut self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
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
