//! One epoch of training per method: supervised (single_domain, finetune), dual or single
//! critic adversarial adaptation (daa, daa_single) and DANN.

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use serde::Serialize;

use super::TrainError;
use crate::adapt::critic::{Config as CriticConfig, Critic};
use crate::adapt::weights::Config as Weights;
use crate::data::Table;
use crate::data::batch::{Batch, Batches, LastBatch, Tensors, epoch_order, subsample};
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::optim::Adam;
use crate::nn::{Mode, Params};
use crate::rng;

/// What an epoch measured (averages over its steps).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EpochStats {
    pub steps: usize,
    pub task_loss: f64,
    /// Per critic: the mean critic loss (negative Wasserstein estimate plus penalty).
    pub critic_loss: Vec<f64>,
    /// Per critic: mean D(real) - D(fake), the Wasserstein estimate.
    pub wasserstein: Vec<f64>,
    /// DANN: the domain classifier's loss.
    pub domain_loss: Option<f64>,
}

/// The critics of DAA (D1 always, D2 for the dual method) or DANN's domain classifier.
pub struct Adversaries {
    pub params: Params,
    pub critics: Vec<Critic>,
    pub optimizer: Adam,
    pub config: CriticConfig,
}

/// Everything that learns during target training.
pub struct Learner {
    pub model: Model,
    pub optimizer: Adam,
    /// The frozen source model (DAA's E_s).
    pub frozen: Option<Model>,
    pub adversaries: Option<Adversaries>,
}

pub struct Data<'a> {
    pub target: &'a Table,
    pub target_rows: &'a [u32],
    pub source: Option<&'a Table>,
    pub source_fraction: f64,
    pub batch_size: usize,
    pub device: &'a Device,
}

fn tensors(batch: &Batch, table: &Table, device: &Device) -> candle_core::Result<Tensors> {
    batch.to_tensors(table.header.fields, table.header.numerical, device)
}

/// Σ_t w_t BCE_t / T (the reference's (w_c BCE_ctr + w_ac BCE_ctcvr) / 2).
fn task_loss(output: &Output, labels: &Tensor, weights: &Weights) -> candle_core::Result<Tensor> {
    let losses = output.task_losses(labels)?;
    let mut total = (&losses[0] * weights.tasks[0])?;
    for (loss, w) in losses.iter().zip(&weights.tasks).skip(1) {
        total = (total + (loss * *w)?)?;
    }
    total / losses.len() as f64
}

/// Source batches for an epoch: a fresh subsample, cycled as often as needed.
struct SourceBatches<'a> {
    table: &'a Table,
    rows: Vec<u32>,
    batch_size: usize,
    offsets: Vec<u32>,
    position: usize,
}

impl SourceBatches<'_> {
    fn next(&mut self) -> Batch {
        if self.position + self.batch_size > self.rows.len() {
            self.position = 0;
        }
        let size = self.batch_size.min(self.rows.len());
        let order = self.rows[self.position..self.position + size].to_vec();
        self.position += size;
        let mut batch = Batch::default();
        Batches::new(
            self.table,
            order,
            size,
            LastBatch::Keep,
            Some(self.offsets.clone()),
        )
        .next_into(&mut batch);
        batch
    }
}

