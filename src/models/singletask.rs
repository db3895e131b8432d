//! Single-task baseline: a separate input layer, bottom MLP and tower per task.

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

pub struct SingleTask {
    inputs: Vec<InputLayer>,
    bottoms: Mlp,
    towers: Mlp,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let last = *self.bottom_dims.last().expect("validated non-empty");
        let inputs = (0..dims.tasks)
            .map(|t| {
                let (embedding, numerical) =
                    (format!("embedding.{t}"), format!("numerical_layer.{t}"));
                InputLayer::new(
                    params,
                    &embedding,
                    &numerical,
                    &dims.cardinalities,
                    dims.numerical,
                    &dims.embedding,
                )
            })
            .collect::<Result<_>>()?;
        Ok(Box::new(SingleTask {
            inputs,
            bottoms: super::bottoms(
                params,
                dims,
                "bottom",
                dims.tasks,
                &self.bottom_dims,
                self.dropout,
            )?,
            towers: super::towers(params, dims, last, &self.tower_dims, self.dropout)?,
        }))
    }
}

impl Backbone for SingleTask {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let embs = self
            .inputs
            .iter()
            .map(|input| input.forward(categorical, numerical)?.flatten_from(1))
            .collect::<Result<Vec<_>>>()?;
        let bottoms = self.bottoms.forward_each(&Tensor::stack(&embs, 0)?, mode)?;
        let towers = self.towers.forward_each(&bottoms, mode)?;
        let feature = bottoms.transpose(0, 1)?.flatten_from(1)?;
        super::from_logits(towers, feature)
    }

    fn feature_width(&self) -> usize {
        self.inputs.len() * self.bottoms.width()
    }

    fn feature_blocks(&self) -> usize {
        self.inputs.len()
    }

    fn body(&self) -> &'static [&'static str] {
        &["embedding", "numerical_layer", "bottom"]
    }
}
