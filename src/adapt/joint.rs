//! Joint training: the target model trains on labelled source and target rows together.
//! Each step pairs a target batch of n_t rows with the next source batch of n_s rows
//! (the epoch's seeded source subsample, in batches as large as the target's) and
//! minimises the weighted mean of their per-row task losses, each target row weighing
//! `target_weight`: (w n_t L_t + n_s L_s) / (w n_t + n_s). It starts from the source
//! model or from scratch (`start`); from scratch it is the classic pooled baseline.

use serde::{Deserialize, Serialize};

use super::measure::EpochMean;
use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, StepContext};
use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};
use crate::data::batch::Tensors;

pub const JOINT: Kind<Method> = Kind::new(
    "joint",
    typed::<Config>(),
    Method {
        needs: |component| {
            let config: Config = component.params();
            Needs {
                source_model: config.start == Start::Source,
                ..Needs::ALIGNMENT
            }
        },
        build: Joint::build,
    },
);

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// The pretrained source model.
    Source,
    /// A fresh initialisation (with the source pretraining's optimiser settings).
    Scratch,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    pub start: Start,
    /// The weight of a target row's loss relative to a source row's.
    pub target_weight: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        ensure(
            self.target_weight > 0.0 && self.target_weight.is_finite(),
            "target_weight",
            "must be positive",
        )
    }
}

struct Joint {
    target_weight: f64,
    source_loss: EpochMean,
}

impl Joint {
    fn build(setup: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        let config: Config = setup.experiment.adapt.method.params();
        Ok(Box::new(Joint {
            target_weight: config.target_weight,
            source_loss: EpochMean::new("source_task_loss"),
        }))
    }
}

/// The weights of the target and source batches' mean losses that make their sum the
/// mean over both batches' rows with each target row weighing `target_weight`:
/// (w n_t, n_s) / (w n_t + n_s).
pub fn shares(targets: usize, sources: usize, target_weight: f64) -> (f64, f64) {
    let (n_t, n_s) = (targets as f64, sources as f64);
    let total = target_weight * n_t + n_s;
    (target_weight * n_t / total, n_s / total)
}

impl Adaptation for Joint {
    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        let (output, on_source, s) = step.forward_both(target)?;
        let source_loss = (step.task_loss)(&on_source, &s.labels)?;
        self.source_loss.add(&source_loss);
        let (target_share, source_share) =
            shares(target.labels.dim(0)?, s.labels.dim(0)?, self.target_weight);
        Ok(Adapted {
            output,
            task_weight: target_share,
            term: Some((source_loss * source_share)?),
        })
    }

    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(self.source_loss.report()?)
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn the_shares_make_a_row_weighted_mean_over_both_batches() {
        // Target losses 1, 3 (weight 3 each), source losses 2, 4, 6: the weighted mean is
        // (3*1 + 3*3 + 2 + 4 + 6) / (3*2 + 3) = 24 / 9.
        let (target, source) = shares(2, 3, 3.0);
        let mean = target * (1.0 + 3.0) / 2.0 + source * (2.0 + 4.0 + 6.0) / 3.0;
        assert!((mean - 24.0 / 9.0).abs() < 1e-12, "{mean}");
        // Weight 1 over equal batches: each batch half.
        assert_eq!(shares(128, 128, 1.0), (0.5, 0.5));
    }
}
