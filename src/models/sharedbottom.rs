//! Shared-Bottom: one bottom MLP shared by the tasks, one tower per task.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub bottom_dims: Vec<usize>,
    pub tower_dims: Vec<usize>,
    pub dropout: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        super::check_dims(&self.bottom_dims, "bottom_dims")?;
        super::check_tower(&self.tower_dims, self.dropout)
    }
}
