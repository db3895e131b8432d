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
    /// Per critic, its real features: the frozen source encoder on source rows (D1) or
    /// the target encoder on source rows (D2); the fake ones are always the target encoder
    /// on target rows.
    pub reals: Vec<Real>,
    pub optimizer: Adam,
    pub config: CriticConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Real {
    FrozenSource,
    TargetOnSource,
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

/// Source batches for an epoch: a fresh subsample in fixed-size batches, started over
/// (dropping the short remainder) as often as needed; the batch buffers are reused.
struct SourceBatches<'a> {
    table: &'a Table,
    rows: Vec<u32>,
    size: usize,
    offsets: Vec<u32>,
    batches: Batches<'a>,
    batch: Batch,
}

impl<'a> SourceBatches<'a> {
    fn new(table: &'a Table, rows: Vec<u32>, batch_size: usize, offsets: Vec<u32>) -> Self {
        let size = batch_size.min(rows.len());
        let batches = Batches::new(
            table,
            rows.clone(),
            size.max(1),
            LastBatch::Drop,
            Some(offsets.clone()),
        );
        SourceBatches {
            table,
            rows,
            size,
            offsets,
            batches,
            batch: Batch::default(),
        }
    }

    fn next(&mut self, device: &Device) -> candle_core::Result<Tensors> {
        if !self.batches.next_into(&mut self.batch) {
            self.batches = Batches::new(
                self.table,
                self.rows.clone(),
                self.size.max(1),
                LastBatch::Drop,
                Some(self.offsets.clone()),
            );
            self.batches.next_into(&mut self.batch);
        }
        tensors(&self.batch, self.table, device)
    }
}

fn forward_train(
    model: &Model,
    t: &Tensors,
    noise: &mut rng::Stream,
) -> candle_core::Result<Output> {
    model.forward(
        &t.categorical,
        &t.numerical,
        &mut Mode {
            train: true,
            noise: Some(noise),
        },
    )
}

fn sum(terms: Vec<Tensor>) -> candle_core::Result<Tensor> {
    let mut terms = terms.into_iter();
    let first = terms.next().expect("at least one term");
    terms.try_fold(first, |acc, t| acc + t)
}

/// Running sums of an epoch's adversarial measurements.
struct Tally {
    critic_loss: Vec<f64>,
    wasserstein: Vec<f64>,
    critic_steps: usize,
    domain_loss: f64,
}

/// n_critic critic steps on fresh source batches, then the target model's DAA loss:
/// task loss + w_e * sum over critics of -D(e_t^t).
#[allow(clippy::too_many_arguments)]
fn daa_loss(
    learner: &mut Learner,
    t: &Tensors,
    source: &mut SourceBatches<'_>,
    device: &Device,
    weights: &Weights,
    noise: &mut rng::Stream,
    penalty_noise: &mut rng::Stream,
    tally: &mut Tally,
) -> Result<Tensor, TrainError> {
    let adversaries = learner
        .adversaries
        .as_mut()
        .expect("DAA learners have critics");
    let fake = forward_train(&learner.model, t, noise)?.feature.detach();
    for _ in 0..adversaries.config.n_critic {
        let s = source.next(device)?;
        let frozen = match &learner.frozen {
            Some(frozen) => Some(
                frozen
                    .forward(&s.categorical, &s.numerical, &mut Mode::eval())?
                    .feature
                    .detach(),
            ),
            None => None,
        };
        let on_source = forward_train(&learner.model, &s, noise)?.feature.detach();
        let mut losses = Vec::new();
        for (k, critic) in adversaries.critics.iter().enumerate() {
            let real = match adversaries.reals[k] {
                Real::FrozenSource => frozen.as_ref().expect("D1 has the frozen source model"),
                Real::TargetOnSource => &on_source,
            };
            let wasserstein =
                (critic.forward(real)?.mean_all()? - critic.forward(&fake)?.mean_all()?)?;
            let config = &adversaries.config;
            let penalty = critic.gradient_penalty(
                real,
                &fake,
                config.penalty_weight,
                config.penalty_gradient,
                penalty_noise,
            )?;
            let loss = (penalty - &wasserstein)?;
            tally.critic_loss[k] += f64::from(loss.to_scalar::<f32>()?);
            tally.wasserstein[k] += f64::from(wasserstein.to_scalar::<f32>()?);
            losses.push(loss);
        }
        adversaries.optimizer.step(&sum(losses)?.backward()?)?;
        tally.critic_steps += 1;
    }
    let out = forward_train(&learner.model, t, noise)?;
    let fooling = adversaries
        .critics
        .iter()
        .map(|c| c.forward(&out.feature)?.mean_all()?.neg())
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((task_loss(&out, &t.labels, weights)? + (sum(fooling)? * weights.adversarial)?)?)
}

