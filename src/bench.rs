//! Training-step timing per backbone at the reference sizes (`daa bench step`, and
//! `cargo bench --bench step`): ms per step (forward, backward, Adam update), the same step
//! in PyTorch on the same machine and device when Python with torch is available, and the
//! fraction of the measured matrix-product rate. daa and PyTorch alternate in rounds and
//! each side's best round counts, so that both see the same machine conditions. The
//! backbones are the registry's entries at their registry sizes, on the AliExpress schema
//! and embedding entries. Returns measurements; the callers print them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::Rng;

use crate::config::Registry;
use crate::config::registry::find;
use crate::data::batch::field_offsets;
use crate::models::{BACKBONES, Backbone, Dims, build_backbone};
use crate::nn::optim::Adam;
use crate::nn::{Mode, Params};

impl From<crate::config::ConfigError> for BenchError {
    fn from(e: crate::config::ConfigError) -> Self {
        BenchError::Config(Box::new(e))
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}

fn synchronize(device: &Device) -> candle_core::Result<()> {
    device.synchronize()
}

/// Matrix-product FLOPs of a step: 2 per weight element per row forward, 3x with backward.
fn step_flops(params: &Params, batch: usize) -> f64 {
    let elements: usize = params
        .named_trainable()
        .iter()
        .filter(|(name, v)| v.rank() == 2 && !name.ends_with("embedding.weight"))
        .map(|(_, v)| v.elem_count())
        .sum();
    6.0 * batch as f64 * elements as f64
}

/// The f32 matrix-product rate through candle on `device`, GFLOP/s.
fn gemm_rate(device: &Device, batch: usize) -> candle_core::Result<f64> {
    let a = Tensor::ones((batch, 2176), DType::F32, device)?;
    let b = Tensor::ones((2176, 4096), DType::F32, device)?;
    a.matmul(&b)?;
    synchronize(device)?;
    let t = Instant::now();
    for _ in 0..3 {
        a.matmul(&b)?;
    }
    synchronize(device)?;
    Ok(3.0 * 2.0 * (batch * 2176 * 4096) as f64 / t.elapsed().as_secs_f64() / 1e9)
}

/// PyTorch's training step, timed on request by `tools/torch_step_bench.py --serve` in a
/// child process that keeps its models warm between requests.
struct Torch {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
    python: String,
}

impl Torch {
    /// Starts the server, or says why PyTorch will not be timed.
    fn start(python: &str, script: &str, device: &str) -> Option<Self> {
        let torch_device = if device.starts_with("cuda") {
            "cuda"
        } else {
            "cpu"
        };
        let spawned = Command::new(python)
            .arg(script)
            .args([
                "--serve",
                "--threads",
                &candle_core::utils::get_num_threads().to_string(),
                "--device",
                torch_device,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(mut child) => Some(Torch {
                requests: child.stdin.take().expect("piped"),
                answers: BufReader::new(child.stdout.take().expect("piped")),
                child,
                python: python.to_string(),
            }),
            Err(e) => {
                tracing::warn!(
                    "PyTorch: skipped (`{python}`: {e}; set BENCH_PYTHON to a Python with torch)"
                );
                None
            }
        }
    }

    /// ms per step over `steps` steps of `model`; `None` (with the reason printed) if the
    /// server failed, which ends it.
    fn time(&mut self, model: &str, steps: usize) -> Option<f64> {
        let mut line = String::new();
        let answered = writeln!(self.requests, "{model} {steps}")
            .and_then(|_| self.requests.flush())
            .and_then(|_| self.answers.read_line(&mut line));
        let ms = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["ms"].as_f64());
        if ms.is_none() {
            let _ = self.child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = self.child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            let reason = match (stderr.lines().last(), answered) {
                (Some(last), _) => last.to_string(),
                (None, Err(e)) => e.to_string(),
                (None, Ok(_)) => "no answer".to_string(),
            };
            tracing::warn!(
                "PyTorch: `{}` failed on {model} ({reason}); set BENCH_PYTHON to a Python with torch",
                self.python
            );
        }
        ms
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rounds of timing per model, alternating daa and PyTorch; each side's best round counts.
const ROUNDS: usize = 3;

/// Where the benchmark runs.
#[derive(Debug, Clone)]
pub struct Machine {
    pub device: String,
    pub threads: usize,
    /// The f32 matrix-product rate through candle, GFLOP/s.
    pub gemm_gflops: f64,
    pub batch: usize,
}

impl Machine {
    pub fn describe(&self) -> String {
        format!(
            "training step, batch {}, {}, {} CPU threads; GEMM rate {:.0} GFLOP/s",
            self.batch, self.device, self.threads, self.gemm_gflops
        )
    }
}

/// One backbone's training step.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The registry entry.
    pub backbone: String,
    pub daa_ms: f64,
    /// PyTorch's time for the same step, where it could be measured.
    pub torch_ms: Option<f64>,
    pub gflop: f64,
    /// The share of the measured GEMM rate the step reaches.
    pub gemm_share: f64,
}

impl Timing {
    pub fn header() -> String {
        format!(
            "{:<14} {:>10} {:>12} {:>9} {:>12} {:>12}",
            "backbone", "daa ms", "PyTorch ms", "ratio", "GFLOP/step", "of GEMM rate"
        )
    }

