//! The input layer every backbone shares: one embedding table over all categorical fields
//! (per-field row offsets) plus a Linear map of the numerical columns as one extra field.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};

pub const EMBEDDINGS: &[Kind<()>] = &[Kind::new("field_embedding", typed::<Config>(), ())];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    XavierUniform,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
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

/// The input layer: categorical fields through one embedding table (indices carry their
/// field offsets), the numerical columns through Linear(n -> dim) as one more field.
/// PyTorch names: `{prefix}embedding.embedding.weight`, `{prefix}numerical_layer.*`.
#[derive(Debug, Clone)]
pub struct InputLayer {
    table: candle_core::Var,
    numerical: super::linear::Linear,
    dim: usize,
}

impl InputLayer {
    /// `embedding` and `numerical_layer` are the PyTorch module paths.
    pub fn new(
        params: &mut super::Params,
        embedding: &str,
        numerical_layer: &str,
        cardinalities: &[u32],
        numerical: usize,
        config: &Config,
    ) -> candle_core::Result<Self> {
        use super::params::{Init, Role};
        let rows = cardinalities.iter().map(|&c| c as usize).sum();
        let init = match config.init {
            self::Init::XavierUniform => Init::xavier(rows, config.dim),
        };
        let table = params.add(
            &[format!("{embedding}.embedding.weight")],
            &[rows, config.dim],
            init,
            Role::Trainable,
        )?;
        Ok(InputLayer {
            table,
            numerical: super::linear::Linear::new(
                params,
                &[numerical_layer.to_string()],
                numerical,
                config.dim,
            )?,
            dim: config.dim,
        })
    }

    /// [`Self::forward`] flattened to `(B, (fields + 1) * dim)`.
    pub fn flat(
        &self,
        categorical: &candle_core::Tensor,
        numerical: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        self.forward(categorical, numerical)?.flatten_from(1)
    }

    /// `(B, fields)` indices and `(B, numerical)` values -> `(B, fields + 1, dim)`.
    pub fn forward(
        &self,
        categorical: &candle_core::Tensor,
        numerical: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        let (batch, fields) = categorical.dims2()?;
        let embedded =
            if super::device_kernels(categorical.device()) && batch <= super::lookup::MAX_BATCH {
                // A deterministic backward (a segment sum, not candle's serial index_add).
                self.table
                    .as_tensor()
                    .apply_op2(&categorical.contiguous()?, super::lookup::Lookup)?
            } else {
                self.table.embedding(&categorical.flatten_all()?)?
            }
            .reshape((batch, fields, self.dim))?;
        let numeric = self.numerical.forward_shared(numerical)?.unsqueeze(1)?;
        candle_core::Tensor::cat(&[embedded, numeric], 1)
    }
}
