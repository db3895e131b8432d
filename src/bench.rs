//! Training-step timing per backbone at the reference sizes (`daa bench step`, and
//! `cargo bench --bench step`): ms per step (forward, backward, Adam update), the same step
//! in PyTorch on the same machine and device when Python with torch is available, and the
//! fraction of the measured matrix-product rate. daa and PyTorch alternate in rounds and
//! each side's best round counts, so that both see the same machine conditions. Prints;
//! asserts nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::Rng;
use serde_json::json;

use crate::data::batch::field_offsets;
use crate::models::{Dims, build_backbone};
use crate::nn::embedding::{Config as Embedding, Init};
use crate::nn::optim::Adam;
use crate::nn::{Mode, Params};

pub const MODELS: [&str; 7] = [
    "mmoe",
    "sharedbottom",
    "singletask",
    "omoe",
    "ple",
    "aitm",
    "metaheac",
];
const CARDS: [u32; 16] = [11, 4, 7, 2, 33, 7, 50, 8, 8, 2, 2, 2, 2, 2, 2, 2];

/// The reference configuration of a backbone (REFERENCE.md section 5).
fn reference(kind: &str) -> serde_json::Value {
    let tower = json!([128, 64]);
    match kind {
        "omoe" | "mmoe" => {
            json!({"bottom_dims": [512, 256], "experts": 8, "tower_dims": tower, "dropout": 0.2})
        }
        "ple" => {
            json!({"bottom_dims": [512, 256], "shared_experts": 4, "task_experts": 4, "tower_dims": tower, "dropout": 0.2})
        }
        "metaheac" => {
            json!({"bottom_dims": [512, 256], "experts": 8, "critics": 5, "tower_dims": tower, "dropout": 0.2})
        }
        _ => json!({"bottom_dims": [512, 256], "tower_dims": tower, "dropout": 0.2}),
    }
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
                println!(
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
            println!(
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

/// Times `steps` training steps of each of `models` at batch `batch` on `device`.
pub fn step(
    models: &[&str],
    device: &Device,
    batch: usize,
    steps: usize,
) -> candle_core::Result<()> {
    let rate = gemm_rate(device, batch)?;
    let name = crate::device::describe(device);
    println!(
        "training step, batch {batch}, {name}, {} CPU threads; GEMM rate {rate:.0} GFLOP/s",
        candle_core::utils::get_num_threads()
    );
    let mut stream = crate::rng::stream(0, "bench", 0);
    let offsets = field_offsets(&CARDS);
    let categorical: Vec<u32> = (0..batch * 16)
        .map(|i| offsets[i % 16] + stream.random_range(0..CARDS[i % 16]))
        .collect();
    let numerical: Vec<f32> = (0..batch * 63).map(|_| stream.random()).collect();
    let labels: Vec<f32> = (0..batch)
        .flat_map(|_| {
            let click = stream.random::<f32>() < 0.05;
            [
                f32::from(click),
                f32::from(click && stream.random::<f32>() < 0.1),
            ]
        })
        .collect();
    let categorical = Tensor::from_vec(categorical, (batch, 16), device)?;
    let numerical = Tensor::from_vec(numerical, (batch, 63), device)?;
    let labels = Tensor::from_vec(labels, (batch, 2), device)?;
    let dims = Dims {
        cardinalities: CARDS.to_vec(),
        numerical: 63,
        tasks: 2,
        embedding: Embedding {
            dim: 128,
            init: Init::XavierUniform,
        },
    };
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::env::var("BENCH_TORCH_SCRIPT").unwrap_or_else(|_| "tools/torch_step_bench.py".into());
    let mut torch = Torch::start(&python, &script, &name);
    println!(
        "{:<14} {:>10} {:>12} {:>9} {:>12} {:>12}",
        "backbone", "daa ms", "PyTorch ms", "ratio", "GFLOP/step", "of GEMM rate"
    );
    for kind in models {
        let mut params = Params::new(device, 0);
        let model = build_backbone(kind, &reference(kind), &dims, &mut params)?;
        let mut adam = Adam::new(
            params.trainable(),
            crate::config::schema::Optimizer::Adam,
            1e-3,
            1e-6,
        );
        let mut noise = crate::rng::stream(0, "dropout", 0);
        let mut one = || -> candle_core::Result<()> {
            let out = model.forward(
                &categorical,
                &numerical,
                &mut Mode {
                    train: true,
                    noise: Some(&mut noise),
                },
            )?;
            let losses = out.task_losses(&labels)?;
            adam.step(&(&losses[0] + &losses[1])?.backward()?)
        };
        one()?;
        synchronize(device)?;
        let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for _ in 0..steps {
                one()?;
            }
            synchronize(device)?;
            ours = ours.min(1000.0 * t.elapsed().as_secs_f64() / steps as f64);
            if let Some(server) = torch.as_mut() {
                match server.time(kind, steps) {
                    Some(ms) => theirs = theirs.min(ms),
                    None => torch = None,
                }
            }
        }
        let theirs = if theirs.is_finite() { theirs } else { f64::NAN };
        let flops = step_flops(&params, batch);
        println!(
            "{kind:<14} {ours:>10.1} {theirs:>12.1} {:>8.2}x {:>12.1} {:>11.0}%",
            ours / theirs,
            flops / 1e9,
            100.0 * flops / (ours / 1000.0) / 1e9 / rate
        );
    }
    Ok(())
}
