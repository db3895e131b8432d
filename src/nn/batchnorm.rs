//! BatchNorm1d with PyTorch's semantics: in training, normalise with the batch mean and
//! biased variance and update the running statistics (momentum 0.1) with the unbiased
//! variance; in evaluation, normalise with the running statistics. `count` fused layers of
//! `features` each.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{Result, Tensor, Var};

use super::fused_norm::{Dropout, Mask, NormReluDropout, Stats};
use super::params::{Init, Params, Role};
use super::{Mode, dropout, dropout_mask, dropout_mask_on, dropout_scale};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

#[derive(Debug, Clone)]
pub struct BatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    tracked: Arc<AtomicI64>,
    count: usize,
}

impl BatchNorm {
    pub fn new(params: &mut Params, prefixes: &[String], features: usize) -> Result<Self> {
        let names = |suffix: &str| {
            prefixes
                .iter()
                .map(|p| format!("{p}.{suffix}"))
                .collect::<Vec<_>>()
        };
        Ok(BatchNorm {
            weight: params.add(
                &names("weight"),
                &[features],
                Init::Constant(1.0),
                Role::Trainable,
            )?,
            bias: params.add(
                &names("bias"),
                &[features],
                Init::Constant(0.0),
                Role::Trainable,
            )?,
            running_mean: params.add(
                &names("running_mean"),
                &[features],
                Init::Constant(0.0),
                Role::Statistic,
            )?,
            running_var: params.add(
                &names("running_var"),
                &[features],
                Init::Constant(1.0),
                Role::Statistic,
            )?,
            tracked: params.counter(&names("num_batches_tracked")),
            count: prefixes.len(),
        })
    }

    /// Features per fused layer.
    pub fn features(&self) -> usize {
        self.weight.elem_count() / self.count
    }

    /// `dropout(relu(batchnorm(x + shift)))`, where `shift` is the bias of the Linear layer
    /// before (per feature). In training the batch mean cancels the shift, so it enters only
    /// the running mean (its gradient is exactly zero); on the CPU this runs as one fused
    /// kernel. `x` is `(B, count * F)` for `batch_dim` 0 (the fused layers' shared product)
    /// and `(count, B, F)` for 1; the result is `(count, B, F)` either way.
    pub fn norm_relu_dropout(
        &self,
        x: &Tensor,
        shift: &Tensor,
        batch_dim: usize,
        p: f64,
        mode: &mut Mode<'_>,
    ) -> Result<Tensor> {
        let on_device = super::device_kernels(x.device());
        if !(mode.train && (super::fused_kernels(x.device()) || on_device)) {
            let mut stats_shape = x.dims().to_vec();
            stats_shape[batch_dim] = 1;
            let shifted = x.broadcast_add(&shift.reshape(stats_shape.as_slice())?)?;
            let h = dropout(
                &self
                    .forward(&shifted, batch_dim, mode.train, mode.statistics)?
                    .relu()?,
                p,
                mode,
            )?;
            return match batch_dim {
                0 => h
                    .reshape((h.dim(0)?, self.count, ()))?
                    .transpose(0, 1)?
                    .contiguous(),
                _ => Ok(h),
            };
        }
        let ((groups, batch, features), split) = match batch_dim {
            0 => ((1, x.dim(0)?, x.dim(1)?), self.count),
            _ => (x.dims3()?, 1),
        };
        let dropout = mode
            .noise
            .as_deref_mut()
            .filter(|_| p > 0.0)
            .map(|stream| -> Result<Dropout> {
                let mask = if on_device {
                    Mask::Device(dropout_mask_on(x.shape(), p, stream, x.device())?)
                } else {
                    Mask::Host(Arc::new(dropout_mask(x.elem_count(), p, stream)))
                };
                Ok(Dropout {
                    mask,
                    kept: dropout_scale(p),
                })
            })
            .transpose()?;
        let stats = Arc::new(Mutex::new(Stats::default()));
        let op = NormReluDropout {
            groups,
            batch,
            features,
            split,
            dropout,
            stats: stats.clone(),
        };
        let y = x
            .reshape((groups, batch, features))?
            .contiguous()?
            .apply_op3(self.weight.as_tensor(), self.bias.as_tensor(), op)?;
        let stats = stats.lock().expect("statistics lock");
        let (mean, variance) = match &stats.on_device {
            Some(packed) => {
                let columns = groups * features;
                (
                    packed.narrow(0, 0, columns)?,
                    packed.narrow(0, columns, columns)?,
                )
            }
            None => (
                Tensor::from_slice(&stats.mean, stats.mean.len(), x.device())?,
                Tensor::from_slice(&stats.variance, stats.variance.len(), x.device())?,
            ),
        };
        let mean = (mean + shift.flatten_all()?.detach())?;
        let unbiased = (variance * (batch as f64 / (batch as f64 - 1.0).max(1.0)))?;
        if mode.statistics {
            self.update_running(mean, unbiased)?;
        }
        Ok(y)
    }

