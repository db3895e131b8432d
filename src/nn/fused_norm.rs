//! Training-mode BatchNorm -> ReLU -> dropout as one CPU kernel with its own backward, in
//! a few passes over memory instead of a score of candle element-wise ops. The input is
//! `(groups, batch, features)` (groups = fused layers), normalised over `batch`; the output
//! can put each of `split` equal parts of the features in a plane of its own (the layers
//! fused into one shared product), saving a transposing copy each way.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_kernel::{contiguous, unpack};
use super::simd::widest;

const EPS: f64 = 1e-5;
/// Features per parallel task of the reductions.
const FEATURE_BLOCK: usize = 256;

/// Batch statistics of the last forward pass: per (group, feature) mean and 1/std.
#[derive(Debug, Default)]
pub struct Stats {
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    inverse_std: Vec<f32>,
    /// On a CUDA device: `[mean | variance | 1/std]` there (the vectors above stay empty).
    pub on_device: Option<Tensor>,
}

pub struct NormReluDropout {
    pub groups: usize,
    pub batch: usize,
    pub features: usize,
    /// Output planes per group: the output is `(groups * split, batch, features / split)`.
    pub split: usize,
    pub dropout: Option<Dropout>,
    pub stats: Arc<Mutex<Stats>>,
}

/// Dropout's draw for one forward pass.
#[derive(Clone)]
pub struct Dropout {
    /// Per element of the input: 0 or `kept`.
    pub mask: Mask,
    /// The factor of a kept unit, 1 / (1 - p).
    pub kept: f32,
}

/// A dropout mask where the kernel runs: on the host for the CPU kernel, on the device for
/// its CUDA twin.
#[derive(Clone)]
pub enum Mask {
    Host(Arc<Vec<f32>>),
    Device(Tensor),
}

fn wrong_device(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: an input on another device"))
}

impl Dropout {
    fn host(&self, op: &str) -> Result<&[f32]> {
        match &self.mask {
            Mask::Host(mask) => Ok(mask),
            Mask::Device(mask) => Err(candle_core::Error::Msg(format!(
                "{op}: the dropout mask is on {:?}, the kernel runs on the CPU",
                mask.device().location()
            ))),
        }
    }
}

impl NormReluDropout {
    /// The factor a kept unit's gradient takes: 1 without dropout.
    fn kept(&self) -> f32 {
        self.dropout.as_ref().map_or(1.0, |d| d.kept)
    }

    /// Features per output plane.
    fn segment(&self) -> usize {
        self.features / self.split
    }

    /// Where row `row` of group `group`'s part `part` starts in the output.
    fn output_row(&self, group: usize, part: usize, row: usize) -> usize {
        ((group * self.split + part) * self.batch + row) * self.segment()
    }

    /// (group, part, first feature, last feature) blocks that cover every column once.
    fn blocks(&self) -> Vec<(usize, usize, usize, usize)> {
        let segment = self.segment();
        (0..self.groups)
            .flat_map(|g| {
                (0..self.split).flat_map(move |c| {
                    (c * segment..(c + 1) * segment)
                        .step_by(FEATURE_BLOCK)
                        .map(move |f| (g, c, f, (f + FEATURE_BLOCK).min((c + 1) * segment)))
                })
            })
            .collect()
    }

