//! Data throughput on 1M rows: synthetic generation; CSV parsing and CSV to table (and
//! pandas' read_csv on the same file when Python with pandas is available) for a synthetic
//! CSV and for the shared AliExpress sample's rows repeated; batches from the memory-mapped
//! table. Each the best of three runs. Prints; asserts nothing about time.
//!
//!     cargo bench --bench data            # BENCH_PYTHON=/path/to/python to pick the interpreter

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use daa::data::batch::{Batches, LastBatch, epoch_order, field_offsets};
use daa::data::csv::{CsvFile, csv_to_table, write_csv};
use daa::data::synthetic::{Profile, Role, SyntheticConfig};
use daa::data::{Table, synthetic};

const ROWS: usize = 1_000_000;
/// Each timing is the best of this many runs: this machine's neighbours make single runs vary
/// by 20%.
const REPEAT: usize = 3;

fn best_of(mut run: impl FnMut()) -> f64 {
    (0..REPEAT)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn rate(rows: usize, seconds: f64) -> String {
    format!("{:>10.0} rows/s ({seconds:.3} s)", rows as f64 / seconds)
}

/// Parses `csv` into memory and into a table, and times pandas.read_csv on it.
fn csv_speed(name: &str, csv: &Path, schema: &daa::data::Schema, dir: &Path) {
    let megabytes = std::fs::metadata(csv).unwrap().len() as f64 / 1e6;
    println!("{name} CSV, {megabytes:.0} MB:");
    // Parsing into columns in memory is what pandas.read_csv does; building the table adds
    // writing it and making it durable (fsync) before it is renamed into place.
    let parse = best_of(|| {
        let file = CsvFile::open(csv, schema).unwrap();
        let mut columns = Vec::new();
        file.parse(|rows| {
            columns.push(rows);
            Ok(())
        })
        .unwrap();
    });
    // The cache key: the CRC-32C of the whole file, paid on every open of a CSV data set.
    let fingerprint = best_of(|| {
        daa::data::cache::fingerprint(csv).unwrap();
    });
    println!(
        "  content fingerprint  {:.3} s, {:.1} GB/s",
        fingerprint,
        megabytes / 1e3 / fingerprint
    );
    let parsed = dir.join("parsed.table");
    let build = best_of(|| {
        csv_to_table(csv, schema, &parsed, String::new(), String::new()).unwrap();
    });
    for (label, seconds) in [("  parse (in memory)", parse), ("  into a table", build)] {
        println!(
            "{label:<22} {}  {:.0} MB/s",
            rate(ROWS, seconds),
            megabytes / seconds
        );
    }
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        "import sys, time, pandas\nbest = float('inf')\nfor _ in range({REPEAT}):\n    t = time.perf_counter()\n    df = pandas.read_csv(sys.argv[1])\n    best = min(best, time.perf_counter() - t)\nprint(best, len(df))"
    );
    match Command::new(&python)
        .args(["-c", &script])
        .arg(csv)
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
                "  pandas.read_csv      {}  (daa parses {:.1}x, builds the table {:.1}x as fast)",
                rate(ROWS, seconds),
                seconds / parse,
                seconds / build
            );
        }
        _ => {
            println!("  pandas.read_csv      skipped: `{python}` has no pandas (set BENCH_PYTHON)")
        }
    }
}

fn main() {
    daa::alloc::tune();
    let registry = daa::catalog::registry(Path::new(env!("CARGO_MANIFEST_DIR")).join("registry"));
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
        shift: None,
    };
    println!(
        "data benchmark, {ROWS} rows, {} threads; CSV fast path: {}",
        rayon::current_num_threads(),
        daa::data::csv::fast_path()
    );

    // Generating the rows, and writing them as a table (fsynced): this machine's buffered
    // writes alone take 0.15-1.5 s for 300 MB from one run to the next.
    let generation = best_of(|| {
        synthetic::generate_rows(&config, "train", ROWS, |rows| {
            std::hint::black_box(rows);
            Ok::<(), ()>(())
        })
        .unwrap()
    });
    let table_path = dir.path().join("bench.table");
    let generation_to_table =
        best_of(|| synthetic::generate(&config, "train", ROWS, &table_path).unwrap());
    println!("synthetic generation   {}", rate(ROWS, generation));
    println!("generation to table    {}", rate(ROWS, generation_to_table));
    let table = Table::open(&table_path).unwrap();

    let synthetic_csv = dir.path().join("bench.csv");
    write_csv(&table, &schema, &synthetic_csv).unwrap();
    // The shared sample's rows as they come (numbers such as 0.33557800000000004 among
    // them), repeated to the same row count.
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aliexpress-sample/train.csv");
    let sample = std::fs::read_to_string(sample).unwrap();
    let (header, body) = sample.split_once('\n').unwrap();
    let body_rows = body.lines().count();
    let aliexpress_csv = dir.path().join("aliexpress.csv");
    let repeated = format!("{header}\n") + &body.repeat(ROWS / body_rows);
    std::fs::write(&aliexpress_csv, repeated).unwrap();
    for (name, csv) in [
        ("synthetic", &synthetic_csv),
        ("AliExpress sample", &aliexpress_csv),
    ] {
        csv_speed(name, csv, &schema, dir.path());
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
