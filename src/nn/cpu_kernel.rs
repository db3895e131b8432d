//! What the fused CPU kernels (candle custom ops) share: their inputs as contiguous f32
//! slices, and the split of a backward kernel's packed output into the inputs' gradients.

use candle_core::{CpuStorage, Layout, Result, Shape, Tensor, WithDType};

fn not_contiguous(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: expects contiguous f32"))
}

/// The elements of a contiguous f32 input of `op`.
pub fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    contiguous_as(storage, layout, op)
}

/// The elements of a contiguous input of `op` of type `T`.
pub fn contiguous_as<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [T]> {
    match (storage.as_slice::<T>(), layout.contiguous_offsets()) {
        (Ok(v), Some((start, end))) => Ok(&v[start..end]),
        _ => Err(candle_core::Error::Msg(format!(
            "{op}: expects contiguous {:?}",
            T::DTYPE
        ))),
    }
}

/// [`contiguous`] for an input `op` updates in place.
pub fn contiguous_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&mut v[start..end]),
        _ => Err(not_contiguous(op)),
    }
}

/// Splits a backward kernel's flat output into consecutive tensors of the given shapes.
pub fn unpack<const N: usize>(packed: &Tensor, shapes: [&Shape; N]) -> Result<[Tensor; N]> {
    let mut start = 0;
    let mut parts = Vec::with_capacity(N);
    for shape in shapes {
        let n = shape.elem_count();
        parts.push(packed.narrow(0, start, n)?.reshape(shape)?);
        start += n;
    }
    Ok(parts.try_into().expect("one part per shape"))
}
