//! MTReclib's MultiLayerPerceptron, `count` of them fused and run as one batched product:
//! per hidden size Linear -> BatchNorm1d -> ReLU -> Dropout, then optionally Linear(-> 1).
//! PyTorch names: `{prefix}.mlp.{4 l}` (Linear), `{prefix}.mlp.{4 l + 1}` (BatchNorm),
//! `{prefix}.mlp.{4 L}` (output Linear).

use candle_core::{Result, Tensor};

use super::Mode;
use super::batchnorm::BatchNorm;
use super::linear::Linear;

#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<(Linear, BatchNorm)>,
    output: Option<Linear>,
    dropout: f64,
}

impl Mlp {
    pub fn new(
        params: &mut super::Params,
        prefixes: &[String],
        input: usize,
        dims: &[usize],
        dropout: f64,
        output_layer: bool,
    ) -> Result<Self> {
        let at = |index: usize| {
            prefixes
                .iter()
                .map(|p| format!("{p}.mlp.{index}"))
                .collect::<Vec<_>>()
        };
        let mut layers = Vec::new();
        let mut width = input;
        for (l, &dim) in dims.iter().enumerate() {
            layers.push((
                Linear::new(params, &at(4 * l), width, dim)?,
                BatchNorm::new(params, &at(4 * l + 1), dim)?,
            ));
            width = dim;
        }
        let output = output_layer
            .then(|| Linear::new(params, &at(4 * dims.len()), width, 1))
            .transpose()?;
        Ok(Mlp {
            layers,
            output,
            dropout,
        })
    }

    /// Width of the last hidden layer (the output when there is no output layer).
    pub fn width(&self) -> usize {
        self.layers
            .last()
            .map(|(_, norm)| norm.features())
            .unwrap_or(0)
    }

    /// The same input `(B, in)` for every fused MLP; returns `(count, B, out)`.
    pub fn forward_shared(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let (first, norm) = &self.layers[0];
        let h = norm.norm_relu_dropout(
            &first.product_shared(x)?,
            first.bias(),
            0,
            self.dropout,
            mode,
        )?;
        self.rest(h, 1, mode)
    }

    /// One input per fused MLP, `(count, B, in)`; returns `(count, B, out)`.
    pub fn forward_each(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.rest(x.clone(), 0, mode)
    }

    fn rest(&self, mut h: Tensor, from: usize, mode: &mut Mode<'_>) -> Result<Tensor> {
        for (linear, norm) in &self.layers[from..] {
            h = norm.norm_relu_dropout(
                &linear.product_each(&h)?,
                linear.bias(),
                1,
                self.dropout,
                mode,
            )?;
        }
        match &self.output {
            Some(out) => out.forward_each(&h),
            None => Ok(h),
        }
    }
}

/// Checks a list of hidden sizes: non-empty, each positive.
pub fn check_dims(
    dims: &[usize],
    key: &str,
) -> std::result::Result<(), crate::config::check::Invalid> {
    crate::config::check::ensure(
        !dims.is_empty() && dims.iter().all(|&d| d > 0),
        key,
        "must be a non-empty list of positive sizes",
    )
}
