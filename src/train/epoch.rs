//! One epoch of training, the same loop for source pretraining and for every adaptation
//! method: shuffled batches of a phase's rows, the method's forward (which may take steps
//! of its own first), the task loss plus the method's term, one optimiser step.

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use serde::Serialize;

use super::TrainError;
use super::state::Learner;
pub use crate::adapt::TaskLoss;
use crate::adapt::measure::{StepScalars, sum_and_first_non_finite, term_gradient_ratio};
use crate::adapt::{AdaptError, Adaptation, SourceBatches, StepContext};
use crate::data::Table;
use crate::data::batch::{Batch, Batches, LastBatch, epoch_order};
use crate::models::Output;
use crate::models::model::Model;
use crate::rng;

/// What an epoch measured (means over its model steps).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EpochStats {
    pub steps: usize,
    /// The supervised task loss.
    pub task_loss: f64,
    /// The whole objective: the task loss plus the method's weighted term.
    pub loss: f64,
    /// For a method with a term: the mean over the epoch's steps of the term's gradient
    /// norm over the task loss's, with respect to the trained parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term_gradient_ratio: Option<f64>,
    /// Wall time of the ratio's extra backward passes (logged, not recorded: timings
    /// would make metrics.jsonl differ between identical runs).
    #[serde(skip)]
    pub ratio_seconds: f64,
    /// What the method reports (critic losses and Wasserstein estimates, a domain loss).
    #[serde(flatten)]
    pub adaptation: serde_json::Map<String, serde_json::Value>,
}

/// A phase's supervised loss, owned by the phase ([`TaskLoss`] is its borrow).
pub type OwnedTaskLoss<'a> = Box<dyn Fn(&Output, &Tensor) -> candle_core::Result<Tensor> + 'a>;

/// The rows one phase trains on, and the purposes of its random streams.
pub struct Phase<'a> {
    /// What the phase is, for errors: "target training", "source pretraining".
    pub name: &'static str,
    /// The phase's learning rate (key, value in force), named when training diverges.
    pub lr: (&'static str, f64),
    pub table: &'a Table,
    pub rows: &'a [u32],
    pub batch_size: usize,
    /// Stream purposes of the row order and of the model's dropout masks.
    pub shuffle: &'static str,
    pub dropout: &'static str,
    /// Source rows for methods that need them: the table, the rows to draw from and the
    /// fraction of them drawn afresh each epoch.
    pub source: Option<(&'a Table, &'a [u32], f64)>,
    /// Whether passes over source rows update BatchNorm's running statistics.
    pub source_statistics: bool,
    pub device: &'a Device,
    /// The supervised loss of a batch's outputs against its labels.
    pub task_loss: OwnedTaskLoss<'a>,
    /// The experiment's seed, which keys every stream of the phase.
    pub seed: u64,
}

