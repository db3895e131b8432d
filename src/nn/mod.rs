//! Building blocks shared by the backbones and critics.

pub mod batchnorm;
pub mod checkpoint;
pub mod counter_mask;
mod cpu_kernel;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod embedding;
mod fused_adam;
mod fused_norm;
#[cfg(test)]
pub mod gradcheck;
pub mod linear;
pub mod lookup;
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

use crate::config::schema::Kernels;
use crate::rng;

thread_local! {
    static PORTABLE: Cell<bool> = const { Cell::new(false) };
    static DEVICE_KERNELS: Cell<Kernels> = const { Cell::new(Kernels::Portable) };
}

/// While the guard lives, this thread's CUDA work runs `kernels` (`train.kernels`).
pub fn use_kernels(kernels: Kernels) -> impl Drop {
    struct Restore(Kernels);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEVICE_KERNELS.set(self.0);
        }
    }
    Restore(DEVICE_KERNELS.replace(kernels))
}

/// Whether work on `device` takes daa's CUDA kernels (`train.kernels = "device"` on a
/// CUDA device).
pub(crate) fn device_kernels(device: &Device) -> bool {
    device.is_cuda() && DEVICE_KERNELS.get() == Kernels::Device
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
    /// Whether a training pass updates BatchNorm's running statistics (a pass over another
    /// domain's rows normalises with its batch statistics and leaves them alone).
    pub statistics: bool,
}

impl<'a> Mode<'a> {
    pub fn eval() -> Mode<'static> {
        Mode {
            train: false,
            noise: None,
            statistics: false,
        }
    }

    /// Training: batch statistics (accumulated into the running ones), dropout from `noise`.
    pub fn train(noise: Option<&'a mut rng::Stream>) -> Self {
        Mode {
            train: true,
            noise,
            statistics: true,
        }
    }
}

/// Inverted dropout with a mask drawn from the mode's seeded stream.
pub fn dropout(x: &Tensor, p: f64, mode: &mut Mode<'_>) -> Result<Tensor> {
    let Some(stream) = mode.noise.as_deref_mut().filter(|_| mode.train && p > 0.0) else {
        return Ok(x.clone());
    };
    x.mul(&dropout_mask_on(x.shape(), p, stream, x.device())?)
}

/// A dropout mask of `shape` on `device` from the next words of `stream`: computed there
/// under daa's CUDA kernels, else drawn on the host (and copied to the device).
pub fn dropout_mask_on(
    shape: &candle_core::Shape,
    p: f64,
    stream: &mut rng::Stream,
    device: &Device,
) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if device_kernels(device) {
        return cuda::dropout_mask(shape, p, stream, device.as_cuda_device()?);
    }
    Tensor::from_vec(dropout_mask(shape.elem_count(), p, stream), shape, device)
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
    let threshold = counter_mask::keep_threshold(p);
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

/// Test support: `fused` and `reference`, two implementations of one function of two
/// tensors of the given shapes, agree within 1e-5 (relative to the largest reference value,
/// at least 1) on random inputs, in value and in the gradients of `sum(out * weights)` for
/// random weights, both inputs' gradients included.
#[cfg(test)]
pub(crate) fn assert_same_function(
    shapes: [&[usize]; 2],
    fused: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
    reference: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<()> {
    use candle_core::Var;
    use rand::Rng;
    let mut stream = rng::stream(5, "test", 0);
    let mut draw = |shape: &[usize]| -> Result<Tensor> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| stream.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    };
    let inputs = [
        Var::from_tensor(&draw(shapes[0])?)?,
        Var::from_tensor(&draw(shapes[1])?)?,
    ];
    let weights = draw(reference(inputs[0].as_tensor(), inputs[1].as_tensor())?.dims())?;
    let run = |f: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>| -> Result<Vec<Vec<f32>>> {
        let out = f(inputs[0].as_tensor(), inputs[1].as_tensor())?;
        let grads = (&out * &weights)?.sum_all()?.backward()?;
        let mut values = vec![out.flatten_all()?.to_vec1()?];
        for input in &inputs {
            let grad = grads.get(input).expect("every input has a gradient");
            values.push(grad.flatten_all()?.to_vec1()?);
        }
        Ok(values)
    };
    let (ours, theirs) = (run(fused)?, run(reference)?);
    for (what, (ours, theirs)) in [
        "output",
        "first input's gradient",
        "second input's gradient",
    ]
    .iter()
    .zip(ours.iter().zip(&theirs))
    {
        let scale = theirs.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(theirs) {
            assert!((a - b).abs() <= 1e-5 * scale, "{what}: {a} vs {b}");
        }
    }
    Ok(())
}