    /// Per column, two sums over the batch accumulated by `add(accumulators, first column,
    /// input range, output start)` for each block's rows; blocks run in parallel, rows are
    /// contiguous slices of the input and of the output.
    fn column_sums(
        &self,
        add: impl Fn(&mut [f64], &mut [f64], usize, std::ops::Range<usize>, usize) + Sync,
    ) -> (Vec<f64>, Vec<f64>) {
        let (features, batch) = (self.features, self.batch);
        let parts: Vec<_> = self
            .blocks()
            .into_par_iter()
            .map(|(g, c, f0, f1)| {
                let mut a = vec![0f64; f1 - f0];
                let mut b = vec![0f64; f1 - f0];
                let column = g * features + f0;
                for row in 0..batch {
                    let start = (g * batch + row) * features;
                    let output = self.output_row(g, c, row) + f0 - c * self.segment();
                    add(&mut a, &mut b, column, start + f0..start + f1, output);
                }
                (column, a, b)
            })
            .collect();
        let mut first = vec![0f64; self.groups * features];
        let mut second = vec![0f64; self.groups * features];
        for (at, a, b) in parts {
            first[at..at + a.len()].copy_from_slice(&a);
            second[at..at + b.len()].copy_from_slice(&b);
        }
        (first, second)
    }
}

