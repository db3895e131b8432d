//! One training step (forward, backward, Adam update) per backbone at the reference sizes
//! and batch 2048: ms/step here, the same step in PyTorch on the same machine (when Python
//! with torch is available) and the fraction of this machine's measured GEMM rate. Prints;
//! asserts nothing about time.
//!
//!     cargo bench --bench step [-- MODEL ...]     # BENCH_PYTHON=/path/to/python for PyTorch

use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use daa::data::batch::field_offsets;
use daa::models::{Dims, build_backbone};
use daa::nn::embedding::{Config as Embedding, Init};
use daa::nn::optim::Adam;
use daa::nn::{Mode, Params};
use rand::Rng;
use serde_json::json;

const BATCH: usize = 2048;
const STEPS: usize = 5;
const CARDS: [u32; 16] = [11, 4, 7, 2, 33, 7, 50, 8, 8, 2, 2, 2, 2, 2, 2, 2];
const MODELS: [&str; 7] = [
    "mmoe",
    "sharedbottom",
    "singletask",
    "omoe",
    "ple",
    "aitm",
    "metaheac",
];

fn config(kind: &str) -> serde_json::Value {
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

/// Matrix-product FLOPs of a step: 2 per weight element per row forward, 3x with backward.
fn step_flops(params: &Params) -> f64 {
    let elements: usize = params
        .named_trainable()
        .iter()
        .filter(|(name, v)| v.rank() == 2 && !name.ends_with("embedding.weight"))
        .map(|(_, v)| v.elem_count())
        .sum();
    6.0 * BATCH as f64 * elements as f64
}

/// This machine's f32 GEMM rate through candle, GFLOP/s.
fn gemm_rate() -> f64 {
    let a = Tensor::ones((BATCH, 2176), DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::ones((2176, 4096), DType::F32, &Device::Cpu).unwrap();
    a.matmul(&b).unwrap();
    let t = Instant::now();
    for _ in 0..3 {
        a.matmul(&b).unwrap();
    }
    3.0 * 2.0 * (BATCH * 2176 * 4096) as f64 / t.elapsed().as_secs_f64() / 1e9
}

fn torch_times(models: &[&str]) -> std::collections::HashMap<String, f64> {
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/torch_step_bench.py");
    let out = Command::new(&python)
        .arg(script)
        .args(["--threads", "2"])
        .args(models)
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                (
                    v["model"].as_str().unwrap_or_default().to_string(),
                    v["ms"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect(),
        _ => {
            println!("PyTorch: skipped (`{python}` cannot import torch; set BENCH_PYTHON)");
            Default::default()
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let models: Vec<&str> = MODELS
        .iter()
        .copied()
        .filter(|m| args.is_empty() || args.iter().any(|a| a == m))
        .collect();
    daa::alloc::tune();
    let device = Device::Cpu;
    let rate = gemm_rate();
    println!(
        "training step, batch {BATCH}, {} threads; candle GEMM rate {rate:.0} GFLOP/s",
        candle_core::utils::get_num_threads()
    );
    let mut stream = daa::rng::stream(0, "bench", 0);
    let offsets = field_offsets(&CARDS);
    let categorical: Vec<u32> = (0..BATCH * 16)
        .map(|i| offsets[i % 16] + stream.random_range(0..CARDS[i % 16]))
        .collect();
    let numerical: Vec<f32> = (0..BATCH * 63).map(|_| stream.random()).collect();
    let labels: Vec<f32> = (0..BATCH)
        .flat_map(|_| {
            let click = stream.random::<f32>() < 0.05;
            [
                f32::from(click),
                f32::from(click && stream.random::<f32>() < 0.1),
            ]
        })
        .collect();
    let categorical = Tensor::from_vec(categorical, (BATCH, 16), &device).unwrap();
    let numerical = Tensor::from_vec(numerical, (BATCH, 63), &device).unwrap();
    let labels = Tensor::from_vec(labels, (BATCH, 2), &device).unwrap();
    let dims = Dims {
        cardinalities: CARDS.to_vec(),
        numerical: 63,
        tasks: 2,
        embedding: Embedding {
            dim: 128,
            init: Init::XavierUniform,
        },
    };
    let torch = torch_times(&models);
    println!(
        "{:<14} {:>10} {:>12} {:>9} {:>12} {:>12}",
        "backbone", "daa ms", "PyTorch ms", "ratio", "GFLOP/step", "of GEMM rate"
    );
    for kind in models {
        let mut params = Params::new(&device, 0);
        let model = build_backbone(kind, &config(kind), &dims, &mut params).unwrap();
        let mut adam = Adam::new(
            params.trainable(),
            daa::config::schema::Optimizer::Adam,
            1e-3,
            1e-6,
        );
        let mut noise = daa::rng::stream(0, "dropout", 0);
        let mut step = || {
            let out = model
                .forward(
                    &categorical,
                    &numerical,
                    &mut Mode {
                        train: true,
                        noise: Some(&mut noise),
                    },
                )
                .unwrap();
            let losses = out.task_losses(&labels).unwrap();
            let loss = (&losses[0] + &losses[1]).unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
        };
        step();
        let t = Instant::now();
        for _ in 0..STEPS {
            step();
        }
        let ms = 1000.0 * t.elapsed().as_secs_f64() / STEPS as f64;
        let flops = step_flops(&params);
        let theirs = torch.get(kind).copied().unwrap_or(f64::NAN);
        println!(
            "{kind:<14} {ms:>10.0} {theirs:>12.0} {:>8.2}x {:>12.1} {:>11.0}%",
            ms / theirs,
            flops / 1e9,
            100.0 * flops / (ms / 1000.0) / 1e9 / rate
        );
    }
}