pub fn run_epoch(
    method: crate::config::schema::Method,
    learner: &mut Learner,
    data: &Data<'_>,
    weights: &Weights,
    seed: u64,
    epoch: u64,
    bar: &ProgressBar,
) -> Result<EpochStats, TrainError> {
    use crate::config::schema::Method;
    let order = epoch_order(data.target_rows, seed, "shuffle/target", epoch, true);
    // At least two rows per batch: BatchNorm needs a batch variance.
    let batch_size = data.batch_size.min(order.len().max(2));
    let mut targets = Batches::new(
        data.target,
        order,
        batch_size,
        LastBatch::Keep,
        Some(learner.model.offsets.clone()),
    );
    bar.set_length(targets.batch_count() as u64);
    bar.set_position(0);
    let mut source = data.source.map(|table| SourceBatches {
        table,
        rows: subsample(
            &(0..table.rows() as u32).collect::<Vec<_>>(),
            data.source_fraction,
            seed,
            "subsample/source",
            epoch,
        ),
        batch_size,
        offsets: learner.model.offsets.clone(),
        position: 0,
    });
    let mut noise = rng::stream(seed, "dropout/target", epoch);
    let mut penalty_noise = rng::stream(seed, "penalty", epoch);
    let mut stats = EpochStats::default();
    let critics = learner.adversaries.as_ref().map_or(0, |a| a.critics.len());
    stats.critic_loss = vec![0.0; critics];
    stats.wasserstein = vec![0.0; critics];
    let mut critic_steps = 0usize;
    let mut domain_loss = 0.0;
    let mut batch = Batch::default();
    while targets.next_into(&mut batch) {
        bar.inc(1);
        if batch.size < 2 {
            continue;
        }
        let t = tensors(&batch, data.target, data.device)?;
        let loss = match method {
            Method::SingleDomain | Method::Finetune | Method::SourceOnly => {
                let out = learner.model.forward(
                    &t.categorical,
                    &t.numerical,
                    &mut Mode {
                        train: true,
                        noise: Some(&mut noise),
                    },
                )?;
                task_loss(&out, &t.labels, weights)?
            }
            Method::Daa | Method::DaaSingle => {
                let source = source
                    .as_mut()
                    .ok_or_else(|| TrainError::Invalid("DAA needs a source data set".into()))?;
                let adversaries = learner
                    .adversaries
                    .as_mut()
                    .expect("DAA learners have critics");
                let frozen = learner
                    .frozen
                    .as_ref()
                    .expect("DAA learners have the frozen source model");
                let target_feature = learner
                    .model
                    .forward(
                        &t.categorical,
                        &t.numerical,
                        &mut Mode {
                            train: true,
                            noise: Some(&mut noise),
                        },
                    )?
                    .feature
                    .detach();
                for _ in 0..adversaries.config.n_critic {
                    let s = tensors(&source.next(), source.table, data.device)?;
                    let e_s = frozen
                        .forward(&s.categorical, &s.numerical, &mut Mode::eval())?
                        .feature
                        .detach();
                    let e_ts = learner
                        .model
                        .forward(
                            &s.categorical,
                            &s.numerical,
                            &mut Mode {
                                train: true,
                                noise: Some(&mut noise),
                            },
                        )?
                        .feature
                        .detach();
                    let reals = [&e_s, &e_ts];
                    let mut total: Option<Tensor> = None;
                    for (k, critic) in adversaries.critics.iter().enumerate() {
                        let (real_score, fake_score) = (
                            critic.forward(reals[k])?.mean_all()?,
                            critic.forward(&target_feature)?.mean_all()?,
                        );
                        let wasserstein = (&real_score - &fake_score)?;
                        let penalty = critic.gradient_penalty(
                            reals[k],
                            &target_feature,
                            adversaries.config.penalty_weight,
                            adversaries.config.penalty_gradient,
                            &mut penalty_noise,
                        )?;
                        let loss = (penalty - &wasserstein)?;
                        stats.critic_loss[k] += f64::from(loss.to_scalar::<f32>()?);
                        stats.wasserstein[k] += f64::from(wasserstein.to_scalar::<f32>()?);
                        total = Some(match total {
                            Some(sum) => (sum + loss)?,
                            None => loss,
                        });
                    }
                    let total = total.expect("at least one critic");
                    adversaries.optimizer.step(&total.backward()?)?;
                    critic_steps += 1;
                }
                let out = learner.model.forward(
                    &t.categorical,
                    &t.numerical,
                    &mut Mode {
                        train: true,
                        noise: Some(&mut noise),
                    },
                )?;
                let mut adversarial: Option<Tensor> = None;
                for critic in &adversaries.critics {
                    let term = critic.forward(&out.feature)?.mean_all()?.neg()?;
                    adversarial = Some(match adversarial {
                        Some(sum) => (sum + term)?,
                        None => term,
                    });
                }
                (task_loss(&out, &t.labels, weights)?
                    + (adversarial.expect("at least one critic") * weights.adversarial)?)?
            }
            Method::Dann => {
                let source = source
                    .as_mut()
                    .ok_or_else(|| TrainError::Invalid("DANN needs a source data set".into()))?;
                let adversaries = learner
                    .adversaries
                    .as_mut()
                    .expect("DANN learners have a domain classifier");
                let s = tensors(&source.next(), source.table, data.device)?;
                let out = learner.model.forward(
                    &t.categorical,
                    &t.numerical,
                    &mut Mode {
                        train: true,
                        noise: Some(&mut noise),
                    },
                )?;
                let out_s = learner.model.forward(
                    &s.categorical,
                    &s.numerical,
                    &mut Mode {
                        train: true,
                        noise: Some(&mut noise),
                    },
                )?;
                let features = Tensor::cat(&[&out_s.feature, &out.feature], 0)?;
                // Gradient reversal: the forward value is the features, the gradient negated.
                let reversed = ((features.detach() * 2.0)? - &features)?;
                let logits = adversaries.critics[0].forward(&reversed)?;
                let domains = Tensor::cat(
                    &[
                        Tensor::zeros((out_s.feature.dim(0)?, 1), logits.dtype(), data.device)?,
                        Tensor::ones((out.feature.dim(0)?, 1), logits.dtype(), data.device)?,
                    ],
                    0,
                )?;
                let domain = crate::nn::loss::bce_with_logits(&logits, &domains)?;
                domain_loss += f64::from(domain.to_scalar::<f32>()?);
                (task_loss(&out, &t.labels, weights)? + (domain * weights.adversarial)?)?
            }
        };
        stats.task_loss += f64::from(loss.to_scalar::<f32>()?);
        let grads = loss.backward()?;
        learner.optimizer.step(&grads)?;
        if method == Method::Dann {
            learner
                .adversaries
                .as_mut()
                .expect("DANN learners have a domain classifier")
                .optimizer
                .step(&grads)?;
        }
        stats.steps += 1;
    }
    let steps = stats.steps.max(1) as f64;
    stats.task_loss /= steps;
    for k in 0..critics {
        stats.critic_loss[k] /= critic_steps.max(1) as f64;
        stats.wasserstein[k] /= critic_steps.max(1) as f64;
    }
    if method == Method::Dann {
        stats.domain_loss = Some(domain_loss / steps);
        stats.critic_loss.clear();
        stats.wasserstein.clear();
    }
    Ok(stats)
}
