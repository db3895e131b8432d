//! Parameters and buffers, stored fused for speed (all experts of a layer in one tensor)
//! and named as PyTorch's state_dict names them: each stored tensor is a stack, along its
//! first dimension, of "shards", one per PyTorch tensor.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_distr::StandardNormal;

use super::checkpoint::CheckpointError;
use crate::rng;

/// How a shard's initial values are drawn (from the stream (seed, "init", shard name)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// U(-bound, bound).
    Bounded(f64),
    /// N(0, std).
    Gaussian(f64),
    Constant(f64),
}

impl Init {
    /// PyTorch's Linear default: kaiming-uniform with a = sqrt(5), i.e. U(±1/sqrt(fan_in)),
    /// for the weight and the bias alike.
    pub fn linear(fan_in: usize) -> Self {
        Init::Bounded(1.0 / (fan_in as f64).sqrt())
    }

    /// Xavier-uniform of a (rows, cols) matrix: U(±sqrt(6 / (rows + cols))).
    pub fn xavier(rows: usize, cols: usize) -> Self {
        Init::Bounded((6.0 / (rows + cols) as f64).sqrt())
    }

    fn draw(self, n: usize, stream: &mut rng::Stream) -> Vec<f32> {
        match self {
            Init::Bounded(bound) => (0..n)
                .map(|_| stream.random_range(-bound..bound) as f32)
                .collect(),
            Init::Gaussian(std) => (0..n)
                .map(|_| (std * stream.sample::<f64, _>(StandardNormal)) as f32)
                .collect(),
            Init::Constant(value) => vec![value as f32; n],
        }
    }
}

/// Whether an optimiser updates a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Trainable,
    /// BatchNorm running statistics: updated by the forward pass, never by an optimiser.
    Statistic,
}

#[derive(Debug, Clone)]
struct Shard {
    name: String,
    shape: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Slot {
    var: Var,
    role: Role,
    shards: Vec<Shard>,
}

/// Every tensor of a model, with its PyTorch names.
#[derive(Debug, Clone)]
pub struct Params {
    device: Device,
    seed: u64,
    slots: Vec<Slot>,
    counters: Vec<(Vec<String>, Arc<AtomicI64>)>,
    /// Bytes that training needs for the tensors added so far (see [`TRAINING_BYTES`]).
    training_bytes: u64,
    /// The limit on `training_bytes`: the machine's memory.
    memory: u64,
    refused: Option<Refused>,
    /// Values each input row makes in the layers built so far ([`Params::outputs`]).
    row_width: u64,
}

/// Bytes that training holds per parameter: the value, its gradient and Adam's two moments.
pub const TRAINING_BYTES: u64 = 16;

/// A tensor that was not allocated because training the model would not fit in memory.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The PyTorch name of the tensor's first shard.
    pub tensor: String,
    /// Bytes training would need for the tensors so far, this one included.
    pub needed: u64,
    /// The machine's memory in bytes.
    pub memory: u64,
}

/// `tensors` with `prefix` before each name (the parts of a checkpoint that holds several
/// state dicts).
pub fn prefixed(
    prefix: &str,
    tensors: impl IntoIterator<Item = (String, Tensor)>,
) -> impl Iterator<Item = (String, Tensor)> {
    tensors
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), v))
}

