//! What a method sees of one training step: the target model, its dropout stream and the
//! epoch's source batches.

use candle_core::Device;

use super::{AdaptError, SourceBatches};
use crate::data::batch::Tensors;
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::Mode;
use crate::rng;

pub struct Step<'s, 'a> {
    pub model: &'s Model,
    /// The target model's dropout stream for this epoch.
    pub noise: &'s mut rng::Stream,
    /// The epoch's source batches, for methods that need source rows.
    pub source: Option<&'s mut SourceBatches<'a>>,
    pub device: &'s Device,
}

impl Step<'_, '_> {
    /// The target model in train mode on `batch` (dropout from the epoch's stream).
    pub fn forward(&mut self, batch: &Tensors) -> candle_core::Result<Output> {
        self.model.forward(
            &batch.categorical,
            &batch.numerical,
            &mut Mode {
                train: true,
                noise: Some(self.noise),
            },
        )
    }

    /// The next source batch.
    pub fn source_batch(&mut self) -> Result<Tensors, AdaptError> {
        let source = self
            .source
            .as_mut()
            .ok_or_else(|| AdaptError::Invalid("this method needs a source data set".into()))?;
        Ok(source.next(self.device)?)
    }
}
