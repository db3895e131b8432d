//! daa's CUDA kernels (`kernels/daa.cu`, compiled to PTX by build.rs), launched on the
//! device's stream where `train.kernels = "device"`.

use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage, Result, Shape, Storage, Tensor};
use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::counter_mask::{StreamKey, keep_threshold};
use super::dropout_scale;
use crate::rng;

use candle_core::cuda_backend::cudarc;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/daa.ptx"));
const MODULE: &str = "daa";
const THREADS: u32 = 256;

/// A dropout mask of `shape` computed on the device from the next words of `stream`: the
/// factors [`super::dropout_mask`] draws on the host, bit for bit, with nothing uploaded.
pub fn dropout_mask(
    shape: &Shape,
    p: f64,
    stream: &mut rng::Stream,
    device: &CudaDevice,
) -> Result<Tensor> {
    let n = shape.elem_count();
    let start = u64::try_from(stream.get_word_pos())
        .map_err(|_| candle_core::Error::Msg("dropout stream past 2^64 words".into()))?;
    stream.set_word_pos(u128::from(start) + n as u128);
    let key = StreamKey::of(stream);
    let func = device.get_or_load_custom_func("dropout_mask_chacha8", MODULE, PTX)?;
    // SAFETY: the kernel writes every one of the `n` elements before the tensor is read.
    let mut out = unsafe { device.alloc::<f32>(n) }?;
    if n > 0 {
        let blocks = ((start + n as u64 - 1) / 16 - start / 16 + 1) as u32;
        let config = LaunchConfig {
            grid_dim: (blocks.div_ceil(THREADS), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let (n, threshold, scale) = (n as u64, keep_threshold(p), dropout_scale(p));
        let mut launch = func.builder();
        launch.arg(&mut out).arg(&n).arg(&start);
        for word in &key.key {
            launch.arg(word);
        }
        launch.arg(&key.nonce).arg(&threshold).arg(&scale);
        // SAFETY: the arguments match the kernel's parameters in kernels/daa.cu in number,
        // order and type (float*, u64, u64, 8 x u32, u64, u64, float); the grid covers every
        // block that holds one of the mask's words, and each thread writes only positions
        // inside [start, start + n).
        unsafe { launch.launch(config) }
            .map_err(|e| candle_core::Error::Msg(format!("dropout mask kernel: {e}")))?;
    }
    let storage = CudaStorage::wrap_cuda_slice(out, device.clone());
    Ok(Tensor::from_storage(
        Storage::Cuda(storage),
        shape.clone(),
        BackpropOp::none(),
        false,
    ))
}