impl CustomOp3 for NormReluDropout {
    fn name(&self) -> &'static str {
        "norm-relu-dropout"
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
        let x = contiguous(s1, l1, self.name())?;
        let (weight, bias) = (
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let (g_n, b_n, f_n) = (self.groups, self.batch, self.features);
        let (sum, squares) = self.column_sums(|a, b, _, range, _| add_moments(a, b, &x[range]));
        let mean: Vec<f64> = sum.iter().map(|s| s / b_n as f64).collect();
        let variance: Vec<f64> = squares
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / b_n as f64 - m * m).max(0.0))
            .collect();
        let inverse_std: Vec<f32> = variance
            .iter()
            .map(|v| (1.0 / (v + EPS).sqrt()) as f32)
            .collect();
        let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        // y = max(0, x * scale + shift) * mask, with scale = w / std and shift = b - mean * scale.
        let scale: Vec<f32> = inverse_std.iter().zip(weight).map(|(i, w)| i * w).collect();
        let shift: Vec<f32> = bias
            .iter()
            .zip(&mean32)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let mask = match &self.dropout {
            Some(dropout) => Some(dropout.host(self.name())?),
            None => None,
        };
        let segment = self.segment();
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(segment)
            .enumerate()
            .for_each(|(plane_row, out_row)| {
                let (plane, row) = (plane_row / b_n, plane_row % b_n);
                let (g, c) = (plane / self.split, plane % self.split);
                let s = g * f_n + c * segment;
                let at = (g * b_n + row) * f_n + c * segment..;
                let at = at.start..at.start + segment;
                let mask = mask.map(|m| &m[at.clone()]);
                let (scale, shift) = (&scale[s..s + segment], &shift[s..s + segment]);
                normalise_row(out_row, &x[at], scale, shift, mask);
            });
        *self.stats.lock().expect("statistics lock") = Stats {
            mean: mean32,
            variance: variance.iter().map(|&v| v as f32).collect(),
            inverse_std,
            on_device: None,
        };
        Ok((
            CpuStorage::F32(out),
            Shape::from((g_n * self.split, b_n, segment)),
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
        let mask = match &self.dropout {
            Some(Dropout {
                mask: Mask::Device(mask),
                ..
            }) => Some(mask.storage_and_layout()),
            Some(_) => return Err(wrong_device(self.name())),
            None => None,
        };
        let mask = match &mask {
            Some((storage, layout)) => match &**storage {
                candle_core::Storage::Cuda(storage) => Some((storage, *layout)),
                _ => return Err(wrong_device(self.name())),
            },
            None => None,
        };
        let dims = [self.groups, self.batch, self.features, self.split];
        let (out, stats) = super::cuda::norm_forward(dims, [(s1, l1), (s2, l2), (s3, l3)], mask)?;
        let columns = self.groups * self.features;
        self.stats.lock().expect("statistics lock").on_device = Some(Tensor::from_storage(
            candle_core::Storage::Cuda(stats),
            3 * columns,
            candle_core::op::BackpropOp::none(),
            false,
        ));
        let shape = (self.groups * self.split, self.batch, self.segment());
        Ok((out, Shape::from(shape)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let packed = x.apply_op3_no_bwd(
            &y.contiguous()?,
            &grad.contiguous()?,
            &NormReluDropoutGrad {
                forward: NormReluDropout {
                    groups: self.groups,
                    batch: self.batch,
                    features: self.features,
                    split: self.split,
                    dropout: self.dropout.clone(),
                    stats: self.stats.clone(),
                },
                weight: weight.clone(),
            },
        )?;
        let [dx, dw, db] = unpack(&packed, [x.shape(), weight.shape(), weight.shape()])?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// The backward pass of [`NormReluDropout`] on (x, y, grad of y): packed [dx, dw, db].
struct NormReluDropoutGrad {
    forward: NormReluDropout,
    weight: Tensor,
}

impl CustomOp3 for NormReluDropoutGrad {
    fn name(&self) -> &'static str {
        "norm-relu-dropout-grad"
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
        let (x, y, grad) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let op = &self.forward;
        let (g_n, b_n, f_n) = (op.groups, op.batch, op.features);
        let stats = op.stats.lock().expect("statistics lock");
        let (weight, weight_layout) = self.weight.storage_and_layout();
        let weight = match &*weight {
            candle_core::Storage::Cpu(w) => contiguous(w, weight_layout, self.name())?,
            _ => return Err(wrong_device(self.name())),
        };
        let (mean, inverse_std) = (&stats.mean, &stats.inverse_std);
        let columns = |column: usize, n: usize| column..column + n;
        let (db, dw) = op.column_sums(|a, b, column, range, output| {
            let (at, out) = (columns(column, a.len()), columns(output, a.len()));
            add_gradient_sums(
                a,
                b,
                (&x[range], &y[out.clone()], &grad[out]),
                (&mean[at.clone()], &inverse_std[at]),
                op.kept(),
            )
        });
        // dx = (w / std) (dz - mean(dz) - x_hat mean(dz x_hat)).
        let n = b_n as f64;
        let gain: Vec<f32> = inverse_std
            .iter()
            .zip(weight.iter())
            .map(|(i, w)| i * w)
            .collect();
        let mean_dz: Vec<f32> = db.iter().map(|v| (v / n) as f32).collect();
        let mean_dz_xhat: Vec<f32> = dw.iter().map(|v| (v / n) as f32).collect();
        let mut out = vec![0f32; x.len() + 2 * g_n * f_n];
        let (dx, sums) = out.split_at_mut(x.len());
        let segment = op.segment();
        dx.par_chunks_mut(f_n)
            .enumerate()
            .for_each(|(group_row, dx_row)| {
                let (g, row) = (group_row / b_n, group_row % b_n);
                for (part, dx) in dx_row.chunks_mut(segment).enumerate() {
                    let at = columns(group_row * f_n + part * segment, segment);
                    let out = columns(op.output_row(g, part, row), segment);
                    let c = columns(g * f_n + part * segment, segment);
                    input_gradient_row(
                        dx,
                        (&x[at], &y[out.clone()], &grad[out]),
                        (&mean[c.clone()], &inverse_std[c.clone()]),
                        (&gain[c.clone()], &mean_dz[c.clone()], &mean_dz_xhat[c]),
                        op.kept(),
                    )
                }
            });
        let (dw_out, db_out) = sums.split_at_mut(g_n * f_n);
        dw_out.iter_mut().zip(&dw).for_each(|(o, v)| *o = *v as f32);
        db_out.iter_mut().zip(&db).for_each(|(o, v)| *o = *v as f32);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * g_n * f_n)))
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
        let op = &self.forward;
        let stats = op.stats.lock().expect("statistics lock");
        let stats = stats
            .on_device
            .as_ref()
            .ok_or_else(|| wrong_device(self.name()))?
            .storage_and_layout();
        let weight = self.weight.storage_and_layout();
        let (candle_core::Storage::Cuda(stats_s), candle_core::Storage::Cuda(weight_s)) =
            (&*stats.0, &*weight.0)
        else {
            return Err(wrong_device(self.name()));
        };
        let dims = [op.groups, op.batch, op.features, op.split];
        let packed = super::cuda::norm_backward(
            dims,
            op.kept(),
            [(s1, l1), (s2, l2), (s3, l3)],
            (stats_s, stats.1),
            (weight_s, weight.1),
        )?;
        let n = l1.shape().elem_count() + 2 * op.groups * op.features;
        Ok((packed, Shape::from(n)))
    }
}

