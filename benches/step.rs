//! `cargo bench --bench step [-- BACKBONE ...]`: ms per training step of the registry's
//! backbones (see `daa::bench`). BENCH_PYTHON=/path/to/python (with torch) adds PyTorch's
//! time on the same machine.

use daa::bench::{Bench, Timing};

fn main() {
    daa::alloc::tune();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // SAFETY: set before any thread reads the environment.
    unsafe {
        std::env::set_var(
            "BENCH_TORCH_SCRIPT",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tools/torch_step_bench.py"),
        )
    };
    let registry = daa::catalog::registry(concat!(env!("CARGO_MANIFEST_DIR"), "/registry"));
    let mut bench =
        Bench::start(&registry, &candle_core::Device::Cpu, 2048).expect("the benchmark starts");
    println!("{}", bench.machine().describe());
    println!("{}", Timing::header());
    for name in bench.backbones() {
        if args.is_empty() || args.contains(&name) {
            let timing = bench.time(&name, 5).expect("the benchmark runs");
            println!("{}", timing.line());
        }
    }
}
