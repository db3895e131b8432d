//! The input layer every backbone shares: one embedding table over all categorical fields
//! (per-field row offsets) plus a Linear map of the numerical columns as one extra field.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};
use crate::registry::{KindEntry, typed};

pub const EMBEDDINGS: &[KindEntry] = &[KindEntry::new("field_embedding", typed::<Config>)];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    XavierUniform,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    /// Width of each field's embedding (and of the numerical field).
    pub dim: usize,
    /// Distribution of the embedding table's initial weights.
    pub init: Init,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        ensure(self.dim > 0, "dim", "must be positive")
    }
}
