//! Linear layers, `count` of them fused: one weight tensor of `count * out` rows.

use candle_core::{Result, Tensor, Var};

use super::params::{Init, Params, Role};

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Var,
    bias: Var,
    count: usize,
    out: usize,
}

impl Linear {
    /// One layer per name prefix (`prefix.weight`, `prefix.bias`), PyTorch's default init.
    pub fn new(params: &mut Params, prefixes: &[String], input: usize, out: usize) -> Result<Self> {
        let names = |suffix: &str| {
            prefixes
                .iter()
                .map(|p| format!("{p}.{suffix}"))
                .collect::<Vec<_>>()
        };
        params.outputs(prefixes.len() * out);
        Ok(Linear {
            weight: params.add(
                &names("weight"),
                &[out, input],
                Init::linear(input),
                Role::Trainable,
            )?,
            bias: params.add(&names("bias"), &[out], Init::linear(input), Role::Trainable)?,
            count: prefixes.len(),
            out,
        })
    }

    /// The same input for every layer: (B, in) -> (B, count * out).
    pub fn forward_shared(&self, x: &Tensor) -> Result<Tensor> {
        self.product_shared(x)?.broadcast_add(self.bias.as_tensor())
    }

    /// One input per layer: (count, B, in) -> (count, B, out).
    pub fn forward_each(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.reshape((self.count, 1, self.out))?;
        self.product_each(x)?.broadcast_add(&b)
    }

    /// [`Self::forward_shared`] without the bias (for a layer a BatchNorm follows).
    pub fn product_shared(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)
    }

    /// [`Self::forward_each`] without the bias.
    pub fn product_each(&self, x: &Tensor) -> Result<Tensor> {
        let input = self.weight.dim(1)?;
        x.matmul(
            &self
                .weight
                .reshape((self.count, self.out, input))?
                .transpose(1, 2)?,
        )
    }

    /// The `(count * out)` biases.
    pub fn bias(&self) -> &Tensor {
        self.bias.as_tensor()
    }
}
