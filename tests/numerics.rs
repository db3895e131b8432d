//! The numerics contract: a short smoke training of every backbone with DAA (source
//! pretraining, critics, the target model) ends in pinned parameter digests. A change that
//! moves these bits fails here until `daa::config::NUMERICS_VERSION` is bumped (so that run
//! directories and pretrained source models of the old numerics are not reused) and the
//! digests are pinned again with `DAA_PIN_DIGESTS=1 cargo test --release --test numerics`.
//! Digests depend on the CPU's instruction set (the matrix products take AVX-512 where
//! there is one), so they are pinned per CPU class. On a class without a pin the test
//! still checks the contract it can: two trainings, on 1 and on 2 threads, must give the
//! same bits; it prints them, to be pinned with the command above on that machine.

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

/// Every backbone's digest after a smoke training on `threads` threads.
fn digests(threads: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    daa::models::BACKBONES
        .iter()
        .map(|k| {
            (
                k.name.to_string(),
                train(dir.path(), k.name, threads).into(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn train(dir: &Path, backbone: &str, threads: &str) -> String {
    let config = repo().join(format!("configs/{backbone}_nl.toml"));
    let args = smoke_run_args(dir, &config, &["train.epochs=2"], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("RAYON_NUM_THREADS", threads),
        ("CANDLE_NUM_THREADS", threads),
    ];
    tensor_digest(&named_run_dir(dir, &daa(dir, &args, &env)).join("last.safetensors"))
}

#[test]
fn smoke_training_bits_are_pinned_per_numerics_version() {
    let path = repo().join(PINNED);
    let mut pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let class = cpu_class();
    let current = digests("2");
    if std::env::var("DAA_PIN_DIGESTS").as_deref() == Ok("1") {
        if pinned["numerics"] != daa::config::NUMERICS_VERSION {
            // Pins of another numerics version say nothing about this one's bits.
            pinned["digests"] = serde_json::json!({});
        }
        pinned["numerics"] = daa::config::NUMERICS_VERSION.into();
        pinned["digests"][class] = current;
        std::fs::write(&path, serde_json::to_string_pretty(&pinned).unwrap() + "\n").unwrap();
        return;
    }
    if pinned["numerics"] != daa::config::NUMERICS_VERSION {
        panic!(
            "NUMERICS_VERSION is {} but {PINNED} pins version {}: pin the new version's digests with DAA_PIN_DIGESTS=1 cargo test --release --test numerics",
            daa::config::NUMERICS_VERSION,
            pinned["numerics"]
        );
    }
    let Some(expected) = pinned["digests"].get(class) else {
        let one_thread = digests("1");
        assert_eq!(
            current, one_thread,
            "{class} has no pinned digests, and training on 2 threads gave other bits than on 1"
        );
        println!(
            "{class} has no pinned digests in {PINNED} (pinned: {}); 1 and 2 threads agree on {current}: pin them with DAA_PIN_DIGESTS=1 cargo test --release --test numerics",
            pinned["digests"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        );
        return;
    };
    assert!(
        *expected == current,
        "training bits moved under numerics version {} on {class}: if the change is meant, bump daa::config::NUMERICS_VERSION and pin again (DAA_PIN_DIGESTS=1 cargo test --release --test numerics)\npinned:  {expected}\nnow:     {current}",
        daa::config::NUMERICS_VERSION,
    );
}
