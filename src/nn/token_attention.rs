//! AITM's attention over each row's few tokens as one CPU kernel with its own backward,
//! instead of a dozen small tensor operations whose backward pads, copies and reduces on
//! one thread.
//!
//! The input is the tokens' product with the fused `[value; key; query]` weights,
//! `(batch * tokens, 3 * width)` without the bias, and the `3 * width` bias. Per row:
//! scores `s_i = k_i . q_i / sqrt(width)`, `a = softmax(s)` over the tokens, output
//! `sum_i a_i v_i`, `(batch, width)`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_kernel::{contiguous, unpack};

/// Rows per parallel task of the bias gradient's column sums: a fixed size, so that the
/// sum's order does not depend on the thread count.
const ROW_BLOCK: usize = 256;

pub struct TokenAttention {
    pub tokens: usize,
    pub width: usize,
}

/// One row's tokens with the bias applied: value, key and query of token `i`.
struct Row<'a> {
    product: &'a [f32],
    bias: &'a [f32],
    width: usize,
}

impl Row<'_> {
    fn part(&self, token: usize, part: usize) -> impl Iterator<Item = f32> + '_ {
        let d = self.width;
        let at = (3 * token + part) * d;
        self.product[at..at + d]
            .iter()
            .zip(&self.bias[part * d..(part + 1) * d])
            .map(|(p, b)| p + b)
    }

    /// The softmax weights over the tokens, as candle_nn's softmax computes them.
    fn attention(&self, tokens: usize) -> Vec<f32> {
        let scale = (self.width as f32).sqrt();
        let scores: Vec<f32> = (0..tokens)
            .map(|i| {
                let dot: f32 = self
                    .part(i, 1)
                    .zip(self.part(i, 2))
                    .map(|(k, q)| k * q)
                    .sum();
                dot / scale
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        exp.iter().map(|e| e / total).collect()
    }
}

impl CustomOp2 for TokenAttention {
    fn name(&self) -> &'static str {
        "token-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (product, bias) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (n, d) = (self.tokens, self.width);
        let stride = 3 * n * d;
        let rows = product.len() / stride;
        let mut out = vec![0f32; rows * d];
        out.par_chunks_mut(d).enumerate().for_each(|(r, out)| {
            let row = Row {
                product: &product[r * stride..(r + 1) * stride],
                bias,
                width: d,
            };
            for (i, a) in row.attention(n).into_iter().enumerate() {
                for (o, v) in out.iter_mut().zip(row.part(i, 0)) {
                    *o += a * v;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, d))))
    }

    fn bwd(
        &self,
        product: &Tensor,
        bias: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = product.apply_op3_no_bwd(
            bias,
            &grad.contiguous()?,
            &TokenAttentionGrad {
                tokens: self.tokens,
                width: self.width,
            },
        )?;
        let [d_product, d_bias] = unpack(&packed, [product.shape(), bias.shape()])?;
        Ok((Some(d_product), Some(d_bias)))
    }
}

/// The backward pass on (product, bias, grad of the output): packed [d product, d bias].
struct TokenAttentionGrad {
    tokens: usize,
    width: usize,
}

impl CustomOp3 for TokenAttentionGrad {
    fn name(&self) -> &'static str {
        "token-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (product, bias, grad) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let (n, d) = (self.tokens, self.width);
        let stride = 3 * n * d;
        let scale = (d as f32).sqrt();
        let mut out = vec![0f32; product.len() + 3 * d];
        let (d_product, d_bias) = out.split_at_mut(product.len());
        d_product
            .par_chunks_mut(stride)
            .enumerate()
            .for_each(|(r, dp)| {
                let row = Row {
                    product: &product[r * stride..(r + 1) * stride],
                    bias,
                    width: d,
                };
                let g = &grad[r * d..(r + 1) * d];
                let a = row.attention(n);
                // d a_i = g . v_i; d s_i = a_i (d a_i - sum_j a_j d a_j).
                let da: Vec<f32> = (0..n)
                    .map(|i| g.iter().zip(row.part(i, 0)).map(|(g, v)| g * v).sum())
                    .collect();
                let mixed: f32 = a.iter().zip(&da).map(|(a, da)| a * da).sum();
                for i in 0..n {
                    let ds = a[i] * (da[i] - mixed) / scale;
                    let token = &mut dp[3 * i * d..3 * (i + 1) * d];
                    let (dv, rest) = token.split_at_mut(d);
                    let (dk, dq) = rest.split_at_mut(d);
                    for (o, g) in dv.iter_mut().zip(g) {
                        *o = a[i] * g;
                    }
                    for (o, q) in dk.iter_mut().zip(row.part(i, 2)) {
                        *o = ds * q;
                    }
                    for (o, k) in dq.iter_mut().zip(row.part(i, 1)) {
                        *o = ds * k;
                    }
                }
            });
        let columns = 3 * d;
        let partial: Vec<Vec<f32>> = d_product
            .par_chunks(ROW_BLOCK * columns)
            .map(|block| {
                let mut sums = vec![0f32; columns];
                for row in block.chunks(columns) {
                    sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
                sums
            })
            .collect();
        for sums in partial {
            d_bias.iter_mut().zip(&sums).for_each(|(s, v)| *s += v);
        }
        Ok((CpuStorage::F32(out), Shape::from(product.len() + columns)))
    }
}

/// `(batch * tokens, 3 width)` product and `3 width` bias -> `(batch, width)`.
pub fn token_attention(product: &Tensor, bias: &Tensor, tokens: usize) -> Result<Tensor> {
    let width = product.dim(1)? / 3;
    product
        .contiguous()?
        .apply_op2(&bias.contiguous()?, TokenAttention { tokens, width })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same attention in candle tensor operations, differentiated by candle.
    fn by_tensor_ops(product: &Tensor, bias: &Tensor, tokens: usize) -> Result<Tensor> {
        let (rows, columns) = product.dims2()?;
        let width = columns / 3;
        let projected = product
            .broadcast_add(bias)?
            .reshape((rows / tokens, tokens, 3, width))?;
        let part = |j: usize| projected.narrow(2, j, 1)?.squeeze(2);
        let (v, k, q) = (part(0)?, part(1)?, part(2)?);
        let scores = ((k * q)?.sum_keepdim(2)? / (width as f64).sqrt())?;
        candle_nn::ops::softmax(&scores, 1)?
            .broadcast_mul(&v)?
            .sum(1)
    }

    #[test]
    fn kernel_matches_tensor_ops_and_their_gradients() -> Result<()> {
        let (batch, tokens, width) = (37, 3, 20);
        crate::nn::assert_same_function(
            [&[batch * tokens, 3 * width], &[3 * width]],
            &|p, b| token_attention(p, b, tokens),
            &|p, b| by_tensor_ops(p, b, tokens),
        )
    }
}
