//! What a method sees of one training step: the target model, its dropout streams, the
//! task loss and the epoch's source batches.

use candle_core::{Device, Tensor};

use super::{AdaptError, SourceBatches};
use crate::data::batch::Tensors;
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::Mode;
use crate::rng;

/// The task loss of a phase: the model's output and the `(B, tasks)` labels to a scalar.
pub type TaskLoss<'a> = &'a dyn Fn(&Output, &Tensor) -> candle_core::Result<Tensor>;

/// One training step as a method sees it (its forward gets it for every target batch).
pub struct StepContext<'s, 'a> {
    pub model: &'s Model,
    /// The phase's task loss (for methods that also train on labelled source rows).
    pub task_loss: TaskLoss<'s>,
    /// The target model's dropout stream on target rows for this epoch.
    pub noise: &'s mut rng::Stream,
    /// Its dropout stream on source rows: a method's extra passes draw from their own
    /// stream, so that they do not shift the target rows' masks.
    pub source_noise: &'s mut rng::Stream,
    /// Whether passes over source rows update BatchNorm's running statistics (the released
    /// code's behaviour); by default only target rows do.
    pub source_statistics: bool,
    /// The epoch's source batches, for methods that need source rows.
    pub source: Option<&'s mut SourceBatches<'a>>,
    pub device: &'s Device,
}

impl StepContext<'_, '_> {
    /// The target model in train mode on target rows `batch`.
    pub fn forward(&mut self, batch: &Tensors) -> candle_core::Result<Output> {
        self.model.forward(
            &batch.categorical,
            &batch.numerical,
            &mut Mode::train(Some(self.noise)),
        )
    }

    /// The target model in inference mode on `batch` (running statistics, no dropout),
    /// differentiable in its parameters.
    pub fn infer(&self, batch: &Tensors) -> candle_core::Result<Output> {
        self.model
            .forward(&batch.categorical, &batch.numerical, &mut Mode::eval())
    }

    /// The target model in train mode on source rows `batch`: batch statistics, its own
    /// dropout stream, the running statistics left as they are unless asked.
    pub fn forward_source(&mut self, batch: &Tensors) -> candle_core::Result<Output> {
        self.model.forward(
            &batch.categorical,
            &batch.numerical,
            &mut Mode {
                train: true,
                noise: Some(self.source_noise),
                statistics: self.source_statistics,
            },
        )
    }

    /// The target model on `target` and on the next source batch (drawn first), with
    /// that batch: `(on target, on source, source batch)`.
    pub fn forward_both(
        &mut self,
        target: &Tensors,
    ) -> Result<(Output, Output, Tensors), AdaptError> {
        let source = self.source_batch()?;
        let on_target = self.forward(target)?;
        let on_source = self.forward_source(&source)?;
        Ok((on_target, on_source, source))
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
