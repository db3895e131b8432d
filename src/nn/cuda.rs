//! daa's CUDA kernels (`kernels/daa.cu`, compiled to PTX by build.rs), launched on the
//! device's stream where `train.kernels = "device"`.

use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage, Layout, Result, Shape, Storage, Tensor};
use cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};

use super::counter_mask::{StreamKey, keep_threshold};
use super::dropout_scale;
use crate::rng;

use candle_core::cuda_backend::cudarc;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/daa.ptx"));
const MODULE: &str = "daa";
const THREADS: u32 = 256;

fn failed(kernel: &str, e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{kernel} kernel: {e}"))
}

/// The elements of a contiguous input of `kernel`.
fn view<'a, T: candle_core::cuda_backend::CudaDType>(
    storage: &'a CudaStorage,
    layout: &Layout,
    kernel: &str,
) -> Result<CudaView<'a, T>> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| failed(kernel, "expects a contiguous input"))?;
    Ok(storage.as_cuda_slice::<T>()?.slice(start..end))
}

/// One thread per element of `n`, `THREADS` to a block.
fn per_element(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u64).div_ceil(u64::from(THREADS)) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The lookup `table[ids]`: `(batch * fields, dim)` (src/nn/lookup.rs).
pub fn gather(
    table: &CudaStorage,
    table_layout: &Layout,
    ids: &CudaStorage,
    ids_layout: &Layout,
) -> Result<(CudaStorage, Shape)> {
    const KERNEL: &str = "embedding_gather";
    let device = &table.device;
    let dim = table_layout.dims()[1];
    let n = ids_layout.shape().elem_count();
    let (table, ids) = (
        view::<f32>(table, table_layout, KERNEL)?,
        view::<u32>(ids, ids_layout, KERNEL)?,
    );
    // SAFETY: the kernel writes each of the n * dim elements.
    let mut out = unsafe { device.alloc::<f32>(n * dim) }?;
    if n * dim > 0 {
        let func = device.get_or_load_custom_func(KERNEL, MODULE, PTX)?;
        let (n64, dim32) = (n as u64, dim as u32);
        let mut launch = func.builder();
        launch
            .arg(&table)
            .arg(&ids)
            .arg(&mut out)
            .arg(&n64)
            .arg(&dim32);
        // SAFETY: arguments as kernels/daa.cu declares them (const float*, const unsigned*,
        // float*, u64, u32); one thread per output element, bounds-checked in the kernel;
        // ids index the table (the input layer's offsets keep them below its rows).
        unsafe { launch.launch(per_element(n * dim)) }.map_err(|e| failed(KERNEL, e))?;
    }
    Ok((
        CudaStorage::wrap_cuda_slice(out, device.clone()),
        Shape::from((n, dim)),
    ))
}

/// The table's gradient `(rows, dim)` from the lookup's, deterministically (src/nn/lookup.rs,
/// which keeps the batch within the shared memory the sort takes: `lookup::MAX_BATCH`).
pub fn segment_sum(
    rows: usize,
    grad: &CudaStorage,
    grad_layout: &Layout,
    ids: &CudaStorage,
    ids_layout: &Layout,
) -> Result<(CudaStorage, Shape)> {
    const KERNEL: &str = "embedding_segment_sum";
    let device = &grad.device;
    let dim = grad_layout.dims()[1];
    let (batch, fields) = ids_layout.shape().dims2()?;
    let (grad, ids) = (
        view::<f32>(grad, grad_layout, KERNEL)?,
        view::<u32>(ids, ids_layout, KERNEL)?,
    );
    let mut out = device.alloc_zeros::<f32>(rows * dim)?;
    if batch > 0 && dim > 0 {
        let func = device.get_or_load_custom_func(KERNEL, MODULE, PTX)?;
        let padded = batch.next_power_of_two().max(2) as u32;
        let config = LaunchConfig {
            grid_dim: (fields as u32, 1, 1),
            block_dim: (THREADS.min(padded), 1, 1),
            shared_mem_bytes: 2 * padded * 4,
        };
        let (batch32, fields32, dim32) = (batch as u32, fields as u32, dim as u32);
        let mut launch = func.builder();
        launch
            .arg(&grad)
            .arg(&ids)
            .arg(&mut out)
            .arg(&batch32)
            .arg(&fields32)
            .arg(&dim32)
            .arg(&padded);
        // SAFETY: arguments as kernels/daa.cu declares them (const float*, const unsigned*,
        // float*, 4 x u32); one block per field with shared memory for `padded` (id, row)
        // pairs (at most 32 KiB: batch <= MAX_BATCH); ids below `rows`; each id is one
        // field's, so each output row has one writer.
        unsafe { launch.launch(config) }.map_err(|e| failed(KERNEL, e))?;
    }
    Ok((
        CudaStorage::wrap_cuda_slice(out, device.clone()),
        Shape::from((rows, dim)),
    ))
}

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
        unsafe { launch.launch(config) }.map_err(|e| failed("dropout_mask_chacha8", e))?;
    }
    let storage = CudaStorage::wrap_cuda_slice(out, device.clone());
    Ok(Tensor::from_storage(
        Storage::Cuda(storage),
        shape.clone(),
        BackpropOp::none(),
        false,
    ))
}

