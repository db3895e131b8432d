//! Source batches during target training: each epoch a fresh subsample of the source rows,
//! in fixed-size batches, started over (dropping the short remainder) as often as the
//! target batches need; the batch buffers are reused.

use candle_core::Device;

use crate::data::Table;
use crate::data::batch::{Batch, Batches, LastBatch, Tensors, subsample};

pub struct SourceBatches<'a> {
    table: &'a Table,
    rows: Vec<u32>,
    size: usize,
    offsets: Vec<u32>,
    batches: Batches<'a>,
    batch: Batch,
}

impl<'a> SourceBatches<'a> {
    /// Epoch `epoch`'s subsample (`fraction` of the `pool` rows of `table`, seeded) in
    /// batches of `batch_size` (or all the rows, if fewer).
    pub fn new(
        table: &'a Table,
        pool: &[u32],
        fraction: f64,
        seed: u64,
        epoch: u64,
        batch_size: usize,
        offsets: Vec<u32>,
    ) -> Self {
        let rows = subsample(pool, fraction, seed, "subsample/source", epoch);
        let size = batch_size.min(rows.len()).max(1);
        let batches = Self::pass(table, &rows, size, &offsets);
        SourceBatches {
            table,
            rows,
            size,
            offsets,
            batches,
            batch: Batch::default(),
        }
    }

    fn pass(table: &'a Table, rows: &[u32], size: usize, offsets: &[u32]) -> Batches<'a> {
        Batches::new(
            table,
            rows.to_vec(),
            size,
            LastBatch::Drop,
            Some(offsets.to_vec()),
        )
    }

    pub fn next(&mut self, device: &Device) -> candle_core::Result<Tensors> {
        if !self.batches.next_into(&mut self.batch) {
            self.batches = Self::pass(self.table, &self.rows, self.size, &self.offsets);
            self.batches.next_into(&mut self.batch);
        }
        self.batch.to_tensors(
            self.table.header.fields,
            self.table.header.numerical,
            device,
        )
    }
}
