//! The embedding lookup of the input layer as daa's own op, for CUDA devices under
//! `train.kernels = "device"`: its backward is a deterministic segment sum (each table row
//! summed by one thread, rows in batch order) instead of candle's `index_add`, which on
//! CUDA runs one thread per column over every index in turn. The CPU implementations are
//! the CUDA kernels' twins (`kernels/daa.cu`): tests hold them to candle's `index_select`
//! and `index_add` bit for bit, and the kernels to them.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu_kernel::{contiguous, contiguous_as};

/// `table (rows, dim)` looked up at `ids (batch, fields)` (u32, each field's indices
/// offset into the one table): `(batch * fields, dim)`.
pub struct Lookup;

/// The table's gradient from the lookup's `(batch * fields, dim)` gradient, given the
/// `(batch, fields)` ids: `(rows, dim)`.
pub struct SegmentSum {
    pub rows: usize,
}

impl CustomOp2 for Lookup {
    fn name(&self) -> &'static str {
        "daa-lookup"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let table = contiguous(s1, l1, self.name())?;
        let ids = contiguous_as::<u32>(s2, l2, self.name())?;
        let dim = l1.dims()[1];
        let mut out = Vec::with_capacity(ids.len() * dim);
        for &id in ids {
            let row = id as usize * dim;
            out.extend_from_slice(&table[row..row + dim]);
        }
        Ok((CpuStorage::F32(out), Shape::from((ids.len(), dim))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::gather(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        table: &Tensor,
        ids: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rows = table.dim(0)?;
        let grad = grad.contiguous()?;
        Ok((
            Some(grad.apply_op2_no_bwd(ids, &SegmentSum { rows })?),
            None,
        ))
    }
}

impl CustomOp2 for SegmentSum {
    fn name(&self) -> &'static str {
        "daa-segment-sum"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let grad = contiguous(s1, l1, self.name())?;
        let ids = contiguous_as::<u32>(s2, l2, self.name())?;
        let (batch, fields) = l2.shape().dims2()?;
        let dim = l1.dims()[1];
        let mut out = vec![0f32; self.rows * dim];
        for field in 0..fields {
            let mut pairs: Vec<(u32, usize)> =
                (0..batch).map(|b| (ids[b * fields + field], b)).collect();
            pairs.sort_unstable();
            for segment in pairs.chunk_by(|a, b| a.0 == b.0) {
                let row = &mut out[segment[0].0 as usize * dim..][..dim];
                for (c, value) in row.iter_mut().enumerate() {
                    let mut sum = 0f32;
                    for &(_, b) in segment {
                        sum += grad[(b * fields + field) * dim + c];
                    }
                    *value = sum;
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.rows, dim))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let batch = l2.dims()[0];
        if batch > MAX_BATCH {
            candle_core::bail!("{}: batch {batch} above {MAX_BATCH}", self.name());
        }
        super::cuda::segment_sum(self.rows, s1, l1, s2, l2)
    }
}

/// The largest batch the CUDA segment sum takes: it sorts a field's (id, row) pairs in a
/// block's shared memory, 2 x 4096 u32 = 32 KiB.
pub const MAX_BATCH: usize = 4096;

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;

    #[test]
    fn lookup_and_its_gradient_are_candles_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        let mut stream = crate::rng::stream(1, "test", 0);
        let (batch, fields, dim) = (37, 3, 5);
        // Field f's ids in [10 f, 10 f + 4): many repeats, as low-cardinality fields have.
        let ids: Vec<u32> = (0..batch * fields)
            .map(|j| 10 * (j % fields) as u32 + stream.random_range(0..4))
            .collect();
        let ids = Tensor::from_vec(ids, (batch, fields), &dev)?;
        let values: Vec<f32> = (0..30 * dim)
            .map(|_| stream.random::<f32>() - 0.5)
            .collect();
        let table = Var::from_tensor(&Tensor::from_vec(values, (30, dim), &dev)?)?;
        let weights: Vec<f32> = (0..batch * fields * dim)
            .map(|_| stream.random::<f32>() * 3.0)
            .collect();
        let weights = Tensor::from_vec(weights, (batch * fields, dim), &dev)?;

        let ours = table.as_tensor().apply_op2(&ids, Lookup)?;
        let theirs = table.embedding(&ids.flatten_all()?)?;
        assert_eq!(ours.to_vec2::<f32>()?, theirs.to_vec2::<f32>()?);
        let grad = |out: &Tensor| -> Result<Vec<Vec<f32>>> {
            (out * &weights)?
                .sum_all()?
                .backward()?
                .get(&table)
                .expect("the table has a gradient")
                .to_vec2()
        };
        let (ours, theirs) = (grad(&ours)?, grad(&theirs)?);
        assert_eq!(ours, theirs);
        assert!(
            ours.iter().any(|row| row.iter().all(|&g| g == 0.0)),
            "unused rows stay 0"
        );
        Ok(())
    }
}