    pub fn line(&self) -> String {
        let theirs = self.torch_ms.unwrap_or(f64::NAN);
        format!(
            "{:<14} {:>10.1} {:>12.1} {:>8.2}x {:>12.1} {:>11.0}%",
            self.backbone,
            self.daa_ms,
            theirs,
            self.daa_ms / theirs,
            self.gflop,
            100.0 * self.gemm_share
        )
    }
}

/// A step benchmark: one batch of AliExpress-shaped rows, the registry's backbones, and
/// PyTorch beside them where it can be started.
pub struct Bench<'r> {
    registry: &'r Registry,
    device: Device,
    machine: Machine,
    dims: Dims,
    categorical: Tensor,
    numerical: Tensor,
    labels: Tensor,
    torch: Option<Torch>,
}

impl<'r> Bench<'r> {
    /// The benchmark at `batch` rows on `device`, its inputs drawn from a seeded stream.
    pub fn start(
        registry: &'r Registry,
        device: &Device,
        batch: usize,
    ) -> Result<Self, BenchError> {
        let schema = crate::data::dataset::schema(&registry.entry("schemas", "aliexpress")?.params)
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        let embedding = serde_json::from_value(registry.entry("embeddings", "fields")?.params)
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        let cards = schema.categorical.cardinalities.clone();
        let (fields, numerical) = (cards.len(), schema.numerical_names().len());
        let tasks = schema.labels.len();
        let machine = Machine {
            device: crate::device::describe(device),
            threads: candle_core::utils::get_num_threads(),
            gemm_gflops: gemm_rate(device, batch)?,
            batch,
        };
        let mut stream = crate::rng::stream(0, "bench", 0);
        let offsets = field_offsets(&cards);
        let categorical: Vec<u32> = (0..batch * fields)
            .map(|i| offsets[i % fields] + stream.random_range(0..cards[i % fields]))
            .collect();
        let numbers: Vec<f32> = (0..batch * numerical).map(|_| stream.random()).collect();
        // A cascade of rare labels: a few percent of the first, a tenth of those the next.
        let labels: Vec<f32> = (0..batch)
            .flat_map(|_| {
                let mut on = stream.random::<f32>() < 0.05;
                (0..tasks)
                    .map(|t| {
                        on = on && (t == 0 || stream.random::<f32>() < 0.1);
                        f32::from(on)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = std::env::var("BENCH_TORCH_SCRIPT")
            .unwrap_or_else(|_| "tools/torch_step_bench.py".into());
        Ok(Bench {
            registry,
            device: device.clone(),
            torch: Torch::start(&python, &script, &machine.device),
            categorical: Tensor::from_vec(categorical, (batch, fields), device)?,
            numerical: Tensor::from_vec(numbers, (batch, numerical), device)?,
            labels: Tensor::from_vec(labels, (batch, tasks), device)?,
            dims: Dims {
                cardinalities: cards,
                numerical,
                tasks,
                embedding,
            },
            machine,
        })
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The registry's backbone entries (each benchmarked at its registry sizes).
    pub fn backbones(&self) -> Vec<String> {
        self.registry.names("backbones")
    }

    fn build(&self, name: &str, params: &mut Params) -> Result<Box<dyn Backbone>, BenchError> {
        let entry = self.registry.entry("backbones", name)?;
        if find(BACKBONES, &entry.kind).is_none() {
            return Err(BenchError::Invalid(format!(
                "`{}` is not a backbone kind",
                entry.kind
            )));
        }
        Ok(build_backbone(
            &entry.kind,
            &entry.params,
            &self.dims,
            params,
        )?)
    }

    /// Times `steps` training steps (forward, backward, Adam) of backbone entry `name`.
    pub fn time(&mut self, name: &str, steps: usize) -> Result<Timing, BenchError> {
        let mut params = Params::new(&self.device, 0);
        let model = self.build(name, &mut params)?;
        let mut adam = Adam::new(
            params.trainable(),
            crate::config::schema::Optimizer::Adam,
            1e-3,
            1e-6,
        );
        let mut noise = crate::rng::stream(0, "dropout", 0);
        let _uploads = crate::device::cached_uploads(&self.device);
        let (categorical, numerical, labels) = (&self.categorical, &self.numerical, &self.labels);
        let mut one = || -> candle_core::Result<()> {
            let out = model.forward(categorical, numerical, &mut Mode::train(Some(&mut noise)))?;
            let losses = out.task_losses(labels)?;
            let mut loss = losses[0].clone();
            for l in &losses[1..] {
                loss = (loss + l)?;
            }
            adam.step(&loss.backward()?)
        };
        one()?;
        synchronize(&self.device)?;
        let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for _ in 0..steps {
                one()?;
            }
            synchronize(&self.device)?;
            ours = ours.min(1000.0 * t.elapsed().as_secs_f64() / steps as f64);
            if let Some(server) = self.torch.as_mut() {
                match server.time(name, steps) {
                    Some(ms) => theirs = theirs.min(ms),
                    None => self.torch = None,
                }
            }
        }
        let flops = step_flops(&params, self.machine.batch);
        Ok(Timing {
            backbone: name.to_string(),
            daa_ms: ours,
            torch_ms: theirs.is_finite().then_some(theirs),
            gflop: flops / 1e9,
            gemm_share: flops / (ours / 1000.0) / 1e9 / self.machine.gemm_gflops,
        })
    }
}
