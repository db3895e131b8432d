//! MetaHeac (Zhu et al., KDD 2021): experts mixed by a task-conditioned gate, and critic towers
//! mixed by a second gate; a task's prediction is the gated mean of the critics' probabilities.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub expert_dims: Vec<usize>,
    pub experts: usize,
    pub critics: usize,
    pub tower_dims: Vec<usize>,
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        super::check_dims(&self.expert_dims, "expert_dims")?;
        super::check_count(self.experts, "experts")?;
        super::check_count(self.critics, "critics")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}
