//! Training-step timing per backbone at the reference sizes (`daa bench step`, and
//! `cargo bench --bench step`): ms per step (forward, backward, Adam update), the same step
//! in PyTorch on the same machine and device when Python with torch is available, and the
//! fraction of the measured matrix-product rate. Prints; asserts nothing.

use std::collections::HashMap;
use std::process::Command;
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

/// PyTorch's ms per step per model from tools/torch_step_bench.py, when `python` has torch.
fn torch_times(python: &str, script: &str, device: &str, models: &[&str]) -> HashMap<String, f64> {
    let torch_device = if device.starts_with("cuda") {
        "cuda"
    } else {
        "cpu"
    };
    let out = Command::new(python)
        .arg(script)
        .args([
            "--threads",
            &candle_core::utils::get_num_threads().to_string(),
            "--device",
            torch_device,
        ])
        .args(models)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            println!("PyTorch: skipped (`{python}`: {e}; set BENCH_PYTHON to a Python with torch)");
            return HashMap::new();
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "PyTorch: `{python} {script}` failed ({}); set BENCH_PYTHON to a Python with torch",
            stderr.lines().last().unwrap_or_default()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["model"].as_str().unwrap_or_default().to_string(),
                v["ms"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

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
    let torch = torch_times(&python, &script, &name, models);
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
        let t = Instant::now();
        for _ in 0..steps {
            one()?;
        }
        synchronize(device)?;
        let ms = 1000.0 * t.elapsed().as_secs_f64() / steps as f64;
        let flops = step_flops(&params, batch);
        let theirs = torch.get(*kind).copied().unwrap_or(f64::NAN);
        println!(
            "{kind:<14} {ms:>10.1} {theirs:>12.1} {:>8.2}x {:>12.1} {:>11.0}%",
            ms / theirs,
            flops / 1e9,
            100.0 * flops / (ms / 1000.0) / 1e9 / rate
        );
    }
    Ok(())
}
