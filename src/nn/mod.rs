//! Building blocks shared by the backbones and critics.

pub mod batchnorm;
pub mod embedding;
mod fused_adam;
mod fused_norm;
pub mod linear;
pub mod loss;
pub mod mlp;
pub mod optim;
pub mod params;

use std::cell::Cell;

use candle_core::{Device, Result, Tensor};
use rand::RngCore;

pub use params::Params;

use crate::rng;

thread_local! {
    static PORTABLE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's CPU kernels (fused BatchNorm, in-place Adam) replaced by the
/// portable tensor-op paths that CUDA takes, so that tests hold both to the same truth.
pub fn with_portable_kernels<T>(f: impl FnOnce() -> T) -> T {
    let before = PORTABLE.replace(true);
    let out = f();
    PORTABLE.set(before);
    out
}

/// Whether work on `device` takes the fused CPU kernels.
fn fused_kernels(device: &Device) -> bool {
    device.is_cpu() && !PORTABLE.get()
}

/// How a forward pass runs: training (batch statistics, dropout when a noise stream is
/// given) or evaluation.
pub struct Mode<'a> {
    pub train: bool,
    /// The seeded stream dropout masks are drawn from; `None` disables dropout.
    pub noise: Option<&'a mut rng::Stream>,
}

impl Mode<'_> {
    pub fn eval() -> Mode<'static> {
        Mode {
            train: false,
            noise: None,
        }
    }
}

/// Inverted dropout with a mask drawn from the mode's seeded stream.
pub fn dropout(x: &Tensor, p: f64, mode: &mut Mode<'_>) -> Result<Tensor> {
    let Some(stream) = mode.noise.as_deref_mut().filter(|_| mode.train && p > 0.0) else {
        return Ok(x.clone());
    };
    let mask = dropout_mask(x.elem_count(), p, stream);
    x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
}

/// `n` dropout factors: 1 / (1 - p) with probability 1 - p, else 0.
pub fn dropout_mask(n: usize, p: f64, stream: &mut rng::Stream) -> Vec<f32> {
    let keep = 1.0 - p;
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    (0..n)
        .map(|_| {
            if u64::from(stream.next_u32()) < threshold {
                scale
            } else {
                0.0
            }
        })
        .collect()
}
