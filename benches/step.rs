//! `cargo bench --bench step [-- MODEL ...]`: see `daa::bench::step`.
//! BENCH_PYTHON=/path/to/python (with torch) adds PyTorch's time on the same machine.

fn main() {
    daa::alloc::tune();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let models: Vec<&str> = daa::bench::MODELS
        .iter()
        .copied()
        .filter(|m| args.is_empty() || args.iter().any(|a| a == m))
        .collect();
    // SAFETY: set before any thread reads the environment.
    unsafe {
        std::env::set_var(
            "BENCH_TORCH_SCRIPT",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tools/torch_step_bench.py"),
        )
    };
    daa::bench::step(&models, &candle_core::Device::Cpu, 2048, 5).expect("the benchmark runs");
}
