//! Adam's update as two in-place CPU passes (moments, then parameters) instead of a dozen
//! element-wise tensor operations, each allocating a parameter-sized buffer; on a CUDA
//! device under `train.kernels = "device"`, the same two passes as kernels (kernels/daa.cu).

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};
use rayon::prelude::*;

use super::cpu_kernel::{contiguous, contiguous_mut};
use super::simd::widest;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// Updates the moments `[m; v]` (a `(2, n)` tensor) from the gradient and, for L2 weight
/// decay, the parameter: g = grad + l2 * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2.
pub struct Moments {
    pub beta1: f32,
    pub beta2: f32,
    pub l2: f32,
}

impl InplaceOp3 for Moments {
    fn name(&self) -> &'static str {
        "adam-moments"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (grad, param) = (
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let moments = contiguous_mut(s1, l1, self.name())?;
        let (m, v) = moments.split_at_mut(grad.len());
        m.par_chunks_mut(CHUNK)
            .zip(v.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK).zip(param.par_chunks(CHUNK)))
            .for_each(|((m, v), (grad, param))| {
                update_moments(m, v, grad, param, (self.beta1, self.beta2, self.l2))
            });
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        super::cuda::adam_moments(
            (s1, l1),
            (s2, l2),
            (s3, l3),
            [self.beta1, self.beta2, self.l2],
        )
    }
}

/// p = p (1 - decoupled) - step_size * m / (sqrt(v) / correction2 + eps).
pub struct Apply {
    pub step_size: f32,
    pub correction2: f32,
    pub eps: f32,
    pub decoupled: f32,
}

impl InplaceOp2 for Apply {
    fn name(&self) -> &'static str {
        "adam-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let moments = contiguous(s2, l2, self.name())?;
        let param = contiguous_mut(s1, l1, self.name())?;
        let (m, v) = moments.split_at(param.len());
        let terms = (self.step_size, self.correction2, self.eps, self.decoupled);
        param
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(param, (m, v))| apply_update(param, m, v, terms));
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        super::cuda::adam_apply(
            (s1, l1),
            (s2, l2),
            [self.step_size, self.correction2, self.eps, self.decoupled],
        )
    }
}

widest! {
    /// The moments' update for one chunk; `terms` = (beta1, beta2, l2).
    fn update_moments(m: &mut [f32], v: &mut [f32], grad: &[f32], param: &[f32], terms: (f32, f32, f32)) {
        let (beta1, beta2, l2) = terms;
        for (((m, v), &grad), &p) in m.iter_mut().zip(v.iter_mut()).zip(grad).zip(param) {
            let g = grad + l2 * p;
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
        }
    }
}

widest! {
    /// The parameters' update for one chunk; `terms` = (step size, correction2, eps, decoupled).
    fn apply_update(param: &mut [f32], m: &[f32], v: &[f32], terms: (f32, f32, f32, f32)) {
        let (step_size, correction2, eps, decoupled) = terms;
        for ((p, &m), &v) in param.iter_mut().zip(m).zip(v) {
            let denom = v.sqrt() / correction2 + eps;
            *p = *p * (1.0 - decoupled) - step_size * (m / denom);
        }
    }
}
