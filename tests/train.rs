//! Training end to end on the smoke profile: every method runs; results are bit-identical
//! across runs and thread counts; resume equals an uninterrupted run; the released log-softmax
//! critic leaves the target model exactly where w_e = 0 does; the frozen source never moves.

mod common;

use std::path::{Path, PathBuf};

use common::{daa, repo, stderr, stdout};

/// Runs `daa run configs/mmoe_nl.toml --profile smoke` with `sets` in `dir`; returns the run
/// directory named in the output.
fn run(dir: &Path, sets: &[&str], extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let config = repo().join("configs/mmoe_nl.toml");
    let mut args = vec![
        "-q",
        "run",
        config.to_str().unwrap(),
        "--profile",
        "smoke",
        "--set",
        "output.runs_dir='runs'",
    ];
    let data = format!("data.source.dir='{}'", dir.join("data").display());
    let target_data = format!("data.target.dir='{}'", dir.join("data").display());
    args.extend(["--set", &data, "--set", &target_data]);
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend(extra);
    let out = daa(dir, &args, env);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let line = text.lines().find_map(|l| {
        l.strip_prefix("run directory: ")
            .or_else(|| l.split("--resume (").nth(1))
    });
    let shown = line.unwrap_or_else(|| panic!("no run directory in {text}"));
    dir.join(shown.split(" (").next().unwrap().trim_end_matches(')'))
}

fn result(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

/// The metrics part of result.json (no wall time, commit or paths).
fn metrics(dir: &Path) -> serde_json::Value {
    let r = result(dir);
    serde_json::json!({"test": r["test"], "best_epoch": r["best_epoch"], "valid": r["best_valid_mean_auc"], "epochs": r["epochs_run"]})
}

#[test]
fn every_method_runs_and_writes_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    for method in [
        "single_domain",
        "source_only",
        "finetune",
        "daa",
        "daa_single",
        "dann",
    ] {
        let run_dir = run(dir.path(), &[&format!("adapt.method={method}")], &[], &[]);
        for file in ["config.resolved.toml", "result.json"] {
            assert!(run_dir.join(file).is_file(), "{method}: {file}");
        }
        let r = result(&run_dir);
        assert_eq!(r["method"], method);
        let auc = r["test"]["tasks"][0]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{method}: {auc}");
        assert!(r["test"]["tasks"][0]["oracle_auc"].as_f64().unwrap() > 0.7);
        if method != "source_only" {
            assert!(
                run_dir.join("best.safetensors").is_file()
                    && run_dir.join("metrics.jsonl").is_file(),
                "{method}"
            );
            let lines = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
            let first: serde_json::Value =
                serde_json::from_str(lines.lines().next().unwrap()).unwrap();
            assert!(
                first["valid"]["tasks"][0]["auc"].is_number(),
                "{method}: {first}"
            );
            if method == "daa" {
                assert_eq!(
                    first["train"]["wasserstein"].as_array().unwrap().len(),
                    2,
                    "two critics"
                );
            }
        }
    }
    let sources: Vec<_> = std::fs::read_dir(dir.path().join("runs/_source"))
        .unwrap()
        .collect();
    assert_eq!(
        sources.len(),
        1,
        "one pretrained source model serves every method"
    );
}

#[test]
fn same_config_same_bits_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &[], &[], &[("RAYON_NUM_THREADS", "2")]);
    let reference = metrics(&first);
    std::fs::remove_dir_all(dir.path().join("runs")).unwrap();
    let again = run(
        dir.path(),
        &[],
        &[],
        &[("RAYON_NUM_THREADS", "1"), ("CANDLE_NUM_THREADS", "1")],
    );
    assert_eq!(metrics(&again), reference);
    let other_seed = run(dir.path(), &["train.seed=2"], &[], &[]);
    assert_ne!(metrics(&other_seed), reference);
}

#[test]
fn resume_after_an_interruption_gives_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["train.patience=10"];
    let whole = run(dir.path(), &sets, &[], &[]);
    let reference = metrics(&whole);
    std::fs::remove_dir_all(&whole).unwrap();
    let stopped = run(dir.path(), &sets, &["--stop-after-epochs", "1"], &[]);
    assert!(!stopped.join("result.json").exists());
    let resumed = run(dir.path(), &sets, &["--resume"], &[]);
    assert_eq!(resumed, stopped);
    assert_eq!(metrics(&resumed), reference);
    let lines = std::fs::read_to_string(resumed.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        4,
        "one line per epoch, none repeated"
    );
}

fn tensors(path: &Path) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(path, &candle_core::Device::Cpu).unwrap()
}

fn identical(a: &Path, b: &Path) -> bool {
    let (a, b) = (tensors(a), tensors(b));
    a.len() == b.len()
        && a.iter().all(|(k, t)| {
            let u = &b[k];
            t.dims() == u.dims()
                && t.to_dtype(candle_core::DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
                    == u.to_dtype(candle_core::DType::F64)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap()
        })
}

#[test]
fn released_log_softmax_critic_equals_no_adversarial_term() {
    let dir = tempfile::tempdir().unwrap();
    let released = run(
        dir.path(),
        &["adapt.critic=wgan_gp_released", "train.patience=10"],
        &[],
        &[],
    );
    let silent = run(
        dir.path(),
        &["adapt.weights.adversarial=0.0", "train.patience=10"],
        &[],
        &[],
    );
    assert!(
        identical(
            &released.join("last.safetensors"),
            &silent.join("last.safetensors")
        ),
        "the released critic carries no gradient"
    );
    let trained = run(dir.path(), &["train.patience=10"], &[], &[]);
    assert!(
        !identical(
            &trained.join("last.safetensors"),
            &silent.join("last.safetensors")
        ),
        "a true critic changes the target model"
    );
    // The released critics never move: their gradient is exactly zero, and Adam with L2 decay
    // only shrinks them by the decay term, identically in every run.
    let lines = std::fs::read_to_string(released.join("metrics.jsonl")).unwrap();
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for w in v["train"]["wasserstein"].as_array().unwrap() {
            assert_eq!(
                w.as_f64().unwrap(),
                0.0,
                "log-softmax scores are identically zero"
            );
        }
    }
}

#[test]
fn the_pretrained_source_model_is_never_changed() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &[], &[], &[]);
    let source = PathBuf::from(result(&first)["source_checkpoint"].as_str().unwrap());
    let source = if source.is_absolute() {
        source
    } else {
        dir.path().join(source)
    };
    let before = std::fs::read(&source).unwrap();
    run(dir.path(), &["adapt.weights.adversarial=0.25"], &[], &[]);
    assert_eq!(std::fs::read(&source).unwrap(), before);
}
