//! One-gate Mixture-of-Experts: expert MLPs mixed by one softmax gate shared by the tasks.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output};
use crate::nn::embedding::InputLayer;
use crate::nn::linear::Linear;
use crate::nn::mlp::Mlp;
use crate::nn::{Mode, Params};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// Hidden sizes of the shared bottom, or of each expert (MTReclib's `bottom_mlp_dims`); profiles narrow them.
    pub bottom_dims: Vec<usize>,
    /// Number of experts.
    pub experts: usize,
    /// Hidden sizes of each task's tower.
    pub tower_dims: Vec<usize>,
    /// Dropout rate of the hidden layers (masks from the seeded stream).
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        super::check_dims(&self.bottom_dims, "bottom_dims")?;
        super::check_count(self.experts, "experts")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}

pub struct Omoe {
    input: InputLayer,
    experts: Mlp,
    gate: Linear,
    towers: Mlp,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let last = *self.bottom_dims.last().expect("validated non-empty");
        Ok(Box::new(Omoe {
            input: dims.input_layer(params)?,
            experts: super::bottoms(
                params,
                dims,
                "expert",
                self.experts,
                &self.bottom_dims,
                self.dropout,
            )?,
            gate: Linear::new(params, &["gate.0".into()], dims.input_width(), self.experts)?,
            towers: super::towers(params, dims, last, &self.tower_dims, self.dropout)?,
        }))
    }
}

impl Backbone for Omoe {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let emb = self.input.flat(categorical, numerical)?;
        let experts = self.experts.forward_shared(&emb, mode)?;
        let gate = super::softmax(&self.gate.forward_shared(&emb)?)?.unsqueeze(1)?;
        let feature = super::mix(&experts, &gate)?.squeeze(1)?;
        let towers = self.towers.forward_shared(&feature, mode)?;
        super::from_logits(towers, feature)
    }

    fn feature_width(&self) -> usize {
        self.experts.width()
    }

    fn feature_blocks(&self) -> usize {
        1
    }

    fn body(&self) -> &'static [&'static str] {
        &["embedding", "numerical_layer", "expert"]
    }
}
