//! Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): expert MLPs, one softmax gate per task.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output, indexed};
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

pub struct Mmoe {
    input: InputLayer,
    experts: Mlp,
    gates: Linear,
    towers: Mlp,
    tasks: usize,
    experts_count: usize,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let last = *self.bottom_dims.last().expect("validated non-empty");
        let gates: Vec<String> = indexed("gate", dims.tasks)
            .iter()
            .map(|g| format!("{g}.0"))
            .collect();
        Ok(Box::new(Mmoe {
            input: dims.input_layer(params)?,
            experts: super::bottoms(
                params,
                dims,
                "expert",
                self.experts,
                &self.bottom_dims,
                self.dropout,
            )?,
            gates: Linear::new(params, &gates, dims.input_width(), self.experts)?,
            towers: super::towers(params, dims, last, &self.tower_dims, self.dropout)?,
            tasks: dims.tasks,
            experts_count: self.experts,
        }))
    }
}

impl Backbone for Mmoe {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let emb = self.input.flat(categorical, numerical)?;
        let batch = emb.dim(0)?;
        let experts = self.experts.forward_shared(&emb, mode)?;
        let gates =
            self.gates
                .forward_shared(&emb)?
                .reshape((batch, self.tasks, self.experts_count))?;
        let mixed = super::mix(&experts, &super::softmax(&gates)?)?;
        let towers = self
            .towers
            .forward_each(&mixed.transpose(0, 1)?.contiguous()?, mode)?;
        super::from_logits(towers, mixed.flatten_from(1)?)
    }

    fn feature_width(&self) -> usize {
        self.tasks * self.experts.width()
    }

    fn feature_blocks(&self) -> usize {
        self.tasks
    }

    fn body(&self) -> &'static [&'static str] {
        &["embedding", "numerical_layer", "expert"]
    }
}
