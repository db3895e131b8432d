//! Building blocks shared by the backbones and critics.

pub mod batchnorm;
pub mod embedding;
mod fused_adam;
mod fused_norm;
pub mod linear;
pub mod loss;
pub mod mixture;
pub mod mlp;
pub mod optim;
pub mod params;
mod simd;
pub mod token_attention;

use std::cell::Cell;

use candle_core::{Device, Result, Tensor};
use rand::RngCore;
use rayon::prelude::*;

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
pub(crate) fn fused_kernels(device: &Device) -> bool {
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

/// The dropout factor of a kept unit: 1 / (1 - p).
pub fn dropout_scale(p: f64) -> f32 {
    (1.0 / (1.0 - p)) as f32
}

/// Stream words per parallel task of [`dropout_mask`].
const MASK_CHUNK: usize = 1 << 16;

/// `n` dropout factors: [`dropout_scale`] with probability 1 - p, else 0, from the next `n`
/// words of `stream`. Chunks draw in parallel from copies of the stream set to their own
/// word positions, so the mask is the one a sequential draw gives.
pub fn dropout_mask(n: usize, p: f64, stream: &mut rng::Stream) -> Vec<f32> {
    let threshold = ((1.0 - p) * 4_294_967_296.0) as u64;
    let scale = dropout_scale(p);
    let start = stream.get_word_pos();
    let mut mask = vec![0f32; n];
    mask.par_chunks_mut(MASK_CHUNK)
        .enumerate()
        .for_each(|(chunk, factors)| {
            let mut words = stream.clone();
            words.set_word_pos(start + (chunk * MASK_CHUNK) as u128);
            for factor in factors {
                if u64::from(words.next_u32()) < threshold {
                    *factor = scale;
                }
            }
        });
    stream.set_word_pos(start + n as u128);
    mask
}
