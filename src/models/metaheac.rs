//! MetaHeac (Zhu et al., KDD 2021): experts mixed by a task-conditioned gate, and critic towers
//! mixed by a second gate; a task's prediction is the gated mean of the critics' probabilities.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output, indexed};
use crate::nn::embedding::InputLayer;
use crate::nn::linear::Linear;
use crate::nn::mlp::Mlp;
use crate::nn::params::{Init, Role};
use crate::nn::{Mode, Params};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// Hidden sizes of the shared bottom, or of each expert (MTReclib's `bottom_mlp_dims`); profiles narrow them.
    pub bottom_dims: Vec<usize>,
    /// Number of experts.
    pub experts: usize,
    /// Number of task critics (MetaHeac's critic networks).
    pub critics: usize,
    /// Hidden sizes of each task's tower.
    pub tower_dims: Vec<usize>,
    /// Dropout rate of the hidden layers (masks from the seeded stream).
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        super::check_dims(&self.bottom_dims, "bottom_dims")?;
        super::check_count(self.experts, "experts")?;
        super::check_count(self.critics, "critics")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}

pub struct MetaHeac {
    input: InputLayer,
    task_embedding: candle_core::Var,
    experts: Mlp,
    critics: Mlp,
    expert_gate: Linear,
    critic_gate: Linear,
    tasks: usize,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let last = *self.bottom_dims.last().expect("validated non-empty");
        let e = dims.embedding.dim;
        Ok(Box::new(MetaHeac {
            input: dims.input_layer(params)?,
            task_embedding: params.add(
                &["task_embedding.weight".into()],
                &[dims.tasks, e],
                Init::Gaussian(1.0),
                Role::Trainable,
            )?,
            experts: super::bottoms(
                params,
                dims,
                "expert",
                self.experts,
                &self.bottom_dims,
                self.dropout,
            )?,
            critics: Mlp::new(
                params,
                &indexed("critic", self.critics),
                last,
                &self.tower_dims,
                self.dropout,
                true,
            )?,
            expert_gate: Linear::new(params, &["expert_gate.0".into()], 2 * e, self.experts)?,
            critic_gate: Linear::new(params, &["critic_gate.0".into()], 2 * e, self.critics)?,
            tasks: dims.tasks,
        }))
    }
}

impl Backbone for MetaHeac {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let fields = self.input.forward(categorical, numerical)?;
        let mean_field = fields.mean(1)?;
        let experts = self
            .experts
            .forward_shared(&fields.flatten_from(1)?, mode)?;
        let mut probabilities = Vec::with_capacity(self.tasks);
        let mut mixes = Vec::with_capacity(self.tasks);
        for t in 0..self.tasks {
            let task = self
                .task_embedding
                .as_tensor()
                .get(t)?
                .unsqueeze(0)?
                .broadcast_as(mean_field.shape())?;
            let gate_input = Tensor::cat(&[&task, &mean_field], 1)?;
            let weights =
                super::softmax(&self.expert_gate.forward_shared(&gate_input)?)?.unsqueeze(1)?;
            let mixed = super::mix(&experts, &weights)?.squeeze(1)?;
            let critic_weights = super::softmax(&self.critic_gate.forward_shared(&gate_input)?)?;
            let critics = candle_nn::ops::sigmoid(
                &self.critics.forward_shared(&mixed, mode)?.squeeze(2)?.t()?,
            )?;
            probabilities.push((critic_weights * critics)?.mean_keepdim(1)?);
            mixes.push(mixed);
        }
        Ok(Output {
            logits: None,
            probabilities: Tensor::cat(&probabilities, 1)?,
            feature: Tensor::cat(&mixes, 1)?,
        })
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
