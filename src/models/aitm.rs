//! Adaptive Information Transfer Multi-task (Xi et al., KDD 2021): a bottom per task; each later task
//! attends over the transferred previous-task feature and its own.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output};
use crate::nn::embedding::InputLayer;
use crate::nn::linear::Linear;
use crate::nn::mlp::Mlp;
use crate::nn::token_attention::token_attention;
use crate::nn::{Mode, Params, fused_kernels};

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

pub struct Aitm {
    input: InputLayer,
    bottoms: Mlp,
    transfer: Vec<Linear>,
    /// The value, key and query projections (`h1`, `h2`, `h3`) fused into one product.
    attention: Linear,
    towers: Mlp,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let d = *self.bottom_dims.last().expect("validated non-empty");
        let square =
            |params: &mut Params, name: &str| Linear::new(params, &[name.to_string()], d, d);
        Ok(Box::new(Aitm {
            input: dims.input_layer(params)?,
            bottoms: super::bottoms(
                params,
                dims,
                "bottom",
                dims.tasks,
                &self.bottom_dims,
                self.dropout,
            )?,
            transfer: (0..dims.tasks.saturating_sub(1))
                .map(|i| square(params, &format!("g.{i}")))
                .collect::<Result<_>>()?,
            attention: Linear::new(params, &["h1", "h2", "h3"].map(String::from), d, d)?,
            towers: super::towers(params, dims, d, &self.tower_dims, self.dropout)?,
        }))
    }
}

impl Backbone for Aitm {
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output> {
        let emb = self.input.flat(categorical, numerical)?;
        let bottoms = self.bottoms.forward_shared(&emb, mode)?;
        let tasks = bottoms.dim(0)?;
        let mut features: Vec<Tensor> =
            (0..tasks).map(|t| bottoms.get(t)).collect::<Result<_>>()?;
        for i in 1..tasks {
            let transferred = self.transfer[i - 1].forward_shared(&features[i - 1])?;
            features[i] = self.attend(&Tensor::stack(&[&transferred, &features[i]], 1)?)?;
        }
        let towers = self
            .towers
            .forward_each(&Tensor::stack(&features, 0)?, mode)?;
        super::from_logits(towers, Tensor::cat(&features, 1)?)
    }

    fn feature_width(&self) -> usize {
        self.towers_count() * self.bottoms.width()
    }

    fn feature_blocks(&self) -> usize {
        self.towers_count()
    }

    fn body(&self) -> &'static [&'static str] {
        &["embedding", "numerical_layer", "bottom"]
    }
}

impl Aitm {
    fn towers_count(&self) -> usize {
        self.transfer.len() + 1
    }

    /// Self-attention over each row's tokens `(B, n, d)` -> `(B, d)`: the fused CPU kernel,
    /// or the same computation in tensor operations elsewhere.
    fn attend(&self, tokens: &Tensor) -> Result<Tensor> {
        let (batch, n, d) = tokens.dims3()?;
        let product = self
            .attention
            .product_shared(&tokens.reshape((batch * n, d))?)?;
        if fused_kernels(tokens.device()) {
            return token_attention(&product, self.attention.bias(), n);
        }
        let projected = product
            .broadcast_add(self.attention.bias())?
            .reshape((batch, n, 3, d))?;
        let project = |j: usize| projected.narrow(2, j, 1)?.squeeze(2);
        let (v, k, q) = (project(0)?, project(1)?, project(2)?);
        let scores = ((k * q)?.sum_keepdim(2)? / (d as f64).sqrt())?;
        let attention = candle_nn::ops::softmax(&scores, 1)?;
        attention.broadcast_mul(&v)?.sum(1)
    }
}
