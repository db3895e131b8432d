//! The multi-task backbones. Each file holds one backbone (its configuration and model);
//! [`BACKBONES`] maps the `kind` of a `registry/backbones` entry to both.

pub mod aitm;
pub mod metaheac;
pub mod mmoe;
pub mod model;
pub mod omoe;
pub mod ple;
pub mod sharedbottom;
pub mod singletask;

use candle_core::{Result, Tensor};
use serde::de::DeserializeOwned;

use crate::config::check::{Invalid, ensure};
use crate::config::registry::{Kind, find, typed};
pub use crate::nn::mlp::check_dims;
use crate::nn::{Mode, Params, embedding};

/// The kinds of `registry/backbones` entries and how each is built.
pub const BACKBONES: &[Kind<Builder>] = &[
    backbone::<singletask::Config>("singletask"),
    backbone::<sharedbottom::Config>("sharedbottom"),
    backbone::<omoe::Config>("omoe"),
    backbone::<mmoe::Config>("mmoe"),
    backbone::<ple::Config>("ple"),
    backbone::<aitm::Config>("aitm"),
    backbone::<metaheac::Config>("metaheac"),
];

const fn backbone<
    C: BackboneConfig + serde::Serialize + crate::config::check::Validate + schemars::JsonSchema,
>(
    name: &'static str,
) -> Kind<Builder> {
    Kind::new(name, typed::<C>(), build::<C>)
}

/// The data-dependent sizes a backbone is built for.
#[derive(Debug, Clone)]
pub struct Dims {
    pub cardinalities: Vec<u32>,
    pub numerical: usize,
    pub tasks: usize,
    pub embedding: embedding::Config,
}

impl Dims {
    /// Width of the flattened input layer: (fields + 1) * dim.
    pub fn input_width(&self) -> usize {
        (self.cardinalities.len() + 1) * self.embedding.dim
    }

    /// The input layer named as MTReclib's models name theirs (`embedding`,
    /// `numerical_layer`).
    pub fn input_layer(&self, params: &mut Params) -> Result<embedding::InputLayer> {
        embedding::InputLayer::new(
            params,
            "embedding",
            "numerical_layer",
            &self.cardinalities,
            self.numerical,
            &self.embedding,
        )
    }
}

/// What a backbone computes for a batch.
#[derive(Debug, Clone)]
pub struct Output {
    /// `(B, tasks)` logits, where the backbone has them (all but MetaHeac).
    pub logits: Option<Tensor>,
    /// `(B, tasks)` probabilities.
    pub probabilities: Tensor,
    /// `(B, width)`: the representation the domain critics see (REFERENCE.md section 3).
    pub feature: Tensor,
}

impl Output {
    /// Each task's mean binary cross-entropy against `(B, tasks)` 0/1 labels: on the
    /// logits where the backbone has them (stable when saturated), else on probabilities.
    pub fn task_losses(&self, labels: &Tensor) -> Result<Vec<Tensor>> {
        let tasks = labels.dim(1)?;
        (0..tasks)
            .map(|t| {
                let y = labels.narrow(1, t, 1)?;
                match &self.logits {
                    Some(logits) => crate::nn::loss::bce_with_logits(&logits.narrow(1, t, 1)?, &y),
                    None => crate::nn::loss::bce(&self.probabilities.narrow(1, t, 1)?, &y),
                }
            })
            .collect()
    }
}

pub trait Backbone: Send + Sync {
    /// `categorical`: `(B, fields)` u32 indices with field offsets; `numerical`: `(B, n)`.
    fn forward(
        &self,
        categorical: &Tensor,
        numerical: &Tensor,
        mode: &mut Mode<'_>,
    ) -> Result<Output>;

    /// Width of [`Output::feature`].
    fn feature_width(&self) -> usize;

    /// How many equal per-task blocks [`Output::feature`] concatenates (1: one feature
    /// shared by the tasks).
    fn feature_blocks(&self) -> usize;

