//! The WGAN-GP game of DAA and TAA: critics that each take some features as real and the
//! target encoder's features on target rows as fake. Per target batch: `n_critic` critic
//! steps on fresh source batches, then the model's term w_e * Σ_k -D_k(fake_k).
//!
//! `adapt.critic_inputs` says how the features are computed. `symmetric`: all of them in
//! inference mode (running statistics, no dropout), so that a critic compares features made
//! the same way and the source rows are normalised with the target model's statistics,
//! which keeps the domains' differences; the term scores an inference-mode pass over the
//! target batch (the task loss keeps its training pass). `released`: D1's reals in
//! inference mode, D2's reals normalised with each source batch's own statistics (which
//! equalises every unit's mean and variance across the domains by construction) and with
//! dropout, the fakes from the training pass.

use std::collections::HashMap;

use candle_core::Tensor;

use super::adversaries::Adversaries;
use super::critic::{Config as CriticConfig, Critic};
use super::measure::{StepScalars, sum_and_first_non_finite};
use super::{AdaptError, Adaptation, Adapted, ProbeFeatures, Setup, StepContext};
use crate::config::schema::CriticInputs;
use crate::data::batch::Tensors;
use crate::models::model::Model;
use crate::nn::Mode;
use crate::rng;

/// Which features a critic takes as real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Real {
    /// The frozen source encoder on source rows (DAA's D1: e_s).
    FrozenSource,
    /// The target encoder on source rows (DAA's D2: e_t^s).
    TargetOnSource,
}

/// One critic's part in the game: what it takes as real, and which per-task block of the
/// feature it sees (`None`: all of it).
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub real: Real,
    pub block: Option<usize>,
}

/// A critic with its role and its values at the epoch's critic steps.
struct Duel {
    critic: Critic,
    role: Role,
    loss: StepScalars,
    wasserstein: StepScalars,
}

pub struct Game {
    duels: Vec<Duel>,
    adversaries: Adversaries,
    config: CriticConfig,
    adversarial: f64,
    /// Width of one per-task block of the feature.
    block_width: usize,
    /// The frozen source model (E_s), where a critic needs it.
    frozen: Option<Model>,
    penalty_noise: rng::Stream,
    critic_steps: usize,
    inputs: CriticInputs,
    /// Seconds since last taken: the frozen source model's features, and the rest of the
    /// critic steps.
    frozen_seconds: f64,
    critic_seconds: f64,
}

impl Game {
    pub fn build(setup: &Setup<'_>, roles: &[Role]) -> Result<Box<dyn Adaptation>, AdaptError> {
        let exp = setup.experiment;
        let config: CriticConfig = exp.adapt.critic.params();
        let block_width = setup.feature_width / setup.feature_blocks.max(1);
        let widths: Vec<usize> = roles
            .iter()
            .map(|r| r.block.map_or(setup.feature_width, |_| block_width))
            .collect();
        let (adversaries, critics) = Adversaries::new(setup, &widths, &config)?;
        let frozen = roles
            .iter()
            .any(|r| r.real == Real::FrozenSource)
            .then(|| setup.source_model("a critic of the frozen source encoder"))
            .transpose()?;
        let weights: super::weights::Config = exp.adapt.weights.params();
        Ok(Box::new(Game {
            duels: critics
                .into_iter()
                .zip(roles)
                .map(|(critic, &role)| Duel {
                    critic,
                    role,
                    loss: StepScalars::default(),
                    wasserstein: StepScalars::default(),
                })
                .collect(),
            adversaries,
            config,
            adversarial: weights.adversarial,
            block_width,
            frozen,
            penalty_noise: rng::stream(exp.train.seed, "penalty", 0),
            critic_steps: 0,
            inputs: exp.adapt.critic_inputs,
            frozen_seconds: 0.0,
            critic_seconds: 0.0,
        }))
    }

    /// What a critic of `role` sees of `feature`.
    fn view(&self, feature: &Tensor, role: Role) -> candle_core::Result<Tensor> {
        match role.block {
            Some(t) => feature.narrow(1, t * self.block_width, self.block_width),
            None => Ok(feature.clone()),
        }
    }