widest! {
    /// Adds one row's values to `sum` and their squares to `squares`, per column.
    fn add_moments(sum: &mut [f64], squares: &mut [f64], x: &[f32]) {
        for ((s, q), &v) in sum.iter_mut().zip(squares.iter_mut()).zip(x) {
            let v = f64::from(v);
            *s += v;
            *q += v * v;
        }
    }
}

widest! {
    /// One row of `max(0, x * scale + shift) * mask`.
    fn normalise_row(out: &mut [f32], x: &[f32], scale: &[f32], shift: &[f32], mask: Option<&[f32]>) {
        let affine = out.iter_mut().zip(x).zip(scale).zip(shift);
        match mask {
            Some(mask) => {
                for ((((o, &v), &a), &c), &m) in affine.zip(mask) {
                    *o = (v * a + c).max(0.0) * m;
                }
            }
            None => {
                for (((o, &v), &a), &c) in affine {
                    *o = (v * a + c).max(0.0);
                }
            }
        }
    }
}

/// The gradient reaching the normalised value, through dropout's scale and ReLU's gate:
/// `y > 0` exactly where the unit was kept (its mask value is `kept`) and active.
#[inline(always)]
fn gated(y: f32, grad: f32, kept: f32) -> f32 {
    if y > 0.0 { grad * kept } else { 0.0 }
}

widest! {
    /// Adds one row's `dz` to `dz_sum` and `dz * x_hat` to `dz_xhat_sum`, per column, from
    /// (x, y, grad of y) and the batch (mean, 1/std).
    fn add_gradient_sums(
        dz_sum: &mut [f64],
        dz_xhat_sum: &mut [f64],
        data: (&[f32], &[f32], &[f32]),
        stats: (&[f32], &[f32]),
        kept: f32,
    ) {
        let ((x, y, grad), (mean, inverse_std)) = (data, stats);
        let rows = x.iter().zip(y).zip(grad).zip(mean).zip(inverse_std);
        for ((a, b), ((((&x, &y), &g), &m), &s)) in dz_sum.iter_mut().zip(dz_xhat_sum.iter_mut()).zip(rows) {
            let d = gated(y, g, kept);
            *a += f64::from(d);
            *b += f64::from(d * (x - m) * s);
        }
    }
}

widest! {
    /// One row of `dx = gain (dz - mean(dz) - x_hat mean(dz x_hat))`, gain = w / std.
    fn input_gradient_row(
        dx: &mut [f32],
        data: (&[f32], &[f32], &[f32]),
        stats: (&[f32], &[f32]),
        terms: (&[f32], &[f32], &[f32]),
        kept: f32,
    ) {
        let ((x, y, grad), (mean, inverse_std), (gain, mean_dz, mean_dz_xhat)) = (data, stats, terms);
        let n = dx.len();
        let (x, y, grad, mean, inverse_std) = (&x[..n], &y[..n], &grad[..n], &mean[..n], &inverse_std[..n]);
        let (gain, mean_dz, mean_dz_xhat) = (&gain[..n], &mean_dz[..n], &mean_dz_xhat[..n]);
        for (k, o) in dx.iter_mut().enumerate() {
            let x_hat = (x[k] - mean[k]) * inverse_std[k];
            *o = gain[k] * (gated(y[k], grad[k], kept) - mean_dz[k] - x_hat * mean_dz_xhat[k]);
        }
    }
}
