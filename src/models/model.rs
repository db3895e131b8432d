//! A backbone built for an experiment and a data schema, with its parameters.

use std::path::Path;

use candle_core::{Device, Result, Tensor};

use super::{Backbone, Dims, Output, build_backbone};
use crate::config::Experiment;
use crate::data::Schema;
use crate::data::batch::field_offsets;
use crate::nn::checkpoint::CheckpointError;
use crate::nn::{Mode, Params};

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
    ) -> Result<Self> {
        let dims = Dims {
            cardinalities: schema.categorical.cardinalities.clone(),
            numerical: schema.numerical_names().len(),
            tasks: schema.labels.len(),
            embedding: experiment.model.embedding.params(),
        };
        let mut params = Params::new(device, seed);
        let backbone = &experiment.model.backbone;
        let backbone = build_backbone(&backbone.kind, &backbone.params, &dims, &mut params)?;
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