    /// The parameter-name prefixes of the body: the input layer and the bottoms or experts
    /// that make the shared representation (what partial fine-tuning freezes and L2-SP
    /// holds near the source model); the rest (towers, gates, task-specific layers) are
    /// the heads.
    fn body(&self) -> &'static [&'static str];

    /// Whether the parameter `name` belongs to the body.
    fn is_body(&self, name: &str) -> bool {
        self.body().iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }
}

/// A backbone configuration that can build its model.
pub trait BackboneConfig: DeserializeOwned {
    fn build(&self, dims: &Dims, params: &mut Params) -> Result<Box<dyn Backbone>>;
}

pub type Builder = fn(&serde_json::Value, &Dims, &mut Params) -> Result<Box<dyn Backbone>>;

fn build<C: BackboneConfig>(
    params_json: &serde_json::Value,
    dims: &Dims,
    params: &mut Params,
) -> Result<Box<dyn Backbone>> {
    let config: C = serde_json::from_value(params_json.clone())
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    config.build(dims, params)
}

/// Builds the backbone of `kind` with its canonical parameters into `params`.
pub fn build_backbone(
    kind: &str,
    config: &serde_json::Value,
    dims: &Dims,
    params: &mut Params,
) -> Result<Box<dyn Backbone>> {
    match find(BACKBONES, kind) {
        Some(backbone) => (backbone.build)(config, dims, params),
        None => Err(candle_core::Error::Msg(format!(
            "`{kind}` is not a backbone kind"
        ))),
    }
}

/// One tower per task (`tower.{t}`), each an MLP over `tower_dims` ending in Linear(-> 1).
pub fn towers(
    params: &mut Params,
    dims: &Dims,
    input: usize,
    tower_dims: &[usize],
    dropout: f64,
) -> Result<crate::nn::mlp::Mlp> {
    crate::nn::mlp::Mlp::new(
        params,
        &indexed("tower", dims.tasks),
        input,
        tower_dims,
        dropout,
        true,
    )
}

/// `count` MLPs named `{prefix}.{i}` over the flattened input layer, without output layer.
pub fn bottoms(
    params: &mut Params,
    dims: &Dims,
    prefix: &str,
    count: usize,
    bottom_dims: &[usize],
    dropout: f64,
) -> Result<crate::nn::mlp::Mlp> {
    crate::nn::mlp::Mlp::new(
        params,
        &indexed(prefix, count),
        dims.input_width(),
        bottom_dims,
        dropout,
        false,
    )
}

/// `["prefix.0", "prefix.1", ...]`.
pub fn indexed(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}.{i}")).collect()
}

/// Output of logits `(T, B, 1)` from fused towers.
pub fn from_logits(towers: Tensor, feature: Tensor) -> Result<Output> {
    let logits = towers.squeeze(2)?.t()?.contiguous()?;
    Ok(Output {
        probabilities: candle_nn::ops::sigmoid(&logits)?,
        logits: Some(logits),
        feature,
    })
}

/// Mixes experts `(E, B, D)` with gate weights `(B, G, E)` (softmaxed): `(B, G, D)`; the
/// fused CPU kernel (or its CUDA twin under `train.kernels = "device"`), or a batched
/// product elsewhere.
pub fn mix(experts: &Tensor, gates: &Tensor) -> Result<Tensor> {
    let device = experts.device();
    if crate::nn::fused_kernels(device) || crate::nn::device_kernels(device) {
        return crate::nn::mixture::mixture(experts, gates);
    }
    gates.matmul(&experts.transpose(0, 1)?.contiguous()?)
}

/// Softmax over the last dimension of gate logits.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(x, candle_core::D::Minus1)
}

pub fn check_tower(dims: &[usize], dropout: f64) -> std::result::Result<(), Invalid> {
    check_dims(dims, "tower_dims")?;
    ensure(
        (0.0..1.0).contains(&dropout),
        "dropout",
        "must be in [0, 1)",
    )
}

pub fn check_count(n: usize, key: &str) -> std::result::Result<(), Invalid> {
    ensure(n > 0, key, "must be positive")
}