/// The elements of a contiguous input `kernel` updates in place.
fn view_mut<'a>(
    storage: &'a mut CudaStorage,
    layout: &Layout,
    kernel: &str,
) -> Result<cudarc::driver::CudaViewMut<'a, f32>> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| failed(kernel, "expects a contiguous input"))?;
    Ok(storage.as_cuda_slice_mut::<f32>()?.slice_mut(start..end))
}

/// Adam's moments `[m; v]` (2n) from the gradient and parameter: `terms` = beta1, beta2,
/// l2 (src/nn/fused_adam.rs).
pub fn adam_moments(
    moments: (&mut CudaStorage, &Layout),
    grad: (&CudaStorage, &Layout),
    param: (&CudaStorage, &Layout),
    terms: [f32; 3],
) -> Result<()> {
    const KERNEL: &str = "adam_moments";
    let device = moments.0.device.clone();
    let n = param.1.shape().elem_count();
    let (grad, param) = (
        view::<f32>(grad.0, grad.1, KERNEL)?,
        view::<f32>(param.0, param.1, KERNEL)?,
    );
    let mut moments = view_mut(moments.0, moments.1, KERNEL)?;
    if n == 0 {
        return Ok(());
    }
    let func = device.get_or_load_custom_func(KERNEL, MODULE, PTX)?;
    let n64 = n as u64;
    let mut launch = func.builder();
    launch.arg(&mut moments).arg(&grad).arg(&param).arg(&n64);
    for term in &terms {
        launch.arg(term);
    }
    // SAFETY: arguments as kernels/daa.cu declares them (float*, 2 x const float*, u64,
    // 3 x float); moments hold 2n elements, grad and param n; one thread per element.
    unsafe { launch.launch(per_element(n)) }.map_err(|e| failed(KERNEL, e))?;
    Ok(())
}

/// Adam's parameter update from the moments: `terms` = step size, correction2, eps,
/// decoupled decay (src/nn/fused_adam.rs).
pub fn adam_apply(
    param: (&mut CudaStorage, &Layout),
    moments: (&CudaStorage, &Layout),
    terms: [f32; 4],
) -> Result<()> {
    const KERNEL: &str = "adam_apply";
    let device = param.0.device.clone();
    let n = param.1.shape().elem_count();
    let moments = view::<f32>(moments.0, moments.1, KERNEL)?;
    let mut param = view_mut(param.0, param.1, KERNEL)?;
    if n == 0 {
        return Ok(());
    }
    let func = device.get_or_load_custom_func(KERNEL, MODULE, PTX)?;
    let n64 = n as u64;
    let mut launch = func.builder();
    launch.arg(&mut param).arg(&moments).arg(&n64);
    for term in &terms {
        launch.arg(term);
    }
    // SAFETY: arguments as kernels/daa.cu declares them (float*, const float*, u64,
    // 4 x float); param holds n elements, moments 2n; one thread per element.
    unsafe { launch.launch(per_element(n)) }.map_err(|e| failed(KERNEL, e))?;
    Ok(())
}

