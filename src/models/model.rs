//! A backbone built for an experiment and a data schema, with its parameters.

use std::path::Path;

use candle_core::{Device, Result, Tensor};

use super::{Backbone, Dims, Output, build_backbone};
use crate::config::Experiment;
use crate::data::Schema;
use crate::data::batch::field_offsets;
use crate::nn::checkpoint::CheckpointError;
use crate::nn::{Mode, Params};

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model.backbone `{backbone}` ({sizes}) does not fit in this machine's memory: training \
         it needs at least {needed:.1} GiB ({what}), beyond the machine's {memory:.1} GiB; \
         reduce those sizes (or model.embedding's dims, train.batch_size)"
    )]
    TooLarge {
        backbone: String,
        /// The backbone's size settings as `key = value`.
        sizes: String,
        needed: f64,
        /// What the estimate counts.
        what: String,
        memory: f64,
    },
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Values that training keeps per activation: the output, its gradient and the
/// intermediates of the layer's normalisation, nonlinearity and dropout.
const ACTIVATION_COPIES: u64 = 4;

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

impl ModelError {
    fn too_large(experiment: &Experiment, needed: u64, memory: u64, what: String) -> Self {
        let backbone = &experiment.model.backbone;
        // The settings that set a size: integers and lists of them.
        let integers = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.is_u64(),
            serde_json::Value::Array(items) => items.iter().all(|i| i.is_u64()),
            _ => false,
        };
        let sizes = backbone
            .params
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| integers(v))
            .map(|(k, v)| format!("model.backbone.{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        ModelError::TooLarge {
            backbone: backbone.name.clone(),
            sizes,
            needed: gib(needed),
            what,
            memory: gib(memory),
        }
    }

    /// The user's settings are at fault (a model too large), not the computation.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ModelError::TooLarge { .. })
    }
}

/// Refuses a model whose training would not fit in memory: its parameters (with their
/// gradients and Adam's moments) and a batch's activations. Checked before the first
/// batch allocates anything, since a size from a config would otherwise abort the process
/// or grow until the system kills it.
fn check_fits(experiment: &Experiment, params: &Params) -> std::result::Result<(), ModelError> {
    let rows = experiment
        .train
        .batch_size
        .max(experiment.train.target_batch_size) as u64;
    let activations = rows
        .saturating_mul(params.row_width())
        .saturating_mul(4 * ACTIVATION_COPIES);
    let needed = params.training_bytes().saturating_add(activations);
    if needed <= params.memory() {
        return Ok(());
    }
    let what = format!(
        "parameters with their gradients and Adam's moments {:.1} GiB, activations of a \
         batch of {rows} rows {:.1} GiB",
        gib(params.training_bytes()),
        gib(activations)
    );
    Err(ModelError::too_large(
        experiment,
        needed,
        params.memory(),
        what,
    ))
}

pub struct Model {
    pub params: Params,
    pub backbone: Box<dyn Backbone>,
    pub dims: Dims,
    /// Per-field row offsets for the embedding table.
    pub offsets: Vec<u32>,
}

impl Model {
    /// The experiment's backbone for `schema`, initialised from `seed`.
    pub fn new(
        experiment: &Experiment,
        schema: &Schema,
        device: &Device,
        seed: u64,
    ) -> std::result::Result<Self, ModelError> {
        let dims = Dims {
            cardinalities: schema.categorical.cardinalities.clone(),
            numerical: schema.numerical_names().len(),
            tasks: schema.labels.len(),
            embedding: experiment.model.embedding.params(),
        };
        let mut params = Params::new(device, seed);
        let backbone = &experiment.model.backbone;
        let backbone = build_backbone(&backbone.kind, &backbone.params, &dims, &mut params)
            .map_err(|e| match params.refused() {
                Some(refused) => ModelError::too_large(
                    experiment,
                    refused.needed,
                    refused.memory,
                    format!(
                        "parameters with their gradients and Adam's moments, by tensor `{}` \
                         already",
                        refused.tensor
                    ),
                ),
                None => ModelError::Candle(e),
            })?;
        check_fits(experiment, &params)?;
        Ok(Model {
            params,
            backbone,
            offsets: field_offsets(&dims.cardinalities),
            dims,
        })
    }

    pub fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        self.backbone.forward(categorical, numerical, mode)
    }

    pub fn load(&self, path: &Path) -> std::result::Result<(), CheckpointError> {
        self.params.load(path)
    }

    pub fn save(&self, path: &Path) -> std::result::Result<(), CheckpointError> {
        self.params.save(path)
    }
}
