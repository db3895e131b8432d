//! Shared-Bottom: one bottom MLP shared by the tasks, one tower per task.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output};
use crate::nn::embedding::InputLayer;
use crate::nn::mlp::Mlp;
use crate::nn::{Mode, Params};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// Hidden sizes of the shared bottom, or of each expert (MTReclib's `bottom_mlp_dims`); profiles narrow them.
    pub bottom_dims: Vec<usize>,
    /// Hidden sizes of each task's tower.
    pub tower_dims: Vec<usize>,
    /// Dropout rate of the hidden layers (masks from the seeded stream).
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        super::check_dims(&self.bottom_dims, "bottom_dims")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}

pub struct SharedBottom {
    input: InputLayer,
    bottom: Mlp,
    towers: Mlp,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let last = *self.bottom_dims.last().expect("validated non-empty");
        Ok(Box::new(SharedBottom {
            input: dims.input_layer(params)?,
            bottom: Mlp::new(
                params,
                &["bottom".into()],
                dims.input_width(),
                &self.bottom_dims,
                self.dropout,
                false,
            )?,
            towers: super::towers(params, dims, last, &self.tower_dims, self.dropout)?,
        }))
    }
}

impl Backbone for SharedBottom {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let emb = self.input.flat(categorical, numerical)?;
        let feature = self.bottom.forward_shared(&emb, mode)?.squeeze(0)?;
        let towers = self.towers.forward_shared(&feature, mode)?;
        super::from_logits(towers, feature)
    }

    fn feature_width(&self) -> usize {
        self.bottom.width()
    }

    fn feature_blocks(&self) -> usize {
        1
    }

    fn body(&self) -> &'static [&'static str] {
        &["embedding", "numerical_layer", "bottom"]
    }
}
