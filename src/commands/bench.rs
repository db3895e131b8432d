//! `daa bench step`: ms per training step of the registry's backbones.

use anyhow::{Result, bail};
use daa::bench::{Bench, Timing};
use daa::config::Registry;

use super::UsageError;

pub fn step(
    registry: &Registry,
    device: &str,
    batch: usize,
    steps: usize,
    chosen: &[String],
) -> Result<()> {
    let device: daa::device::Device = device.parse().map_err(UsageError)?;
    let device = device.open()?;
    let mut bench = Bench::start(registry, &device, batch)?;
    let known = bench.backbones();
    let unknown: Vec<&String> = chosen.iter().filter(|m| !known.contains(m)).collect();
    if !unknown.is_empty() {
        bail!(UsageError(format!(
            "unknown backbone(s) {unknown:?}; known: {}",
            known.join(", ")
        )));
    }
    println!("{}", bench.machine().describe());
    println!("{}", Timing::header());
    for name in known
        .iter()
        .filter(|m| chosen.is_empty() || chosen.contains(m))
    {
        println!("{}", bench.time(name, steps)?.line());
    }
    Ok(())
}