/// The tensors of `tensors` whose names start with `prefix`, without it.
pub fn under(
    tensors: &std::collections::HashMap<String, Tensor>,
    prefix: &str,
) -> std::collections::HashMap<String, Tensor> {
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

impl Params {
    pub fn new(device: &Device, seed: u64) -> Self {
        Params {
            device: device.clone(),
            seed,
            slots: Vec::new(),
            counters: Vec::new(),
            training_bytes: 0,
            memory: crate::alloc::physical_memory().unwrap_or(u64::MAX),
            refused: None,
            row_width: 0,
        }
    }

    /// Counts `n` more values per input row that a layer makes (its outputs), for the
    /// memory estimate of a batch's activations.
    pub fn outputs(&mut self, n: usize) {
        self.row_width = self.row_width.saturating_add(n as u64);
    }

    /// Values per input row of the layers built so far.
    pub fn row_width(&self) -> u64 {
        self.row_width
    }

    /// Bytes that training needs for the parameters added so far.
    pub fn training_bytes(&self) -> u64 {
        self.training_bytes
    }

    /// The machine's memory in bytes, the limit of what a model may need.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// The tensor refused by [`Params::add`], if one was: the model does not fit.
    pub fn refused(&self) -> Option<&Refused> {
        self.refused.as_ref()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Registers a tensor made of `names.len()` shards of `shape` each, stacked along the
    /// first dimension (one shard: the tensor has exactly `shape`). Returns the fused Var of
    /// shape `[names.len() * shape[0], shape[1..]]`.
    pub fn add(
        &mut self,
        names: &[String],
        shape: &[usize],
        init: Init,
        role: Role,
    ) -> candle_core::Result<Var> {
        let per_shard: usize = shape.iter().product();
        // Checked before allocating: a size from a config (a layer of 10^8 units) would
        // otherwise abort the process, or grow until the system kills it.
        let elements = (per_shard as u64).saturating_mul(names.len() as u64);
        self.training_bytes = self
            .training_bytes
            .saturating_add(elements.saturating_mul(TRAINING_BYTES));
        if self.training_bytes > self.memory {
            let refused = Refused {
                tensor: names.first().cloned().unwrap_or_default(),
                needed: self.training_bytes,
                memory: self.memory,
            };
            self.refused = Some(refused);
            return Err(candle_core::Error::Msg(
                "the model does not fit in memory".into(),
            ));
        }
        let mut values = Vec::with_capacity(per_shard * names.len());
        for name in names {
            values.extend(init.draw(
                per_shard,
                &mut rng::stream(self.seed, &format!("init/{name}"), 0),
            ));
        }
        let mut fused = shape.to_vec();
        fused[0] *= names.len();
        let var = Var::from_tensor(&Tensor::from_vec(values, fused, &self.device)?)?;
        self.slots.push(Slot {
            var: var.clone(),
            role,
            shards: names
                .iter()
                .map(|n| Shard {
                    name: n.clone(),
                    shape: shape.to_vec(),
                })
                .collect(),
        });
        Ok(var)
    }

    /// A scalar counter (BatchNorm's num_batches_tracked) saved under each of `names`.
    pub fn counter(&mut self, names: &[String]) -> Arc<AtomicI64> {
        let counter = Arc::new(AtomicI64::new(0));
        self.counters.push((names.to_vec(), counter.clone()));
        counter
    }

    /// The tensors an optimiser updates.
    pub fn trainable(&self) -> Vec<Var> {
        self.slots
            .iter()
            .filter(|s| s.role == Role::Trainable)
            .map(|s| s.var.clone())
            .collect()
    }

    /// Every trainable tensor with the PyTorch name of its first shard (for reports).
    pub fn named_trainable(&self) -> Vec<(String, Var)> {
        self.slots
            .iter()
            .filter(|s| s.role == Role::Trainable)
            .map(|s| (s.shards[0].name.clone(), s.var.clone()))
            .collect()
    }

    /// The state dict: PyTorch name -> tensor (shards split out, counters as i64 scalars),
    /// copied: later in-place updates of the parameters do not change it.
    pub fn state_dict(&self) -> candle_core::Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for slot in &self.slots {
            let rows = slot.shards[0].shape[0];
            for (i, shard) in slot.shards.iter().enumerate() {
                let t = slot
                    .var
                    .as_tensor()
                    .narrow(0, i * rows, rows)?
                    .reshape(shard.shape.as_slice())?;
                out.insert(shard.name.clone(), t.to_device(&Device::Cpu)?.copy()?);
            }
        }
        for (names, counter) in &self.counters {
            for name in names {
                out.insert(
                    name.clone(),
                    Tensor::new(counter.load(Ordering::Relaxed), &Device::Cpu)?,
                );
            }
        }
        Ok(out)
    }

    /// Gradients per PyTorch name (for tests and reports).
    pub fn split_by_name(
        &self,
        fused: &[(Var, Tensor)],
    ) -> candle_core::Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (var, tensor) in fused {
            let slot = self
                .slots
                .iter()
                .find(|s| s.var.as_tensor().id() == var.as_tensor().id())
                .expect("a registered var");
            let rows = slot.shards[0].shape[0];
            for (i, shard) in slot.shards.iter().enumerate() {
                out.insert(
                    shard.name.clone(),
                    tensor
                        .narrow(0, i * rows, rows)?
                        .reshape(shard.shape.as_slice())?,
                );
            }
        }
        Ok(out)
    }

    /// The name of the first trainable tensor holding a NaN or an infinity, if any.
    pub fn first_non_finite(&self) -> candle_core::Result<Option<String>> {
        for slot in self.slots.iter().filter(|s| s.role == Role::Trainable) {
            // x * 0 is 0 for every finite x and NaN for NaN and the infinities.
            let probe = (slot.var.as_tensor() * 0.0)?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            if !probe.is_finite() {
                return Ok(Some(slot.shards[0].name.clone()));
            }
        }
        Ok(None)
    }

    /// Writes the state dict as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let tensors = self.state_dict().map_err(|e| CheckpointError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        super::checkpoint::save(&tensors.into_iter().collect(), path)
    }

    /// Loads a state dict from safetensors; every missing, unexpected or mis-shaped tensor
    /// is listed in the error, and nothing is changed unless all match.
    pub fn load(&self, path: &Path) -> Result<(), CheckpointError> {
        let tensors = super::checkpoint::load(path)?;
        self.load_state_dict(&tensors, &path.display().to_string())
    }

    pub fn load_state_dict(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
        shown: &str,
    ) -> Result<(), CheckpointError> {
        let mut expected: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for slot in &self.slots {
            for shard in &slot.shards {
                expected.insert(&shard.name, shard.shape.clone());
            }
        }
        for (names, _) in &self.counters {
            for name in names {
                expected.insert(name, Vec::new());
            }
        }
        let missing: Vec<String> = expected
            .keys()
            .filter(|n| !tensors.contains_key(**n))
            .map(|n| n.to_string())
            .collect();
        let mut unexpected: Vec<String> = tensors
            .keys()
            .filter(|n| !expected.contains_key(n.as_str()))
            .cloned()
            .collect();
        unexpected.sort();
        let mut misshaped: Vec<String> = expected
            .iter()
            .filter_map(|(name, shape)| {
                let t = tensors.get(*name)?;
                (t.dims() != shape.as_slice())
                    .then(|| format!("{name} (checkpoint {:?}, model {:?})", t.dims(), shape))
            })
            .collect();
        misshaped.sort();
        if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
            return Err(CheckpointError::Mismatch {
                path: shown.to_string(),
                missing,
                unexpected,
                misshaped,
            });
        }
        let read = |e: candle_core::Error| CheckpointError::Read {
            path: shown.to_string(),
            message: e.to_string(),
        };
        for slot in &self.slots {
            let parts: Vec<Tensor> = slot
                .shards
                .iter()
                .map(|s| tensors[&s.name].to_dtype(DType::F32))
                .collect::<candle_core::Result<_>>()
                .map_err(read)?;
            let fused = Tensor::cat(&parts, 0)
                .and_then(|t| t.reshape(slot.var.shape()))
                .and_then(|t| t.to_device(&self.device))
                .map_err(read)?;
            slot.var.set(&fused).map_err(read)?;
        }
        for (names, counter) in &self.counters {
            let value = tensors[&names[0]]
                .to_dtype(DType::I64)
                .and_then(|t| t.to_scalar::<i64>())
                .map_err(read)?;
            counter.store(value, Ordering::Relaxed);
        }
        Ok(())
    }
}