/// The gated mixture's `kernel` (`mixture_forward` on experts and gates, or
/// `mixture_backward` on experts, gates and the output's gradient; src/nn/mixture.rs) for
/// `dims` = experts, batch, gates, width, into `n` outputs: one thread per output element.
pub fn mixture(
    kernel: &'static str,
    dims: [usize; 4],
    inputs: &[(&CudaStorage, &Layout)],
    n: usize,
) -> Result<CudaStorage> {
    let device = &inputs[0].0.device;
    let views = inputs
        .iter()
        .map(|(storage, layout)| view::<f32>(storage, layout, kernel))
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: the kernel writes each of the n elements.
    let mut out = unsafe { device.alloc::<f32>(n) }?;
    if n > 0 {
        let func = device.get_or_load_custom_func(kernel, MODULE, PTX)?;
        let dims = dims.map(|d| d as u32);
        let mut launch = func.builder();
        for input in &views {
            launch.arg(input);
        }
        launch.arg(&mut out);
        for d in &dims {
            launch.arg(d);
        }
        // SAFETY: arguments as kernels/daa.cu declares them (the inputs as const float*:
        // experts (E, B, D), gates (B, G, E)[, grad (B, G, D)]; the output; 4 x u32 dims in
        // that order); one thread per output element, bounds-checked in the kernel.
        unsafe { launch.launch(per_element(n)) }.map_err(|e| failed(kernel, e))?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
}

/// Training-mode BatchNorm -> ReLU -> dropout (src/nn/fused_norm.rs) for `dims` = groups,
/// batch, features, split on x, weight, bias and the mask (none: no dropout): the output
/// and the statistics `[mean | variance | 1/std]`.
pub fn norm_forward(
    dims: [usize; 4],
    inputs: [(&CudaStorage, &Layout); 3],
    mask: Option<(&CudaStorage, &Layout)>,
) -> Result<(CudaStorage, CudaStorage)> {
    let [groups, batch, features, _] = dims;
    let device = &inputs[0].0.device;
    let (columns, n) = (groups * features, groups * batch * features);
    let [x, weight, bias] = inputs.map(|(s, l)| view::<f32>(s, l, "norm_stats"));
    let (x, weight, bias) = (x?, weight?, bias?);
    let mask = mask
        .map(|(s, l)| view::<f32>(s, l, "norm_apply"))
        .transpose()?;
    // SAFETY: norm_stats writes every element of both (one thread per column).
    let mut stats = unsafe { device.alloc::<f32>(3 * columns) }?;
    let mut terms = unsafe { device.alloc::<f32>(2 * columns) }?;
    // SAFETY: norm_apply writes every output element (one thread per input element, each
    // to its own place in the planes).
    let mut out = unsafe { device.alloc::<f32>(n) }?;
    let dims = dims.map(|d| d as u32);
    if n > 0 {
        let func = device.get_or_load_custom_func("norm_stats", MODULE, PTX)?;
        let mut launch = func.builder();
        launch
            .arg(&x)
            .arg(&weight)
            .arg(&bias)
            .arg(&mut stats)
            .arg(&mut terms);
        launch.arg(&dims[0]).arg(&dims[1]).arg(&dims[2]);
        // SAFETY: arguments as kernels/daa.cu declares them (3 x const float*, 2 x float*,
        // groups, batch, features as u32); one thread per column.
        unsafe { launch.launch(per_element(columns)) }.map_err(|e| failed("norm_stats", e))?;
        let func = device.get_or_load_custom_func("norm_apply", MODULE, PTX)?;
        let none = 0u64;
        let mut launch = func.builder();
        launch.arg(&x).arg(&terms);
        match &mask {
            Some(mask) => launch.arg(mask),
            None => launch.arg(&none),
        };
        launch.arg(&mut out);
        for d in &dims {
            launch.arg(d);
        }
        // SAFETY: arguments as declared (const float* x, terms, mask (a null pointer: no
        // dropout), float* out, 4 x u32); the mask has x's elements; one thread per element.
        unsafe { launch.launch(per_element(n)) }.map_err(|e| failed("norm_apply", e))?;
    }
    Ok((
        CudaStorage::wrap_cuda_slice(out, device.clone()),
        CudaStorage::wrap_cuda_slice(stats, device.clone()),
    ))
}

/// The backward pass of [`norm_forward`] on x, y and y's gradient, given the statistics and
/// the weight: packed `[dx | dw | db]` (src/nn/fused_norm.rs).
pub fn norm_backward(
    dims: [usize; 4],
    kept: f32,
    inputs: [(&CudaStorage, &Layout); 3],
    stats: (&CudaStorage, &Layout),
    weight: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let [groups, batch, features, _] = dims;
    let device = &inputs[0].0.device;
    let (columns, n) = (groups * features, groups * batch * features);
    let [x, y, grad] = inputs.map(|(s, l)| view::<f32>(s, l, "norm_grad_sums"));
    let (x, y, grad) = (x?, y?, grad?);
    let stats = view::<f32>(stats.0, stats.1, "norm_grad_sums")?;
    let weight = view::<f32>(weight.0, weight.1, "norm_grad_sums")?;
    // SAFETY: norm_grad_sums writes dw, db and every term; norm_grad_input every dx.
    let mut packed = unsafe { device.alloc::<f32>(n + 2 * columns) }?;
    let mut terms = unsafe { device.alloc::<f32>(3 * columns) }?;
    let dims = dims.map(|d| d as u32);
    if n > 0 {
        let func = device.get_or_load_custom_func("norm_grad_sums", MODULE, PTX)?;
        let mut launch = func.builder();
        launch.arg(&x).arg(&y).arg(&grad).arg(&stats).arg(&weight);
        launch.arg(&mut packed).arg(&mut terms).arg(&kept);
        for d in &dims {
            launch.arg(d);
        }
        // SAFETY: arguments as declared (5 x const float*, 2 x float*, float kept, 4 x u32);
        // one thread per column.
        unsafe { launch.launch(per_element(columns)) }.map_err(|e| failed("norm_grad_sums", e))?;
        let func = device.get_or_load_custom_func("norm_grad_input", MODULE, PTX)?;
        let mut launch = func.builder();
        launch.arg(&x).arg(&y).arg(&grad).arg(&stats).arg(&terms);
        launch.arg(&mut packed).arg(&kept);
        for d in &dims {
            launch.arg(d);
        }
        // SAFETY: arguments as declared (5 x const float*, float*, float kept, 4 x u32); one
        // thread per element of x, after the sums on the same stream.
        unsafe { launch.launch(per_element(n)) }.map_err(|e| failed("norm_grad_input", e))?;
    }
    Ok(CudaStorage::wrap_cuda_slice(packed, device.clone()))
}
