//! Progressive Layered Extraction (Tang et al., RecSys 2020): one extraction layer per expert
//! dim, with shared and task-specific experts, per-task gates and a shared gate below the last layer.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub expert_dims: Vec<usize>,
    pub shared_experts: usize,
    pub task_experts: usize,
    pub tower_dims: Vec<usize>,
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        super::check_dims(&self.expert_dims, "expert_dims")?;
        super::check_count(self.shared_experts, "shared_experts")?;
        super::check_count(self.task_experts, "task_experts")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}
