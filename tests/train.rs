//! Training end to end on the smoke profile: every method runs; results are bit-identical
//! across runs and thread counts; resume equals an uninterrupted run; the released log-softmax
//! critic leaves the target model exactly where w_e = 0 does; the frozen source never moves.

mod common;

use std::path::{Path, PathBuf};

use common::{daa, named_run_dir, repo, smoke_run_args, tensor_digest};

/// Runs `daa run configs/mmoe_nl.toml --profile smoke` with `sets` in `dir`; returns the run
/// directory named in the output.
fn run(dir: &Path, sets: &[&str], extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let args = smoke_run_args(dir, &repo().join("configs/mmoe_nl.toml"), sets, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    named_run_dir(dir, &daa(dir, &args, env))
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
fn models_learn_the_target_and_fine_tuning_recovers_what_the_shift_costs() {
    // Measured 2026-12-08 on the smoke profile (nl target, 90% of its rows): single_domain
    // reaches 83% (click) and 74% (conversion) of the oracle's lift over 0.5; source_only
    // is at 0.477 / 0.464 on the shifted target, fine-tuning at 0.601 / 0.597. The bounds
    // leave room for other numerics, not for a model that stopped learning.
    let dir = tempfile::tempdir().unwrap();
    let aucs = |method: &str| -> Vec<(f64, f64)> {
        let sets = [
            &format!("adapt.method={method}") as &str,
            "data.target_rate=0.9",
        ];
        let r = result(&run(dir.path(), &sets, &[], &[]));
        r["test"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["auc"].as_f64().unwrap(),
                    t["oracle_auc"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let single = aucs("single_domain");
    assert_eq!(single.len(), 2);
    for (auc, oracle) in &single {
        let lift = (auc - 0.5) / (oracle - 0.5);
        assert!(
            lift >= 0.6,
            "single_domain: AUC {auc} of oracle {oracle} ({lift:.2} of the lift)"
        );
    }
    let source_only = aucs("source_only");
    let finetune = aucs("finetune");
    for ((tuned, _), (source, _)) in finetune.iter().zip(&source_only) {
        assert!(
            tuned - source >= 0.05,
            "fine-tuning {tuned} against source_only {source}"
        );
    }
}

#[test]
fn a_runs_seconds_are_accounted_by_phase_and_add_up_to_its_wall_time() {
    let dir = tempfile::tempdir().unwrap();
    let check = |run_dir: &Path, phases: &[&str]| {
        let r = result(run_dir);
        let timing = r["timing"].as_object().expect("result.json has `timing`");
        let total: f64 = timing.values().map(|v| v.as_f64().unwrap()).sum();
        let wall = r["wall_seconds"].as_f64().unwrap();
        assert!((total - wall).abs() < 1e-9, "{total} vs {wall}: {timing:?}");
        for phase in phases {
            assert!(timing.contains_key(*phase), "{phase}: {timing:?}");
        }
        for (phase, seconds) in timing {
            assert!(seconds.as_f64().unwrap() >= 0.0, "{phase}: {timing:?}");
        }
    };
    // DAA: its critic steps and frozen features apart from the model's training, the
    // diagnostics apart from both.
    let daa_phases = [
        "data",
        "source_model",
        "setup",
        "training",
        "critic_steps",
        "frozen_features",
        "diagnostics_gradient_ratio",
        "diagnostics_probe",
        "validation",
        "checkpoints",
        "records",
        "test",
        "other",
    ];
    check(&run(dir.path(), &[], &[], &[]), &daa_phases);
    // Over two sessions: the first's phases travel with its state.
    let sets = ["adapt.method=finetune"];
    let stopped = run(dir.path(), &sets, &["--stop-after-epochs", "1"], &[]);
    let resumed = run(dir.path(), &sets, &["--resume"], &[]);
    assert_eq!(stopped, resumed);
    check(&resumed, &["training", "validation", "test", "other"]);
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
            // The first line is the start model's (epoch 0) where the method starts from
            // the source model; the first trained epoch follows.
            let starts_from_source = method != "single_domain";
            assert_eq!(first["epoch"], if starts_from_source { 0 } else { 1 });
            let first: serde_json::Value =
                serde_json::from_str(lines.lines().nth(usize::from(starts_from_source)).unwrap())
                    .unwrap();
            assert_eq!(first["epoch"], 1, "{method}");
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
    let epochs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [0, 1, 2, 3, 4], "one line per epoch, none repeated");
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
    // With released critic inputs the term scores the training pass, which gives the
    // Linear biases before BatchNorm no gradient. Symmetric inputs score an inference-mode
    // pass, where those biases matter: a zero gradient reaches them, and Adam's L2 decay
    // then moves them (as PyTorch decays a parameter whose gradient is zero), while w_e = 0
    // skips the term's graph altogether.
    let released = run(
        dir.path(),
        &[
            "adapt.critic=wgan_gp_released",
            "adapt.critic_inputs=released",
            "train.patience=10",
        ],
        &[],
        &[],
    );
    let silent = run(
        dir.path(),
        &[
            "adapt.weights.adversarial=0.0",
            "adapt.critic_inputs=released",
            "train.patience=10",
        ],
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
    for line in lines.lines().skip(1) {
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

#[test]
fn daa_without_its_adversarial_weight_trains_the_same_bits_as_finetune() {
    // Critic steps, source draws and passes over source rows must not touch the supervised
    // path: not its dropout masks, not BatchNorm's running statistics.
    let dir = tempfile::tempdir().unwrap();
    let sets = ["train.patience=10"];
    let finetune = run(dir.path(), &[sets[0], "adapt.method=finetune"], &[], &[]);
    let silent = run(
        dir.path(),
        &[sets[0], "adapt.method=daa", "adapt.weights.adversarial=0.0"],
        &[],
        &[],
    );
    assert_ne!(finetune, silent);
    assert_eq!(metrics(&silent), metrics(&finetune));
    for file in ["best.safetensors", "last.safetensors"] {
        assert_eq!(
            tensor_digest(&silent.join(file)),
            tensor_digest(&finetune.join(file)),
            "{file}"
        );
    }
    // The released TAA's behaviour (source rows enter the running statistics) breaks it
    // where the critics pass source rows through BatchNorm in training mode.
    let released = run(
        dir.path(),
        &[
            sets[0],
            "adapt.method=daa",
            "adapt.weights.adversarial=0.0",
            "adapt.source_batchnorm=update",
            "adapt.critic_inputs=released",
        ],
        &[],
        &[],
    );
    assert_ne!(
        tensor_digest(&released.join("last.safetensors")),
        tensor_digest(&finetune.join("last.safetensors"))
    );
}

#[test]
fn a_destructive_run_keeps_the_start_model_and_reproduces_source_only() {
    let dir = tempfile::tempdir().unwrap();
    // A source model worth keeping: the smoke profile's two epochs are too few.
    let source = [
        "pretrain.epochs=10",
        "pretrain.patience=10",
        "pretrain.lr=0.003",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        source.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let reference = run(
        dir.path(),
        &with(&["adapt.method=source_only"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
        &[],
    );
    let destroyed = run(
        dir.path(),
        &with(&["adapt.method=finetune", "optim.lr=1000.0"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
        &[],
    );
    let r = result(&destroyed);
    assert_eq!(r["best_epoch"], 0, "the start model was kept");
    assert!(r["epochs_run"].as_u64().unwrap() >= 1, "training ran");
    assert_eq!(r["test"], result(&reference)["test"]);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(destroyed.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first["epoch"], 0,
        "metrics.jsonl starts with the start model"
    );
}

#[test]
fn selection_follows_the_metric_and_validation_rule_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("configs/mmoe_nl.toml");
    let args = smoke_run_args(
        dir.path(),
        &config,
        &[
            "adapt.method=finetune",
            "train.select_metric={task='conversion'}",
            "data.valid='latest'",
        ],
        &[],
    );
    let out = daa(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let run = named_run_dir(dir.path(), &out);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_eq!(record["validation"], "latest");
    assert_eq!(
        record["select_metric"],
        serde_json::json!({"task": "conversion"})
    );
    // Every epoch's score is the conversion task's validation AUC, and the selected epoch
    // is the one with the best of them.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut best = (f64::NEG_INFINITY, 0);
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let conversion = v["valid"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == "conversion")
            .unwrap()["auc"]
            .as_f64()
            .unwrap();
        assert_eq!(v["valid_score"].as_f64(), Some(conversion), "{line}");
        assert!(v.get("valid_mean_auc").is_none());
        if conversion > best.0 {
            best = (conversion, v["epoch"].as_u64().unwrap());
        }
    }
    assert_eq!(record["best_epoch"].as_u64(), Some(best.1));
    assert_eq!(record["best_valid_mean_auc"].as_f64(), Some(best.0));
    // The split file of the rule: the validation rows are the table's last.
    let splits = dir.path().join("data");
    let mut found = Vec::new();
    let mut stack = vec![splits];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e
                .file_name()
                .to_string_lossy()
                .contains("-latest-seed1.idx")
            {
                found.push(e.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    // A task the data set lacks is refused before training.
    let args = smoke_run_args(
        dir.path(),
        &config,
        &["train.select_metric={task='buy'}"],
        &[],
    );
    let out = daa(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "train.select_metric names task `buy`, but the data set's labels are click, conversion"
        ),
        "{err}"
    );
}
