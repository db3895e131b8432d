//! Adam's update as two in-place CPU passes (moments, then parameters) instead of a dozen
//! element-wise tensor operations, each allocating a parameter-sized buffer.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(candle_core::Error::Msg(
            "fused adam: expects contiguous f32".into(),
        )),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => Err(candle_core::Error::Msg(
            "fused adam: expects contiguous f32".into(),
        )),
    }
}

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
        let (grad, param) = (slice(s2, l2)?, slice(s3, l3)?);
        let moments = slice_mut(s1, l1)?;
        let (m, v) = moments.split_at_mut(grad.len());
        for i in 0..grad.len() {
            let g = grad[i] + self.l2 * param[i];
            m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g;
            v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g * g;
        }
        Ok(())
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
        let moments = slice(s2, l2)?;
        let param = slice_mut(s1, l1)?;
        let (m, v) = moments.split_at(param.len());
        for i in 0..param.len() {
            let denom = v[i].sqrt() / self.correction2 + self.eps;
            param[i] = param[i] * (1.0 - self.decoupled) - self.step_size * (m[i] / denom);
        }
        Ok(())
    }
}