/// DANN: task loss + w_e * the domain classifier's BCE on gradient-reversed features.
fn dann_loss(
    learner: &Learner,
    t: &Tensors,
    source: &mut SourceBatches<'_>,
    device: &Device,
    weights: &Weights,
    noise: &mut rng::Stream,
    tally: &mut Tally,
) -> Result<Tensor, TrainError> {
    let classifier = &learner
        .adversaries
        .as_ref()
        .expect("DANN learners have a domain classifier")
        .critics[0];
    let s = source.next(device)?;
    let out = forward_train(&learner.model, t, noise)?;
    let out_s = forward_train(&learner.model, &s, noise)?;
    let features = Tensor::cat(&[&out_s.feature, &out.feature], 0)?;
    // Gradient reversal: the forward value is the features, the gradient negated.
    let reversed = ((features.detach() * 2.0)? - &features)?;
    let logits = classifier.forward(&reversed)?;
    let (n_s, n_t) = (out_s.feature.dim(0)?, out.feature.dim(0)?);
    let domains = Tensor::cat(
        &[
            Tensor::zeros((n_s, 1), logits.dtype(), device)?,
            Tensor::ones((n_t, 1), logits.dtype(), device)?,
        ],
        0,
    )?;
    let domain = crate::nn::loss::bce_with_logits(&logits, &domains)?;
    tally.domain_loss += f64::from(domain.to_scalar::<f32>()?);
    Ok((task_loss(&out, &t.labels, weights)? + (domain * weights.adversarial)?)?)
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
    let offsets = learner.model.offsets.clone();
    let mut targets = Batches::new(
        data.target,
        order,
        batch_size,
        LastBatch::Keep,
        Some(offsets.clone()),
    );
    bar.set_length(data.target_rows.len() as u64);
    bar.set_position(0);
    let mut source = data.source.map(|table| {
        let all: Vec<u32> = (0..table.rows() as u32).collect();
        let rows = subsample(&all, data.source_fraction, seed, "subsample/source", epoch);
        SourceBatches::new(table, rows, batch_size, offsets.clone())
    });
    let no_source = || TrainError::Invalid("this method needs a source data set".into());
    let mut noise = rng::stream(seed, "dropout/target", epoch);
    let mut penalty_noise = rng::stream(seed, "penalty", epoch);
    let critics = learner.adversaries.as_ref().map_or(0, |a| a.critics.len());
    let mut tally = Tally {
        critic_loss: vec![0.0; critics],
        wasserstein: vec![0.0; critics],
        critic_steps: 0,
        domain_loss: 0.0,
    };
    let mut stats = EpochStats::default();
    let mut batch = Batch::default();
    while targets.next_into(&mut batch) {
        bar.inc(batch.size as u64);
        if batch.size < 2 {
            continue;
        }
        let t = tensors(&batch, data.target, data.device)?;
        let loss = match method {
            Method::SingleDomain | Method::Finetune | Method::SourceOnly => task_loss(
                &forward_train(&learner.model, &t, &mut noise)?,
                &t.labels,
                weights,
            )?,
            Method::Daa | Method::DaaSingle | Method::DaaD2 => {
                let source = source.as_mut().ok_or_else(no_source)?;
                daa_loss(
                    learner,
                    &t,
                    source,
                    data.device,
                    weights,
                    &mut noise,
                    &mut penalty_noise,
                    &mut tally,
                )?
            }
            Method::Dann => {
                let source = source.as_mut().ok_or_else(no_source)?;
                dann_loss(
                    learner,
                    &t,
                    source,
                    data.device,
                    weights,
                    &mut noise,
                    &mut tally,
                )?
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
    if method == Method::Dann {
        stats.domain_loss = Some(tally.domain_loss / steps);
    } else {
        let n = tally.critic_steps.max(1) as f64;
        stats.critic_loss = tally.critic_loss.iter().map(|v| v / n).collect();
        stats.wasserstein = tally.wasserstein.iter().map(|v| v / n).collect();
    }
    Ok(stats)
}