/// Trains the learner for one epoch: the passes over the phase's rows numbered `passes`
/// (counted from 0 over the whole run; each pass's streams are keyed by its number).
pub fn run_epoch(
    learner: &mut Learner<'_>,
    phase: &Phase<'_>,
    passes: std::ops::Range<u64>,
    bar: &ProgressBar,
) -> Result<EpochStats, TrainError> {
    let Learner {
        model,
        optimizer,
        adaptation,
    } = learner;
    let (model, task_loss, seed): (&Model, TaskLoss<'_>, u64) =
        (*model, &*phase.task_loss, phase.seed);
    // At least two rows per batch: BatchNorm needs a batch variance.
    let batch_size = phase.batch_size.min(phase.rows.len().max(2));
    bar.set_length(phase.rows.len() as u64 * (passes.end - passes.start));
    bar.set_position(0);
    let mut stats = EpochStats::default();
    let (mut task_values, mut loss_values) = (StepScalars::default(), StepScalars::default());
    let mut ratios = StepScalars::default();
    let _uploads = crate::device::cached_uploads(phase.device);
    // Counted from 1, for errors.
    let epoch = (passes.start / (passes.end - passes.start).max(1)) as usize + 1;
    for pass in passes {
        let order = epoch_order(phase.rows, seed, phase.shuffle, pass, true);
        let mut batches = Batches::new(
            phase.table,
            order,
            batch_size,
            LastBatch::Keep,
            Some(model.offsets.clone()),
        );
        let mut source = phase.source.map(|(table, pool, fraction)| {
            SourceBatches::new(
                table,
                pool,
                fraction,
                seed,
                pass,
                batch_size,
                model.offsets.clone(),
            )
        });
        let mut noise = rng::stream(seed, phase.dropout, pass);
        let mut source_noise = rng::stream(seed, "dropout/source-rows", pass);
        adaptation.begin_epoch(seed, pass);
        let mut batch = Batch::default();
        while batches.next_into(&mut batch) {
            bar.inc(batch.size as u64);
            if batch.size < 2 {
                continue;
            }
            let t = batch.to_tensors(
                phase.table.header.fields,
                phase.table.header.numerical,
                phase.device,
            )?;
            let mut step = StepContext {
                model,
                task_loss,
                noise: &mut noise,
                source_noise: &mut source_noise,
                source_statistics: phase.source_statistics,
                source: source.as_mut(),
                device: phase.device,
            };
            let adapted = adaptation.forward(&mut step, &t)?;
            let task = task_loss(&adapted.output, &t.labels)?;
            let weighted = if adapted.task_weight == 1.0 {
                task.clone()
            } else {
                (&task * adapted.task_weight)?
            };
            let (loss, alone) = match adapted.term {
                Some(term) => ((&weighted + term)?, Some(weighted)),
                None => (weighted, None),
            };
            task_values.push(&task);
            loss_values.push(&loss);
            let grads = loss.backward()?;
            if let Some(alone) = alone {
                // A second backward pass, of the task loss alone: no value changes.
                let timer = std::time::Instant::now();
                ratios.push(&term_gradient_ratio(
                    &grads,
                    &alone.backward()?,
                    optimizer.vars(),
                )?);
                stats.ratio_seconds += timer.elapsed().as_secs_f64();
            }
            optimizer.step(&grads)?;
            adaptation.after_backward(&grads)?;
            stats.steps += 1;
        }
    }
    finish_epoch(
        phase,
        epoch,
        model,
        &mut **adaptation,
        stats,
        [task_values, loss_values, ratios],
    )
}

/// The epoch's means, or the first step where training diverged, named with the settings
/// likeliest to blame. `scalars`: the steps' task losses, whole losses and term gradient
/// ratios.
fn finish_epoch(
    phase: &Phase<'_>,
    epoch: usize,
    model: &Model,
    adaptation: &mut dyn Adaptation,
    mut stats: EpochStats,
    scalars: [StepScalars; 3],
) -> Result<EpochStats, TrainError> {
    let [mut task_values, mut loss_values, mut ratios] = scalars;
    // The losses are read once, here: a read per step would stall a GPU at every step.
    let (task_values, loss_values) = (task_values.take()?, loss_values.take()?);
    let (task_sum, task_diverged) = sum_and_first_non_finite(&task_values);
    let (loss_sum, loss_diverged) = sum_and_first_non_finite(&loss_values);
    // The settings that scale what diverged, likeliest first.
    let term = adaptation.term_settings();
    let model_first = || {
        std::iter::once(phase.lr)
            .chain(term.iter().copied())
            .collect()
    };
    let diverged = |at: usize| {
        let task = !task_values[at].is_finite();
        let (what, value) = if task {
            ("task loss", task_values[at])
        } else {
            ("adaptation term", loss_values[at] - task_values[at])
        };
        TrainError::NonFinite {
            phase: phase.name,
            epoch,
            step: at + 1,
            what: format!("the {what} is {value}"),
            settings: if task {
                model_first()
            } else {
                term.iter().copied().chain([phase.lr]).collect()
            },
        }
    };
    let first = match (task_diverged, loss_diverged) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // A method's own networks (critics) diverge within a model step, before its loss: the
    // method names the cause when its step is the first.
    let report = adaptation.end_epoch();
    if let (Some(at), Err(AdaptError::NonFinite { step, .. })) = (first, &report)
        && at + 1 < *step
    {
        return Err(diverged(at));
    }
    stats.adaptation = match report {
        Err(AdaptError::NonFinite {
            step,
            what,
            settings,
        }) => {
            return Err(TrainError::NonFinite {
                phase: phase.name,
                epoch,
                step,
                what,
                settings: settings.into_iter().chain(model_first()).collect(),
            });
        }
        report => report?,
    };
    if let Some(at) = first {
        return Err(diverged(at));
    }
    if let Some(name) = model.params.first_non_finite()? {
        return Err(TrainError::NonFinite {
            phase: phase.name,
            epoch,
            step: stats.steps,
            what: format!("parameter {name} is not finite"),
            settings: model_first(),
        });
    }
    let steps = stats.steps.max(1) as f64;
    let ratios = ratios.take()?;
    stats.term_gradient_ratio = (!ratios.is_empty())
        .then(|| ratios.iter().map(|&r| f64::from(r)).sum::<f64>() / ratios.len() as f64);
    stats.task_loss = task_sum / steps;
    stats.loss = loss_sum / steps;
    Ok(stats)
}

/// Passes over `rows` in batches of `batch_size` per epoch, so that an epoch holds at
/// least `min_steps` optimiser steps (one pass when a pass already does).
pub fn passes_per_epoch(rows: usize, batch_size: usize, min_steps: usize) -> u64 {
    let per_pass = rows.div_ceil(batch_size.min(rows.max(2)).max(1)).max(1);
    min_steps.div_ceil(per_pass).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::passes_per_epoch;

    #[test]
    fn an_epoch_holds_enough_steps() {
        // 1,000 rows in batches of 256: 4 steps a pass.
        assert_eq!(passes_per_epoch(1000, 256, 1), 1);
        assert_eq!(passes_per_epoch(1000, 256, 4), 1);
        assert_eq!(passes_per_epoch(1000, 256, 5), 2);
        assert_eq!(passes_per_epoch(1000, 256, 20), 5);
        // A batch larger than the rows is all the rows: one step a pass.
        assert_eq!(passes_per_epoch(1000, 2048, 20), 20);
        assert_eq!(passes_per_epoch(0, 256, 3), 3);
    }
}
