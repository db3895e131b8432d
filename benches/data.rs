//! Data throughput on a 1M-row synthetic data set: generation, CSV to table (and pandas'
//! read_csv on the same file when Python with pandas is available), and batches from the
//! memory-mapped table. Prints; asserts nothing about time.
//!
//!     cargo bench --bench data            # BENCH_PYTHON=/path/to/python to pick the interpreter

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use daa::data::batch::{Batches, LastBatch, epoch_order, field_offsets};
use daa::data::csv::{csv_to_table, write_csv};
use daa::data::dataset::{Profile, Role, SyntheticConfig};
use daa::data::{Table, synthetic};
use daa::registry::Registry;

const ROWS: usize = 1_000_000;

fn rate(rows: usize, seconds: f64) -> String {
    format!("{:>10.0} rows/s ({seconds:.3} s)", rows as f64 / seconds)
}

fn main() {
    let registry = Registry {
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join("registry"),
    };
    let schema: daa::data::Schema = serde_json::from_value(
        registry.entry("schemas", "aliexpress").unwrap().params["schema"].clone(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticConfig {
        schema: schema.clone(),
        domain: "nl".into(),
        role: Role::Target,
        profile: Profile::Paper,
        seed: 1,
        dir: dir.path().to_path_buf(),
    };
    println!(
        "data benchmark, {ROWS} rows, {} threads",
        rayon::current_num_threads()
    );

    let table_path = dir.path().join("bench.table");
    let t = Instant::now();
    synthetic::generate(&config, "train", ROWS, &table_path).unwrap();
    println!(
        "synthetic generation   {}",
        rate(ROWS, t.elapsed().as_secs_f64())
    );
    let table = Table::open(&table_path).unwrap();

    let csv = dir.path().join("bench.csv");
    write_csv(&table, &schema, &csv).unwrap();
    let repeat: usize = std::env::var("BENCH_CSV_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for _ in 1..repeat {
        csv_to_table(
            &csv,
            &schema,
            &dir.path().join("parsed.table"),
            String::new(),
            String::new(),
        )
        .unwrap();
    }
    let megabytes = std::fs::metadata(&csv).unwrap().len() as f64 / 1e6;
    let parsed = dir.path().join("parsed.table");
    let t = Instant::now();
    csv_to_table(&csv, &schema, &parsed, String::new(), String::new()).unwrap();
    let ours = t.elapsed().as_secs_f64();
    println!(
        "CSV to table           {}  {:.0} MB/s of {megabytes:.0} MB",
        rate(ROWS, ours),
        megabytes / ours
    );

    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, time, pandas\nt = time.perf_counter()\ndf = pandas.read_csv(sys.argv[1])\nprint(time.perf_counter() - t, len(df))";
    match Command::new(&python)
        .args(["-c", script])
        .arg(&csv)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let seconds: f64 = text
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
            println!(
                "pandas.read_csv        {}  (daa is {:.1}x faster)",
                rate(ROWS, seconds),
                seconds / ours
            );
        }
        _ => {
            println!("pandas.read_csv        skipped: `{python}` has no pandas (set BENCH_PYTHON)")
        }
    }

    let offsets = field_offsets(&schema.categorical.cardinalities);
    let all: Vec<u32> = (0..table.rows() as u32).collect();
    for (label, to_tensors) in [("batches (host)", false), ("batches (+ tensors)", true)] {
        let t = Instant::now();
        let order = epoch_order(&all, 1, "bench", 0, true);
        let mut batches = Batches::new(&table, order, 2048, LastBatch::Keep, Some(offsets.clone()));
        let mut batch = Default::default();
        let mut rows = 0;
        while batches.next_into(&mut batch) {
            rows += batch.size;
            if to_tensors {
                batch.to_tensors(16, 63, &candle_core::Device::Cpu).unwrap();
            }
        }
        println!("{label:<22} {}", rate(rows, t.elapsed().as_secs_f64()));
    }
}
