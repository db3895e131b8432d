//! Batches: seeded per-epoch order and source subsampling, fixed-size batches with an
//! explicit last-batch policy, gathered from a table into host buffers or candle tensors.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;

use super::Table;
use super::split::choose;
use crate::rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastBatch {
    /// A smaller final batch is yielded.
    Keep,
    /// A smaller final batch is dropped (the reference's adversarial loop).
    Drop,
}

/// One batch in host memory, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub size: usize,
    /// `size x fields` category indices (with per-field offsets when asked for).
    pub categorical: Vec<u32>,
    /// `size x numerical`.
    pub numerical: Vec<f32>,
    /// `size x tasks`, 0.0 or 1.0.
    pub labels: Vec<f32>,
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct Tensors {
    pub categorical: Tensor,
    pub numerical: Tensor,
    pub labels: Tensor,
}

impl Batch {
    pub fn to_tensors(
        &self,
        fields: usize,
        numerical: usize,
        device: &Device,
    ) -> candle_core::Result<Tensors> {
        let tasks = self.labels.len() / self.size.max(1);
        Ok(Tensors {
            categorical: Tensor::from_slice(&self.categorical, (self.size, fields), device)?,
            numerical: Tensor::from_slice(&self.numerical, (self.size, numerical), device)?,
            labels: Tensor::from_slice(&self.labels, (self.size, tasks), device)?,
        })
    }
}

/// The rows of an epoch, shuffled by the stream (seed, purpose, epoch) when `shuffle`.
pub fn epoch_order(rows: &[u32], seed: u64, purpose: &str, epoch: u64, shuffle: bool) -> Vec<u32> {
    let mut order = rows.to_vec();
    if shuffle {
        order.shuffle(&mut rng::stream(seed, purpose, epoch));
    }
    order
}

/// A fresh `fraction` of `rows` for this epoch (exactly round(fraction * n), in random order).
pub fn subsample(rows: &[u32], fraction: f64, seed: u64, purpose: &str, epoch: u64) -> Vec<u32> {
    let k = ((rows.len() as f64) * fraction).round() as usize;
    choose(
        &mut rows.to_vec(),
        k,
        &mut rng::stream(seed, purpose, epoch),
    )
}

/// Per-field row offsets into one embedding table over all fields.
pub fn field_offsets(cardinalities: &[u32]) -> Vec<u32> {
    cardinalities
        .iter()
        .scan(0u32, |acc, &c| {
            let start = *acc;
            *acc += c;
            Some(start)
        })
        .collect()
}

/// Batches of `table` rows in `order`.
pub struct Batches<'a> {
    table: &'a Table,
    order: Vec<u32>,
    batch_size: usize,
    last: LastBatch,
    offsets: Option<Vec<u32>>,
    position: usize,
}

impl<'a> Batches<'a> {
    /// `offsets`: add each field's offset to its category indices (see [`field_offsets`]).
    pub fn new(
        table: &'a Table,
        order: Vec<u32>,
        batch_size: usize,
        last: LastBatch,
        offsets: Option<Vec<u32>>,
    ) -> Self {
        assert!(batch_size > 0, "batch size is validated positive");
        Batches {
            table,
            order,
            batch_size,
            last,
            offsets,
            position: 0,
        }
    }

    /// Fills `batch` with the next batch; false at the end of the epoch.
    pub fn next_into(&mut self, batch: &mut Batch) -> bool {
        let remaining = self.order.len() - self.position;
        let size = remaining.min(self.batch_size);
        if size == 0 || (size < self.batch_size && self.last == LastBatch::Drop) {
            return false;
        }
        let h = &self.table.header;
        let (fields, numerical, tasks) = (h.fields, h.numerical, h.labels);
        let categories = self.table.categorical();
        let numbers = self.table.numerical();
        let labels = self.table.labels();
        batch.size = size;
        batch.categorical.clear();
        batch.numerical.clear();
        batch.labels.clear();
        for &row in &self.order[self.position..self.position + size] {
            let row = row as usize;
            categories.extend_into(row * fields, fields, &mut batch.categorical);
            batch
                .numerical
                .extend_from_slice(&numbers[row * numerical..(row + 1) * numerical]);
            batch.labels.extend(
                labels[row * tasks..(row + 1) * tasks]
                    .iter()
                    .map(|&l| f32::from(l)),
            );
        }
        if let Some(offsets) = &self.offsets {
            for (value, offset) in batch.categorical.iter_mut().zip(offsets.iter().cycle()) {
                *value += offset;
            }
        }
        self.position += size;
        true
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        self.next_into(&mut batch).then_some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_cumulative_cardinalities() {
        assert_eq!(field_offsets(&[11, 4, 7, 2]), [0, 11, 15, 22]);
    }

    #[test]
    fn subsample_draws_the_exact_fraction_without_repeats() {
        let rows: Vec<u32> = (0..1001).collect();
        let mut half = subsample(&rows, 0.5, 3, "source", 0);
        assert_eq!(half.len(), 501);
        half.sort_unstable();
        half.dedup();
        assert_eq!(half.len(), 501);
        assert_ne!(
            subsample(&rows, 0.5, 3, "source", 1),
            subsample(&rows, 0.5, 3, "source", 0)
        );
    }

    #[test]
    fn shuffled_order_is_a_seeded_permutation() {
        let rows: Vec<u32> = (0..100).collect();
        let a = epoch_order(&rows, 1, "target", 0, true);
        assert_eq!(a, epoch_order(&rows, 1, "target", 0, true));
        assert_ne!(a, epoch_order(&rows, 1, "target", 1, true));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, rows);
        assert_eq!(epoch_order(&rows, 1, "target", 0, false), rows);
    }
}
