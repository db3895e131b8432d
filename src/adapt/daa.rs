//! Dual adversarial adaptation (Su et al., TOIS 2024) and its single-critic ablations.
//! Each critic is paired with the features it takes as real: D1 the frozen source
//! encoder's on source rows, D2 the target encoder's on source rows; the fake features are
//! always the target encoder's on target rows. Per target batch: `n_critic` WGAN-GP critic
//! steps on fresh source batches, then the model's term w_e * Σ_k -D_k(e_t^t).

use std::collections::HashMap;

use candle_core::Tensor;

use super::adversaries::Adversaries;
use super::critic::{Config as CriticConfig, Critic};
use super::weights::Config as Weights;
use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, Step, entry};
use crate::config::registry::Kind;
use crate::data::batch::Tensors;
use crate::models::model::Model;
use crate::nn::Mode;
use crate::rng;

const ADVERSARIAL: Needs = Needs {
    source_model: true,
    source_rows: true,
    training: true,
};

pub const DAA: Kind<Method> = entry(
    "daa",
    Method {
        about: "dual adversarial adaptation: critics D1 (frozen source vs target encoder) and D2 (target encoder on source vs target rows)",
        needs: ADVERSARIAL,
        build: |setup| Daa::build(setup, &[Real::FrozenSource, Real::TargetOnSource]),
    },
);

pub const DAA_SINGLE: Kind<Method> = entry(
    "daa_single",
    Method {
        about: "DAA with critic D1 only (frozen source encoder vs target encoder)",
        needs: ADVERSARIAL,
        build: |setup| Daa::build(setup, &[Real::FrozenSource]),
    },
);

pub const DAA_D2: Kind<Method> = entry(
    "daa_d2",
    Method {
        about: "DAA with critic D2 only (target encoder on source rows vs on target rows)",
        needs: ADVERSARIAL,
        build: |setup| Daa::build(setup, &[Real::TargetOnSource]),
    },
);

/// Which features a critic takes as real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Real {
    /// The frozen source encoder on source rows (D1's e_s).
    FrozenSource,
    /// The target encoder on source rows (D2's e_t^s).
    TargetOnSource,
}

impl Real {
    fn name(self) -> &'static str {
        match self {
            Real::FrozenSource => "D1",
            Real::TargetOnSource => "D2",
        }
    }
}

/// A critic and the features it takes as real.
struct Duel {
    critic: Critic,
    real: Real,
    /// Sums over the epoch's critic steps: critic loss and Wasserstein estimate.
    loss: f64,
    wasserstein: f64,
}

struct Daa {
    duels: Vec<Duel>,
    adversaries: Adversaries,
    config: CriticConfig,
    weights: Weights,
    /// The frozen source model (E_s), where a critic needs it.
    frozen: Option<Model>,
    penalty_noise: rng::Stream,
    critic_steps: usize,
}

impl Daa {
    fn build(setup: &Setup<'_>, reals: &[Real]) -> Result<Box<dyn Adaptation>, AdaptError> {
        let exp = setup.experiment;
        let config: CriticConfig = exp.adapt.critic.params();
        let (adversaries, critics) = Adversaries::new(setup, reals.len(), &config)?;
        let frozen = if reals.contains(&Real::FrozenSource) {
            let path = setup
                .source_checkpoint
                .ok_or_else(|| AdaptError::Invalid("DAA needs a source model".into()))?;
            let frozen = Model::new(exp, setup.schema, setup.device, exp.train.seed)?;
            frozen.load(path)?;
            Some(frozen)
        } else {
            None
        };
        Ok(Box::new(Daa {
            duels: critics
                .into_iter()
                .zip(reals)
                .map(|(critic, &real)| Duel {
                    critic,
                    real,
                    loss: 0.0,
                    wasserstein: 0.0,
                })
                .collect(),
            adversaries,
            config,
            weights: exp.adapt.weights.params(),
            frozen,
            penalty_noise: rng::stream(exp.train.seed, "penalty", 0),
            critic_steps: 0,
        }))
    }

    /// One step of every critic on a fresh source batch against the fake features.
    fn critic_step(&mut self, step: &mut Step<'_, '_>, fake: &Tensor) -> Result<(), AdaptError> {
        let s = step.source_batch()?;
        let frozen = match &self.frozen {
            Some(frozen) => Some(
                frozen
                    .forward(&s.categorical, &s.numerical, &mut Mode::eval())?
                    .feature
                    .detach(),
            ),
            None => None,
        };
        let on_source = step.forward_source(&s)?.feature.detach();
        let mut losses = Vec::with_capacity(self.duels.len());
        for duel in &mut self.duels {
            let real = match duel.real {
                Real::FrozenSource => frozen.as_ref().expect("D1 has the frozen source model"),
                Real::TargetOnSource => &on_source,
            };
            let critic = &duel.critic;
            let wasserstein =
                (critic.forward(real)?.mean_all()? - critic.forward(fake)?.mean_all()?)?;
            let penalty = critic.gradient_penalty(
                real,
                fake,
                self.config.penalty_weight,
                self.config.penalty_gradient,
                &mut self.penalty_noise,
            )?;
            let loss = (penalty - &wasserstein)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(AdaptError::NonFinite(format!(
                    "critic {}'s loss is {value} after {} critic steps",
                    duel.real.name(),
                    self.critic_steps
                )));
            }
            duel.loss += f64::from(value);
            duel.wasserstein += f64::from(wasserstein.to_scalar::<f32>()?);
            losses.push(loss);
        }
        self.adversaries.step(&sum(losses)?.backward()?)?;
        self.critic_steps += 1;
        Ok(())
    }
}

fn sum(terms: Vec<Tensor>) -> candle_core::Result<Tensor> {
    let mut terms = terms.into_iter();
    let first = terms.next().expect("at least one term");
    terms.try_fold(first, |acc, t| acc + t)
}

impl Adaptation for Daa {
    fn begin_epoch(&mut self, seed: u64, epoch: u64) {
        self.penalty_noise = rng::stream(seed, "penalty", epoch);
    }

    fn forward(
        &mut self,
        step: &mut Step<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        // One pass over the target batch serves both games: its detached features are the
        // critics' fakes, and the model's term scores them with the updated critics.
        let output = step.forward(target)?;
        let fake = output.feature.detach();
        for _ in 0..self.config.n_critic {
            self.critic_step(step, &fake)?;
        }
        let fooling = self
            .duels
            .iter()
            .map(|d| d.critic.forward(&output.feature)?.mean_all()?.neg())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let term = (sum(fooling)? * self.weights.adversarial)?;
        Ok(Adapted {
            output,
            term: Some(term),
        })
    }

    fn end_epoch(&mut self) -> serde_json::Map<String, serde_json::Value> {
        let n = self.critic_steps.max(1) as f64;
        let (loss, wasserstein): (Vec<f64>, Vec<f64>) = self
            .duels
            .iter_mut()
            .map(|d| {
                let means = (d.loss / n, d.wasserstein / n);
                (d.loss, d.wasserstein) = (0.0, 0.0);
                means
            })
            .unzip();
        self.critic_steps = 0;
        let mut report = serde_json::Map::new();
        report.insert("critic_loss".into(), loss.into());
        report.insert("wasserstein".into(), wasserstein.into());
        report
    }

    fn state(&self) -> Result<HashMap<String, Tensor>, AdaptError> {
        self.adversaries.state()
    }

    fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        shown: &str,
    ) -> Result<(), AdaptError> {
        self.adversaries.load_state(tensors, shown)
    }
}
