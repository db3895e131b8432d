//! Adaptive Information Transfer Multi-task (Xi et al., KDD 2021): a bottom per task; each later task
//! attends over the transferred previous-task feature and its own.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate};
use candle_core::{Result, Tensor};

use super::{Backbone, BackboneConfig, Dims, Output};
use crate::nn::embedding::InputLayer;
use crate::nn::linear::Linear;
use crate::nn::mlp::Mlp;
use crate::nn::{Mode, Params};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub bottom_dims: Vec<usize>,
    pub tower_dims: Vec<usize>,
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
    value: Linear,
    key: Linear,
    query: Linear,
    towers: Mlp,
}

impl BackboneConfig for Config {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>> {
        let d = *self.bottom_dims.last().expect("validated non-empty");
        let square =
            |params: &mut Params, name: &str| Linear::new(params, &[name.to_string()], d, d);
        Ok(Box::new(Aitm {
            input: InputLayer::standard(params, dims)?,
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
            value: square(params, "h1")?,
            key: square(params, "h2")?,
            query: square(params, "h3")?,
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
            let tokens = Tensor::stack(&[&transferred, &features[i]], 1)?;
            let (batch, n, d) = tokens.dims3()?;
            let flat = tokens.reshape((batch * n, d))?;
            let project = |l: &Linear| l.forward_shared(&flat)?.reshape((batch, n, d));
            let (v, k, q) = (
                project(&self.value)?,
                project(&self.key)?,
                project(&self.query)?,
            );
            let scores = ((k * q)?.sum_keepdim(2)? / (d as f64).sqrt())?;
            let attention = candle_nn::ops::softmax(&scores, 1)?;
            features[i] = attention.broadcast_mul(&v)?.sum(1)?;
        }
        let towers = self
            .towers
            .forward_each(&Tensor::stack(&features, 0)?, mode)?;
        super::from_logits(towers, Tensor::cat(&features, 1)?)
    }

    fn feature_width(&self) -> usize {
        self.towers_count() * self.bottoms.width()
    }
}

impl Aitm {
    fn towers_count(&self) -> usize {
        self.transfer.len() + 1
    }
}
