//! The alignment diagnostics and the critics' inputs, end to end on the smoke profile: a
//! target drawn from the source's own distribution reads at chance and a shifted one does
//! not; every line of metrics.jsonl carries the diagnostics and result.json those of the
//! start and the selected epoch; symmetric critic inputs never pass source rows through
//! BatchNorm in training mode; the WGAN-GP preset resolves to the paper's optimiser.

mod common;

use std::path::{Path, PathBuf};

use common::{daa, named_run_dir, repo, smoke_run_args, stderr, stdout, tensor_digest};

fn run(dir: &Path, sets: &[&str]) -> PathBuf {
    let config = repo().join("configs/shift/mmoe_shifted.toml");
    let args = smoke_run_args(dir, &config, sets, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    named_run_dir(dir, &daa(dir, &args, &[]))
}

fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn result(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn the_probe_reads_chance_without_shift_and_more_with_one() {
    let dir = tempfile::tempdir().unwrap();
    // The start model (epoch 0) is the same source model for both targets.
    let accuracy = |sets: &[&str]| {
        let run_dir = run(dir.path(), sets);
        metrics(&run_dir)[0]["alignment"]["probe_accuracy"]
            .as_f64()
            .unwrap()
    };
    let same = accuracy(&["adapt.method=finetune"]);
    let shifted = accuracy(&["adapt.method=finetune", "data.target.shift.covariate=1"]);
    // 2 x 1,000 held-out rows: chance reads 0.5 within ~3 standard errors (0.011 each).
    assert!((same - 0.5).abs() < 0.04, "no shift: {same}");
    assert!(shifted > 0.6, "covariate shift 1: {shifted}");
}

#[test]
fn every_epoch_carries_the_diagnostics_and_the_result_its_start_and_selected_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path(), &["adapt.method=daa"]);
    let lines = metrics(&run_dir);
    assert!(lines.len() >= 2);
    for line in &lines {
        let a = &line["alignment"];
        for key in [
            "probe_accuracy",
            "a_distance",
            "mmd",
            "mean_gap",
            "var_gap",
            "drift",
        ] {
            assert!(a[key].as_f64().unwrap().is_finite(), "{key}: {line}");
        }
        let accuracy = a["probe_accuracy"].as_f64().unwrap();
        let expected = 2.0 * (1.0 - 2.0 * (1.0 - accuracy));
        assert!((a["a_distance"].as_f64().unwrap() - expected).abs() < 1e-12);
        for key in ["critic_wasserstein", "critic_wasserstein_train_rows"] {
            assert_eq!(a[key].as_array().unwrap().len(), 2, "{key}: {line}");
        }
    }
    // The start model is the frozen source model: no drift.
    assert_eq!(lines[0]["epoch"], 0);
    assert_eq!(lines[0]["alignment"]["drift"], 0.0);
    let trained = &lines[1];
    let ratio = trained["train"]["term_gradient_ratio"].as_f64().unwrap();
    assert!(ratio.is_finite() && ratio > 0.0, "{trained}");
    let record = result(&run_dir);
    assert_eq!(record["alignment"]["start"], lines[0]["alignment"]);
    let best = record["best_epoch"].as_u64().unwrap() as usize;
    let selected = lines.iter().find(|l| l["epoch"] == best).unwrap();
    assert_eq!(record["alignment"]["selected"], selected["alignment"]);
    let svg = std::fs::read_to_string(run_dir.join("curves.svg")).unwrap();
    for text in ["alignment", "probe accuracy", "critic 2 held-out"] {
        assert!(svg.contains(text), "curves.svg lacks {text}");
    }

    // One critic for daa_single; none, and no term, for fine-tuning.
    let single = run(dir.path(), &["adapt.method=daa_single"]);
    let a = &metrics(&single)[1]["alignment"];
    assert_eq!(a["critic_wasserstein"].as_array().unwrap().len(), 1);
    let finetune = run(dir.path(), &["adapt.method=finetune"]);
    let line = &metrics(&finetune)[1];
    assert!(line["alignment"].get("critic_wasserstein").is_none());
    assert!(line["train"].get("term_gradient_ratio").is_none());
    // probe_rows = 0 turns the diagnostics off.
    let off = run(dir.path(), &["adapt.method=daa", "train.probe_rows=0"]);
    assert!(metrics(&off).iter().all(|l| l.get("alignment").is_none()));
    assert!(result(&off).get("alignment").is_none());
}

#[test]
fn symmetric_inputs_never_normalise_source_rows_with_their_own_statistics() {
    // Symmetric critics see source rows in inference mode only, so what a training-mode
    // pass over source rows would do to BatchNorm's statistics cannot matter; with the
    // released inputs it does.
    let dir = tempfile::tempdir().unwrap();
    let digest = |inputs: &str, batchnorm: &str| {
        let run_dir = run(
            dir.path(),
            &[
                "adapt.method=daa",
                &format!("adapt.critic_inputs={inputs}"),
                &format!("adapt.source_batchnorm={batchnorm}"),
                "train.epochs=2",
            ],
        );
        tensor_digest(&run_dir.join("last.safetensors"))
    };
    let symmetric = digest("symmetric", "batch_only");
    assert_eq!(symmetric, digest("symmetric", "update"));
    let released = digest("released", "batch_only");
    assert_ne!(released, digest("released", "update"));
    assert_ne!(symmetric, released);
}

#[test]
fn the_wgan_gp_preset_has_the_papers_optimiser_and_betas_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("configs/mmoe_nl.toml");
    let config = config.to_str().unwrap();
    let shown = daa(
        dir.path(),
        &[
            "config",
            "show",
            config,
            "--set",
            "adapt.critic=wgan_gp_gulrajani",
        ],
        &[],
    );
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("betas = [0.0, 0.9]"), "{text}");
    assert!(text.contains("lr = 0.0001"), "{text}");
    let bad = daa(
        dir.path(),
        &[
            "config",
            "show",
            config,
            "--set",
            "adapt.critic.betas=[1.0, 0.9]",
        ],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("betas"), "{}", stderr(&bad));
}
