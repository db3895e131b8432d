//! The alignment diagnostics of a run: at epoch 0 and after every epoch, inference-mode
//! features of a fixed probe set that training never sees (source rows held out of
//! pretraining and adaptation, target validation rows), the gap between the domains'
//! features ([`crate::alignment`]), the drift of the target model's features from the
//! frozen source model's on the same rows, and what the method's own networks measure
//! there (each critic's held-out Wasserstein estimate beside its estimate on the target's
//! training rows).

use candle_core::{Device, Tensor};

use super::TrainError;
use super::evaluate::inference_outputs;
use crate::adapt::{Adaptation, ProbeFeatures};
use crate::alignment::{domain_gap, mean_row_distance};
use crate::data::Table;
use crate::data::batch::epoch_order;
use crate::models::model::Model;

/// Rows of one domain, in one table.
struct Rows<'a> {
    table: &'a Table,
    rows: Vec<u32>,
}

pub struct Probe<'a> {
    source: Rows<'a>,
    target: Rows<'a>,
    /// The target's training rows (up to as many as the probe's target rows).
    target_train: Rows<'a>,
    /// The frozen source model's features on the probe rows: fixed, so computed once.
    frozen: Option<Frozen>,
    batch_size: usize,
    seed: u64,
    device: &'a Device,
}

/// The frozen source model's features: on the source probe rows (D1's held-out reals, and
/// on the host for the drift) and on the target probe rows (on the host, for the drift).
struct Frozen {
    source: Tensor,
    source_host: Vec<f32>,
    target_host: Vec<f32>,
}

/// A feature matrix's values, row-major, on the host.
fn host(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()
}

/// Where a probe's rows come from.
pub struct ProbeRows<'a> {
    /// The source table and its rows that pretraining and adaptation never train on.
    pub source: (&'a Table, &'a [u32]),
    /// The target table (training split), its validation rows and its training rows.
    pub target: &'a Table,
    pub valid: &'a [u32],
    pub train: &'a [u32],
}

impl<'a> Probe<'a> {
    /// `rows` rows per domain (seeded draws from the held-out rows), with the frozen source
    /// model's features where there is a source model.
    pub fn new(
        from: ProbeRows<'a>,
        rows: usize,
        source_model: Option<&Model>,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<Self, TrainError> {
        let draw = |pool: &[u32], purpose: &str| {
            let mut order = epoch_order(pool, seed, purpose, 0, true);
            order.truncate(rows);
            order
        };
        let mut probe = Probe {
            source: Rows {
                table: from.source.0,
                rows: draw(from.source.1, "probe/source"),
            },
            target: Rows {
                table: from.target,
                rows: draw(from.valid, "probe/target"),
            },
            target_train: Rows {
                table: from.target,
                rows: from.train[..from.train.len().min(rows)].to_vec(),
            },
            frozen: None,
            batch_size,
            seed,
            device,
        };
        if let Some(model) = source_model {
            let source = probe.features(model, &probe.source)?;
            probe.frozen = Some(Frozen {
                source_host: host(&source)?,
                target_host: host(&probe.features(model, &probe.target)?)?,
                source,
            });
        }
        Ok(probe)
    }

    /// `(rows, width)` inference-mode features of `model` on `rows`.
    fn features(&self, model: &Model, rows: &Rows<'_>) -> candle_core::Result<Tensor> {
        let mut parts = Vec::new();
        inference_outputs(
            model,
            rows.table,
            &rows.rows,
            self.batch_size,
            self.device,
            |out| {
                parts.push(out.feature.detach());
                Ok::<(), candle_core::Error>(())
            },
        )?;
        Tensor::cat(&parts, 0)
    }

    /// The alignment of `model` now: metrics.jsonl's "alignment" object.
    pub fn measure(
        &self,
        model: &Model,
        adaptation: &dyn Adaptation,
    ) -> Result<serde_json::Value, TrainError> {
        let source = self.features(model, &self.source)?;
        let target = self.features(model, &self.target)?;
        let width = source.dim(1)?;
        let (s, t) = (host(&source)?, host(&target)?);
        let gap = domain_gap(&s, &t, width, self.seed);
        let mut report = match serde_json::to_value(gap).expect("plain numbers") {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a struct serializes to an object"),
        };
        let drift = match &self.frozen {
            Some(frozen) => {
                let (ns, nt) = (s.len() as f64, t.len() as f64);
                let distance = (mean_row_distance(&s, &frozen.source_host, width) * ns
                    + mean_row_distance(&t, &frozen.target_host, width) * nt)
                    / (ns + nt).max(1.0);
                serde_json::Value::from(distance)
            }
            None => serde_json::Value::Null,
        };
        report.insert("drift".into(), drift);
        // The target's training rows only for a method that measures on them.
        let target_train = || self.features(model, &self.target_train);
        let features = ProbeFeatures {
            frozen_source: self.frozen.as_ref().map(|f| &f.source),
            target_train: &target_train,
            source,
            target,
        };
        report.extend(adaptation.held_out(&features)?);
        Ok(serde_json::Value::Object(report))
    }
}
