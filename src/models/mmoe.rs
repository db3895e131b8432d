//! Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): expert MLPs, one softmax gate per task.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub expert_dims: Vec<usize>,
    pub experts: usize,
    pub tower_dims: Vec<usize>,
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        super::check_dims(&self.expert_dims, "expert_dims")?;
        super::check_count(self.experts, "experts")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}
