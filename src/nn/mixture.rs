//! The gated mixture of experts as one CPU kernel with its own backward:
//! `out[b, g, :] = sum_e gates[b, g, e] * experts[e, b, :]`, with experts `(E, B, D)` and
//! gates `(B, G, E)`. As tensor operations it needs the experts transposed to `(B, E, D)`
//! (a copy), one tiny product per row, and copies back in the backward pass. On a CUDA
//! device under `train.kernels = "device"` the same sums run as kernels (kernels/daa.cu).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_kernel::{contiguous, unpack};

#[derive(Clone, Copy)]
struct Mixture {
    experts: usize,
    batch: usize,
    width: usize,
    gates: usize,
}

/// `sum_i a_i b_i` in eight interleaved partial sums (a fixed order, vectorisable).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((p, x), y) in partial.iter_mut().zip(x).zip(y) {
            *p += x * y;
        }
    }
    partial.iter().sum::<f32>() + tail
}

impl Mixture {
    fn expert_row<'a>(&self, experts: &'a [f32], e: usize, b: usize) -> &'a [f32] {
        let at = (e * self.batch + b) * self.width;
        &experts[at..at + self.width]
    }
}

impl CustomOp2 for Mixture {
    fn name(&self) -> &'static str {
        "mixture"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (experts, gates) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (n_e, n_g, d) = (self.experts, self.gates, self.width);
        let mut out = vec![0f32; self.batch * n_g * d];
        out.par_chunks_mut(d).enumerate().for_each(|(row, out)| {
            let b = row / n_g;
            for (e, &w) in gates[row * n_e..(row + 1) * n_e].iter().enumerate() {
                for (o, x) in out.iter_mut().zip(self.expert_row(experts, e, b)) {
                    *o += w * x;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((self.batch, n_g, d))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let dims = [self.experts, self.batch, self.gates, self.width];
        let shape = Shape::from((self.batch, self.gates, self.width));
        let inputs = [(s1, l1), (s2, l2)];
        let out = super::cuda::mixture("mixture_forward", dims, &inputs, shape.elem_count())?;
        Ok((out, shape))
    }

    fn bwd(
        &self,
        experts: &Tensor,
        gates: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = experts.apply_op3_no_bwd(gates, &grad.contiguous()?, &MixtureGrad(*self))?;
        let [d_experts, d_gates] = unpack(&packed, [experts.shape(), gates.shape()])?;
        Ok((Some(d_experts), Some(d_gates)))
    }
}

/// The backward pass on (experts, gates, grad of the output): packed [d experts, d gates].
struct MixtureGrad(Mixture);

impl CustomOp3 for MixtureGrad {
    fn name(&self) -> &'static str {
        "mixture-grad"
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
        let (experts, gates, grad) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let op = &self.0;
        let (n_e, n_b, n_g, d) = (op.experts, op.batch, op.gates, op.width);
        let mut out = vec![0f32; experts.len() + gates.len()];
        let (d_experts, d_gates) = out.split_at_mut(experts.len());
        // d experts[e, b, :] = sum_g gates[b, g, e] grad[b, g, :].
        d_experts
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(row, out)| {
                let (e, b) = (row / n_b, row % n_b);
                for g in 0..n_g {
                    let w = gates[(b * n_g + g) * n_e + e];
                    let at = (b * n_g + g) * d;
                    for (o, x) in out.iter_mut().zip(&grad[at..at + d]) {
                        *o += w * x;
                    }
                }
            });
        // d gates[b, g, e] = grad[b, g, :] . experts[e, b, :].
        d_gates
            .par_chunks_mut(n_e)
            .enumerate()
            .for_each(|(row, out)| {
                let b = row / n_g;
                let g = &grad[row * d..(row + 1) * d];
                for (e, o) in out.iter_mut().enumerate() {
                    *o = dot(g, op.expert_row(experts, e, b));
                }
            });
        Ok((
            CpuStorage::F32(out),
            Shape::from(experts.len() + gates.len()),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let op = &self.0;
        let dims = [op.experts, op.batch, op.gates, op.width];
        let inputs = [(s1, l1), (s2, l2), (s3, l3)];
        let n = l1.shape().elem_count() + l2.shape().elem_count();
        let out = super::cuda::mixture("mixture_backward", dims, &inputs, n)?;
        Ok((out, Shape::from(n)))
    }
}

/// Mixes experts `(E, B, D)` with gate weights `(B, G, E)`: `(B, G, D)`.
pub fn mixture(experts: &Tensor, gates: &Tensor) -> Result<Tensor> {
    let (n_e, batch, width) = experts.dims3()?;
    let (_, n_g, _) = gates.dims3()?;
    experts.contiguous()?.apply_op2(
        &gates.contiguous()?,
        Mixture {
            experts: n_e,
            batch,
            width,
            gates: n_g,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_matches_the_batched_product_and_its_gradients() -> Result<()> {
        let (n_e, batch, width, n_g) = (5, 23, 19, 3);
        crate::nn::assert_same_function(
            [&[n_e, batch, width], &[batch, n_g, n_e]],
            &|x, g| mixture(x, g),
            &|x, g| g.matmul(&x.transpose(0, 1)?.contiguous()?),
        )
    }
}
