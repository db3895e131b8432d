//! `daa bench step`: ms per training step of the registry's backbones.

use anyhow::{Result, bail};
use daa::bench::{Bench, Timing};
use daa::config::Registry;
use daa::config::schema::Kernels;
use daa::device::CudaTuning;

use super::UsageError;

/// What `daa bench step` runs on.
pub struct Options<'a> {
    pub device: &'a str,
    pub batch: usize,
    pub steps: usize,
    pub kernels: &'a str,
    pub cuda_tunings: &'a [String],
}

pub fn step(registry: &Registry, options: &Options<'_>, chosen: &[String]) -> Result<()> {
    let device: daa::device::Device = options.device.parse().map_err(UsageError)?;
    let tunings = options
        .cuda_tunings
        .iter()
        .filter(|t| t.as_str() != "none")
        .map(|t| t.parse::<CudaTuning>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let kernels: Kernels = serde_json::from_value(options.kernels.into()).map_err(|_| {
        UsageError(format!(
            "--kernels {}: expected portable or device",
            options.kernels
        ))
    })?;
    let device = device.open_with(&tunings)?;
    let _kernels = daa::nn::use_kernels(kernels);
    let (batch, steps) = (options.batch, options.steps);
    let mut bench = Bench::start(registry, &device, batch)?;
    let known = bench.backbones();
    let unknown: Vec<&String> = chosen.iter().filter(|m| !known.contains(m)).collect();
    if !unknown.is_empty() {
        bail!(UsageError(format!(
            "unknown backbone(s) {unknown:?}; known: {}",
            known.join(", ")
        )));
    }
    let names: Vec<&str> = tunings.iter().map(|t| t.name()).collect();
    println!(
        "{}; kernels {}; CUDA tunings on: {}",
        bench.machine().describe(),
        options.kernels,
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    );
    println!("{}", Timing::header());
    for name in known
        .iter()
        .filter(|m| chosen.is_empty() || chosen.contains(m))
    {
        println!("{}", bench.time(name, steps)?.line());
    }
    Ok(())
}
