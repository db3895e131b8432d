//! Every adaptation method of the registry on the smoke profile: it runs on every backbone,
//! reports what it measures, and resumes bit-identically; partial fine-tuning leaves the
//! body where the source model put it; TAA's critics see one task's feature each.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{daa, named_run_dir, repo, smoke_run_args};

/// The entries of `registry/methods`.
fn methods() -> Vec<String> {
    daa::config::registry::toml_names(&repo().join("registry/methods"))
}

fn run(dir: &Path, backbone: &str, sets: &[&str], extra: &[&str]) -> PathBuf {
    let config = repo().join(format!("configs/{backbone}_nl.toml"));
    let args = smoke_run_args(dir, &config, sets, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    named_run_dir(dir, &daa(dir, &args, &[]))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The trained epochs' lines of metrics.jsonl.
fn trained_epochs(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("train").is_some())
        .collect()
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    let flat = |t: &Tensor| {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    a.dims() == b.dims() && flat(a) == flat(b)
}

#[test]
fn every_method_runs_on_every_backbone_and_reports_its_measurements() {
    let methods = methods();
    assert!(methods.len() >= 13, "{methods:?}");
    let dir = tempfile::tempdir().unwrap();
    for backbone in daa::models::BACKBONES.iter().map(|k| k.name) {
        for method in &methods {
            let run_dir = run(
                dir.path(),
                backbone,
                &[&format!("adapt.method={method}")],
                &[],
            );
            let result = json(&run_dir.join("result.json"));
            assert_eq!(result["method"], method.as_str());
            for task in result["test"]["tasks"].as_array().unwrap() {
                let auc = task["auc"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&auc), "{backbone}/{method}: {auc}");
            }
            if method == "source_only" {
                continue;
            }
            let epochs = trained_epochs(&run_dir);
            assert!(!epochs.is_empty(), "{backbone}/{method}");
            let train = &epochs[0]["train"];
            let reported = |key: &str| train.get(key).is_some_and(|v| !v.is_null());
            let expected: &[&str] = match method.as_str() {
                "daa" | "daa_single" | "daa_d2" | "taa" => &["critic_loss", "wasserstein"],
                "dann" => &["domain_loss"],
                "coral" => &["coral"],
                "mmd" => &["mmd"],
                "joint" => &["source_task_loss"],
                _ => &[],
            };
            for key in expected {
                assert!(
                    reported(key),
                    "{backbone}/{method} reports no {key}: {train}"
                );
            }
            if method == "taa" {
                let critics = train["critic_loss"].as_array().unwrap().len();
                assert_eq!(critics, 2, "{backbone}: one critic per task");
            }
            let objective = train["loss"].as_f64().unwrap();
            assert!(objective.is_finite(), "{backbone}/{method}: {train}");
            // Every method reports its alignment; critics their held-out estimates; a
            // method with a term its gradient ratio.
            let alignment = &epochs[0]["alignment"];
            let accuracy = alignment["probe_accuracy"].as_f64();
            assert!(
                accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)),
                "{backbone}/{method}: {alignment}"
            );
            let critics = matches!(method.as_str(), "daa" | "daa_single" | "daa_d2" | "taa");
            assert_eq!(
                alignment.get("critic_wasserstein").is_some(),
                critics,
                "{backbone}/{method}: {alignment}"
            );
            let term =
                critics || matches!(method.as_str(), "dann" | "coral" | "mmd" | "joint" | "l2sp");
            assert_eq!(
                train.get("term_gradient_ratio").is_some(),
                term,
                "{backbone}/{method}: {train}"
            );
        }
    }
}

#[test]
fn every_method_resumes_with_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    for method in methods().iter().filter(|m| *m != "source_only") {
        let sets = [
            &format!("adapt.method={method}") as &str,
            "train.patience=10",
        ];
        let whole = run(dir.path(), "mmoe", &sets, &[]);
        let reference = json(&whole.join("result.json"));
        std::fs::remove_dir_all(&whole).unwrap();
        let stopped = run(dir.path(), "mmoe", &sets, &["--stop-after-epochs", "2"]);
        assert!(!stopped.join("result.json").exists(), "{method}");
        let resumed = run(dir.path(), "mmoe", &sets, &["--resume"]);
        assert_eq!(resumed, stopped);
        let result = json(&resumed.join("result.json"));
        for key in ["test", "best_epoch", "best_valid_mean_auc", "epochs_run"] {
            assert_eq!(result[key], reference[key], "{method}: {key}");
        }
    }
}

/// The pretrained source model the runs under `dir` started from.
fn source_model(dir: &Path) -> HashMap<String, Tensor> {
    let sources: Vec<PathBuf> = std::fs::read_dir(dir.join("runs/_source"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sources.len(), 1);
    tensors(&sources[0].join("model.safetensors"))
}

#[test]
fn partial_fine_tuning_moves_the_heads_and_not_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path(), "mmoe", &["adapt.method=partial"], &[]);
    let source = source_model(dir.path());
    let trained = tensors(&run_dir.join("last.safetensors"));
    let statistic = |name: &str| {
        ["running_mean", "running_var", "num_batches_tracked"]
            .iter()
            .any(|s| name.ends_with(s))
    };
    let body = |name: &str| {
        ["embedding.", "numerical_layer.", "expert."]
            .iter()
            .any(|p| name.starts_with(p))
    };
    let (mut frozen, mut moved) = (0, 0);
    for (name, tensor) in &trained {
        if statistic(name) {
            continue;
        }
        if body(name) {
            assert!(same(tensor, &source[name]), "{name} moved");
            frozen += 1;
        } else if !same(tensor, &source[name]) {
            moved += 1;
        }
    }
    assert!(frozen > 0 && moved > 0, "frozen {frozen}, moved {moved}");
    // Fine-tuning, by contrast, moves the body.
    let finetuned =
        tensors(&run(dir.path(), "mmoe", &["adapt.method=finetune"], &[]).join("last.safetensors"));
    assert!(
        finetuned
            .iter()
            .any(|(name, t)| body(name) && !statistic(name) && !same(t, &source[name]))
    );
}

/// The input width of the first critic in a run's last training state.
fn first_critic_input(run_dir: &Path) -> usize {
    let state = std::fs::read_dir(run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("state-epoch")
        })
        .unwrap();
    tensors(&state)["adversaries.critic1.0.weight"].dims()[1]
}

#[test]
fn taa_critics_see_one_task_feature_each() {
    let dir = tempfile::tempdir().unwrap();
    // MMoE's feature is its two tasks' expert mixtures side by side: a TAA critic sees one,
    // a DAA critic both. SharedBottom's feature is shared: every critic sees all of it.
    for (backbone, ratio) in [("mmoe", 2), ("sharedbottom", 1)] {
        let taa = first_critic_input(&run(dir.path(), backbone, &["adapt.method=taa"], &[]));
        let daa = first_critic_input(&run(dir.path(), backbone, &["adapt.method=daa"], &[]));
        assert_eq!(taa * ratio, daa, "{backbone}");
    }
}

#[test]
fn joint_from_scratch_has_no_start_model_and_from_the_source_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let first_epoch = |sets: &[&str]| {
        let run_dir = run(dir.path(), "mmoe", sets, &[]);
        let lines = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
        serde_json::from_str::<serde_json::Value>(lines.lines().next().unwrap()).unwrap()["epoch"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(first_epoch(&["adapt.method=joint"]), 0);
    assert_eq!(
        first_epoch(&["adapt.method=joint", "adapt.method.start=scratch"]),
        1
    );
}
