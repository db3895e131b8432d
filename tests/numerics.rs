//! The numerics contract: a short smoke training of every backbone with DAA (source
//! pretraining, critics, the target model) ends in pinned parameter digests. A change that
//! moves these bits fails here until `daa::config::NUMERICS_VERSION` is bumped (so that run
//! directories and pretrained source models of the old numerics are not reused) and the
//! digests are pinned again with `DAA_PIN_DIGESTS=1 cargo test --release --test numerics`.
//! Digests depend on the CPU's instruction set (the matrix products take AVX-512 where
//! there is one): on a CPU of another class than the pinned one the test says so and skips.

mod common;

use std::path::Path;

use common::{daa, named_run_dir, repo, smoke_run_args, tensor_digest};

const PINNED: &str = "tests/fixtures/numerics.json";

fn cpu_class() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return "x86_64-avx512";
    }
    if cfg!(target_arch = "x86_64") {
        "x86_64"
    } else {
        std::env::consts::ARCH
    }
}

fn train(dir: &Path, backbone: &str) -> String {
    let config = repo().join(format!("configs/{backbone}_nl.toml"));
    let args = smoke_run_args(dir, &config, &["train.epochs=2"], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tensor_digest(&named_run_dir(dir, &daa(dir, &args, &[])).join("last.safetensors"))
}

#[test]
fn smoke_training_bits_are_pinned_per_numerics_version() {
    let dir = tempfile::tempdir().unwrap();
    let digests: serde_json::Map<String, serde_json::Value> = daa::models::BACKBONES
        .iter()
        .map(|k| (k.name.to_string(), train(dir.path(), k.name).into()))
        .collect();
    let current = serde_json::json!({
        "numerics": daa::config::NUMERICS_VERSION,
        "cpu": cpu_class(),
        "digests": digests,
    });
    let path = repo().join(PINNED);
    if std::env::var("DAA_PIN_DIGESTS").as_deref() == Ok("1") {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&current).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if pinned["cpu"] != current["cpu"] {
        println!(
            "skipped: digests are pinned for {} and this CPU is {}",
            pinned["cpu"], current["cpu"]
        );
        return;
    }
    if pinned["numerics"] != current["numerics"] {
        panic!(
            "NUMERICS_VERSION is {} but {PINNED} pins version {}: pin the new version's digests with DAA_PIN_DIGESTS=1 cargo test --release --test numerics",
            current["numerics"], pinned["numerics"]
        );
    }
    assert!(
        pinned["digests"] == current["digests"],
        "training bits moved under numerics version {}: if the change is meant, bump daa::config::NUMERICS_VERSION and pin again (DAA_PIN_DIGESTS=1 cargo test --release --test numerics)\npinned:  {}\nnow:     {}",
        current["numerics"],
        pinned["digests"],
        current["digests"]
    );
}