    fn update_running(&self, mean: Tensor, unbiased_variance: Tensor) -> Result<()> {
        let update = |running: &Var, batch: Tensor| -> Result<()> {
            running.set(&((running.as_tensor() * (1.0 - MOMENTUM))? + (batch * MOMENTUM)?)?)
        };
        update(&self.running_mean, mean)?;
        update(&self.running_var, unbiased_variance)?;
        self.tracked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Normalises `x` over `batch_dim`; the statistics broadcast as `stats_shape` (the
    /// shape of a per-feature mean with the batch dimension kept). In training, `update`
    /// says whether the batch statistics enter the running ones.
    pub fn forward(
        &self,
        x: &Tensor,
        batch_dim: usize,
        train: bool,
        update: bool,
    ) -> Result<Tensor> {
        let mut stats_shape = x.dims().to_vec();
        stats_shape[batch_dim] = 1;
        let w = self.weight.reshape(stats_shape.as_slice())?;
        let b = self.bias.reshape(stats_shape.as_slice())?;
        if !train {
            let mean = self.running_mean.reshape(stats_shape.as_slice())?;
            let scale = (self.running_var.reshape(stats_shape.as_slice())? + EPS)?.sqrt()?;
            return x
                .broadcast_sub(&mean)?
                .broadcast_div(&scale)?
                .broadcast_mul(&w)?
                .broadcast_add(&b);
        }
        let n = x.dim(batch_dim)?;
        let mean = x.mean_keepdim(batch_dim)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(batch_dim)?;
        let normalised = centred.broadcast_div(&(&variance + EPS)?.sqrt()?)?;
        if update {
            let unbiased =
                (variance.detach() * (n as f64 / (n as f64 - 1.0).max(1.0)))?.flatten_all()?;
            self.update_running(mean.detach().flatten_all()?, unbiased)?;
        }
        normalised.broadcast_mul(&w)?.broadcast_add(&b)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;
    use crate::nn::{Params, with_portable_kernels};
    use crate::rng;

    /// Output and input gradient of a training-mode `norm_relu_dropout` over 3 fused layers of
    /// 4 features, with the dropout stream of `seed` (or none).
    fn train_step(seed: Option<u64>, batch_dim: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let device = Device::Cpu;
        let mut params = Params::new(&device, 0);
        let prefixes = ["a", "b", "c"].map(String::from);
        let norm = BatchNorm::new(&mut params, &prefixes, 4)?;
        let mut values = rng::stream(3, "test", 0);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| values.random_range(-1.0..1.0)).collect() };
        let shape: &[usize] = if batch_dim == 0 { &[9, 12] } else { &[3, 9, 4] };
        let x = Var::from_vec(draw(108), shape, &device)?;
        let shift = Tensor::from_vec(draw(12), 12, &device)?;
        let weights = Tensor::from_vec(draw(108), (3, 9, 4), &device)?;
        let mut noise = seed.map(|s| rng::stream(s, "dropout", 0));
        let mut mode = Mode::train(noise.as_mut());
        let y = norm.norm_relu_dropout(x.as_tensor(), &shift, batch_dim, 0.5, &mut mode)?;
        let grads = (&y * &weights)?.sum_all()?.backward()?;
        let dx = grads.get(&x).expect("input gradient").flatten_all()?;
        Ok((y.flatten_all()?.to_vec1()?, dx.to_vec1()?))
    }

    #[test]
    fn fused_kernel_matches_the_portable_path_with_and_without_a_dropout_stream() -> Result<()> {
        for seed in [Some(7), None] {
            for batch_dim in [0, 1] {
                let fused = train_step(seed, batch_dim)?;
                let portable = with_portable_kernels(|| train_step(seed, batch_dim))?;
                for (ours, theirs) in [(&fused.0, &portable.0), (&fused.1, &portable.1)] {
                    for (a, b) in ours.iter().zip(theirs) {
                        assert!(
                            (a - b).abs() <= 1e-5,
                            "stream {seed:?}, batch dim {batch_dim}: {a} vs {b}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_pass_without_statistics_leaves_the_running_ones_alone() -> Result<()> {
        let check = || -> Result<()> {
            let device = Device::Cpu;
            let mut params = Params::new(&device, 1);
            let norm = BatchNorm::new(&mut params, &["n".to_string()], 4)?;
            let x = Tensor::from_vec((0..32).map(|i| i as f32 * 0.37).collect(), (8, 4), &device)?;
            let shift = Tensor::zeros(4, candle_core::DType::F32, &device)?;
            let before = params.state_dict()?;
            let mut mode = Mode {
                statistics: false,
                ..Mode::train(None)
            };
            let frozen = norm.norm_relu_dropout(&x, &shift, 0, 0.0, &mut mode)?;
            let after = params.state_dict()?;
            for (name, t) in &before {
                let same = (t
                    .to_dtype(candle_core::DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?)
                    == (after[name]
                        .to_dtype(candle_core::DType::F64)?
                        .flatten_all()?
                        .to_vec1::<f64>()?);
                assert!(same, "{name} changed");
            }
            let updating = norm.norm_relu_dropout(&x, &shift, 0, 0.0, &mut Mode::train(None))?;
            assert_eq!(
                frozen.flatten_all()?.to_vec1::<f32>()?,
                updating.flatten_all()?.to_vec1::<f32>()?,
                "both normalise with the batch statistics"
            );
            let moved = params.state_dict()?;
            assert_ne!(
                moved["n.running_mean"].to_vec1::<f32>()?,
                before["n.running_mean"].to_vec1::<f32>()?
            );
            Ok(())
        };
        check()?;
        with_portable_kernels(check)
    }
}
