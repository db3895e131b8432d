//! Progressive Layered Extraction (Tang et al., RecSys 2020): one extraction layer per expert
//! dim, with shared and task-specific experts, per-task gates and a shared gate below the last layer.

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
    /// Experts shared by the tasks at each level.
    pub shared_experts: usize,
    /// Experts of each task at each level.
    pub task_experts: usize,
    /// Hidden sizes of each task's tower.
    pub tower_dims: Vec<usize>,
    /// Dropout rate of the hidden layers (masks from the seeded stream).
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        super::check_dims(&self.bottom_dims, "bottom_dims")?;
        super::check_count(self.shared_experts, "shared_experts")?;
        super::check_count(self.task_experts, "task_experts")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}

struct Level {
    shared: Mlp,
    specific: Vec<Mlp>,
    task_gates: Vec<Linear>,
    shared_gate: Linear,
}

pub struct Ple {
    input: InputLayer,
    levels: Vec<Level>,
    towers: Mlp,
    width: usize,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let tasks = dims.tasks;
        let mut levels = Vec::new();
        let mut input = dims.input_width();
        for (i, &dim) in self.bottom_dims.iter().enumerate() {
            let shared = Mlp::new(
                params,
                &indexed(&format!("share_experts.{i}"), self.shared_experts),
                input,
                &[dim],
                self.dropout,
                false,
            )?;
            let specific = (0..tasks)
                .map(|j| {
                    Mlp::new(
                        params,
                        &indexed(&format!("task_experts.{i}.{j}"), self.task_experts),
                        input,
                        &[dim],
                        self.dropout,
                        false,
                    )
                })
                .collect::<Result<_>>()?;
            let task_gates = (0..tasks)
                .map(|j| {
                    Linear::new(
                        params,
                        &[format!("task_gates.{i}.{j}.0")],
                        input,
                        self.shared_experts + self.task_experts,
                    )
                })
                .collect::<Result<_>>()?;
            // Present at the last level too (PyTorch builds it there, unused), so that
            // checkpoints match the reference's state_dict.
            let shared_gate = Linear::new(
                params,
                &[format!("share_gates.{i}.0")],
                input,
                self.shared_experts + tasks * self.task_experts,
            )?;
            levels.push(Level {
                shared,
                specific,
                task_gates,
                shared_gate,
            });
            input = dim;
        }
        Ok(Box::new(Ple {
            input: dims.input_layer(params)?,
            levels,
            towers: Mlp::new(
                params,
                &indexed("tower", tasks),
                input,
                &self.tower_dims,
                self.dropout,
                true,
            )?,
            width: tasks * input,
        }))
    }
}

impl Backbone for Ple {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let emb = self.input.flat(categorical, numerical)?;
        let tasks = self.levels[0].specific.len();
        // One feature per task, and the shared one last.
        let mut features = vec![emb; tasks + 1];
        for (i, level) in self.levels.iter().enumerate() {
            let shared = level.shared.forward_shared(&features[tasks], mode)?;
            let mut specific = Vec::with_capacity(tasks);
            for (j, (experts, gate)) in level.specific.iter().zip(&level.task_gates).enumerate() {
                let own = experts.forward_shared(&features[j], mode)?;
                let weights = super::softmax(&gate.forward_shared(&features[j])?)?.unsqueeze(1)?;
                features[j] =
                    super::mix(&Tensor::cat(&[&own, &shared], 0)?, &weights)?.squeeze(1)?;
                specific.push(own);
            }
            if i + 1 < self.levels.len() {
                specific.push(shared);
                let weights = super::softmax(&level.shared_gate.forward_shared(&features[tasks])?)?
                    .unsqueeze(1)?;
                features[tasks] = super::mix(&Tensor::cat(&specific, 0)?, &weights)?.squeeze(1)?;
            }
        }
        let per_task = Tensor::stack(&features[..tasks], 0)?;
        let towers = self.towers.forward_each(&per_task, mode)?;
        super::from_logits(towers, Tensor::cat(&features[..tasks], 1)?)
    }

    fn feature_width(&self) -> usize {
        self.width
    }

    fn feature_blocks(&self) -> usize {
        self.levels[0].specific.len()
    }

    fn body(&self) -> &'static [&'static str] {
        &[
            "embedding",
            "numerical_layer",
            "share_experts",
            "task_experts",
        ]
    }
}