    /// One step of every critic on a fresh source batch against the fake features.
    fn critic_step(
        &mut self,
        step: &mut StepContext<'_, '_>,
        fake: &Tensor,
    ) -> Result<(), AdaptError> {
        let started = std::time::Instant::now();
        let s = step.source_batch()?;
        let frozen_started = std::time::Instant::now();
        let frozen = match &self.frozen {
            Some(frozen) => Some(
                frozen
                    .forward(&s.categorical, &s.numerical, &mut Mode::eval())?
                    .feature
                    .detach(),
            ),
            None => None,
        };
        let frozen_seconds = frozen_started.elapsed().as_secs_f64();
        self.frozen_seconds += frozen_seconds;
        let on_source = if self
            .duels
            .iter()
            .any(|d| d.role.real == Real::TargetOnSource)
        {
            Some(match self.inputs {
                CriticInputs::Symmetric => step.infer(&s)?.feature.detach(),
                CriticInputs::Released => step.forward_source(&s)?.feature.detach(),
            })
        } else {
            // No critic takes it (`daa_single`); a released-mode pass that feeds the
            // running statistics still runs for that.
            if self.inputs == CriticInputs::Released && step.source_statistics {
                step.forward_source(&s)?;
            }
            None
        };
        let mut losses = Vec::with_capacity(self.duels.len());
        for k in 0..self.duels.len() {
            let role = self.duels[k].role;
            let real = match role.real {
                Real::FrozenSource => frozen.as_ref().expect("built with the frozen model"),
                Real::TargetOnSource => on_source.as_ref().expect("computed for this role"),
            };
            let (real, fake) = (self.view(real, role)?, self.view(fake, role)?);
            let duel = &mut self.duels[k];
            let critic = &duel.critic;
            let wasserstein =
                (critic.forward(&real)?.mean_all()? - critic.forward(&fake)?.mean_all()?)?;
            let penalty = critic.gradient_penalty(
                &real,
                &fake,
                self.config.penalty_weight,
                self.config.penalty_gradient,
                &mut self.penalty_noise,
            )?;
            let loss = (penalty - &wasserstein)?;
            duel.loss.push(&loss);
            duel.wasserstein.push(&wasserstein);
            losses.push(loss);
        }
        self.adversaries.step(&sum(losses)?.backward()?)?;
        self.critic_steps += 1;
        self.critic_seconds += started.elapsed().as_secs_f64() - frozen_seconds;
        Ok(())
    }
}

fn sum(terms: Vec<Tensor>) -> candle_core::Result<Tensor> {
    let mut terms = terms.into_iter();
    let first = terms.next().expect("at least one term");
    terms.try_fold(first, |acc, t| acc + t)
}

impl Adaptation for Game {
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        vec![("adapt.weights.adversarial", self.adversarial)]
    }

    fn begin_epoch(&mut self, seed: u64, epoch: u64) {
        self.penalty_noise = rng::stream(seed, "penalty", epoch);
    }

    fn take_seconds(&mut self) -> Vec<(&'static str, f64)> {
        let frozen = std::mem::take(&mut self.frozen_seconds);
        let critics = std::mem::take(&mut self.critic_seconds);
        vec![("frozen_features", frozen), ("critic_steps", critics)]
    }

    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        // One feature of the target batch serves both games: detached, it is the critics'
        // fake; the model's term scores it with the updated critics. Released inputs take
        // it from the training pass, symmetric ones from an inference-mode pass.
        let output = step.forward(target)?;
        let scored = match self.inputs {
            CriticInputs::Symmetric => step.infer(target)?.feature,
            CriticInputs::Released => output.feature.clone(),
        };
        let fake = scored.detach();
        for _ in 0..self.config.n_critic {
            self.critic_step(step, &fake)?;
        }
        let fooling = self
            .duels
            .iter()
            .map(|d| {
                d.critic
                    .forward(&self.view(&scored, d.role)?)?
                    .mean_all()?
                    .neg()
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let term = (sum(fooling)? * self.adversarial)?;
        Ok(Adapted::with_term(output, term))
    }

    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        let n = self.critic_steps.max(1) as f64;
        let (mut loss, mut wasserstein) = (Vec::new(), Vec::new());
        for (k, duel) in self.duels.iter_mut().enumerate() {
            let values = duel.loss.take()?;
            let (loss_sum, diverged) = sum_and_first_non_finite(&values);
            let (wasserstein_sum, _) = sum_and_first_non_finite(&duel.wasserstein.take()?);
            if let Some(at) = diverged {
                return Err(AdaptError::NonFinite {
                    settings: vec![
                        ("adapt.critic.lr", self.config.lr),
                        ("adapt.critic.penalty_weight", self.config.penalty_weight),
                    ],
                    step: at / self.config.n_critic.max(1) + 1,
                    what: format!(
                        "critic {}'s loss is {} after {at} critic steps",
                        k + 1,
                        values[at]
                    ),
                });
            }
            loss.push(loss_sum / n);
            wasserstein.push(wasserstein_sum / n);
        }
        self.critic_steps = 0;
        let mut report = serde_json::Map::new();
        report.insert("critic_loss".into(), loss.into());
        report.insert("wasserstein".into(), wasserstein.into());
        Ok(report)
    }

    fn held_out(
        &self,
        probe: &ProbeFeatures<'_>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        let mean_score = |critic: &Critic, x: &Tensor, role: Role| -> Result<f64, AdaptError> {
            let score = critic.forward(&self.view(x, role)?)?.mean_all()?;
            Ok(score
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?)
        };
        let target_train = (probe.target_train)()?;
        let (mut held_out, mut train_rows) = (Vec::new(), Vec::new());
        for duel in &self.duels {
            let real = match duel.role.real {
                Real::FrozenSource => probe.frozen_source.ok_or_else(|| {
                    AdaptError::Invalid("the probe has no frozen source features".into())
                })?,
                Real::TargetOnSource => &probe.source,
            };
            let real = mean_score(&duel.critic, real, duel.role)?;
            held_out.push(real - mean_score(&duel.critic, &probe.target, duel.role)?);
            train_rows.push(real - mean_score(&duel.critic, &target_train, duel.role)?);
        }
        let mut report = serde_json::Map::new();
        report.insert("critic_wasserstein".into(), held_out.into());
        report.insert("critic_wasserstein_train_rows".into(), train_rows.into());
        Ok(report)
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
