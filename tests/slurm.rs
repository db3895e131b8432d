//! `daa reproduce --slurm` on a real one-node Slurm: the arrays' results equal a local
//! run's bit for bit, also when a task is requeued mid-run. Ignored by default (they need
//! Slurm); `.ci/run` runs them as
//! `scripts/slurm-local.sh cargo test --release --test slurm -- --ignored`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{grid_file, reproduce_grid, stderr, stdout};

fn slurm_is_up() {
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "run these tests under scripts/slurm-local.sh (or a Slurm with SLURM_CONF set)"
    );
}

/// The grid of these tests in `dir`: finetune and daa, 2 seeds, `sets` for every cell.
fn grid(dir: &Path, sets: &[&str]) {
    grid_file(
        dir,
        &[
            ("finetune", "\"adapt.method=finetune\""),
            ("daa", "\"adapt.method=daa\""),
        ],
        sets,
        "",
        "[slurm]\ntime = \"00:20:00\"\nthrottle = 2\n",
    );
}

/// `daa reproduce` on the grid in `dir` with `extra` arguments; its output, asserting success.
fn reproduce(dir: &Path, extra: &[&str]) -> String {
    let output = reproduce_grid(dir, extra);
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// The job ids `--slurm` printed.
fn job_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("submitted job array "))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

fn squeue(job: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%i %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(jobs: &[String], limit: Duration) {
    let start = Instant::now();
    while jobs.iter().any(|j| !squeue(j).trim().is_empty()) {
        assert!(start.elapsed() < limit, "jobs {jobs:?} still queued");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every result under `dir/runs`: config hash -> (test metrics, selected epoch).
fn results(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for experiment in std::fs::read_dir(dir.join("runs")).unwrap() {
        let experiment = experiment.unwrap().path();
        if experiment.ends_with("_source") {
            continue;
        }
        for run in std::fs::read_dir(&experiment).unwrap() {
            let path = run.unwrap().path().join("result.json");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let r: serde_json::Value = serde_json::from_str(&text).unwrap();
                out.insert(
                    r["config_hash"].as_str().unwrap().to_string(),
                    serde_json::json!({"test": r["test"], "best": r["best_epoch"], "epochs": r["epochs_run"]}),
                );
            }
        }
    }
    out
}

#[test]
#[ignore = "needs Slurm: scripts/slurm-local.sh cargo test --release --test slurm -- --ignored"]
fn slurm_arrays_give_the_bits_of_a_local_run() {
    slurm_is_up();
    let local = tempfile::tempdir().unwrap();
    grid(local.path(), &[]);
    reproduce(local.path(), &[]);

    let cluster = tempfile::tempdir().unwrap();
    grid(cluster.path(), &[]);
    let submitted = reproduce(cluster.path(), &["--slurm"]);
    let jobs = job_ids(&submitted);
    assert_eq!(jobs.len(), 2, "pretraining and cells: {submitted}");
    let plan = std::fs::read_to_string(cluster.path().join("out/slurm/plan.tsv")).unwrap();
    assert_eq!(plan.lines().count(), 1 + 4, "{plan}");
    wait_for(&jobs, Duration::from_secs(600));
    let collected = reproduce(cluster.path(), &["--collect"]);
    assert!(
        collected.contains("4 cells: 4 finished, 0 missing"),
        "{collected}"
    );
    let expected = results(local.path());
    assert_eq!(expected.len(), 4);
    assert_eq!(results(cluster.path()), expected);
    // Submitting again finds nothing to do.
    assert!(reproduce(cluster.path(), &["--slurm"]).contains("nothing to submit"));
}

#[test]
#[ignore = "needs Slurm: scripts/slurm-local.sh cargo test --release --test slurm -- --ignored"]
fn a_requeued_task_resumes_to_the_same_bits() {
    slurm_is_up();
    // Enough epochs that a task is caught mid-run.
    let sets = ["train.epochs=30", "train.patience=30"];
    let local = tempfile::tempdir().unwrap();
    grid(local.path(), &sets);
    reproduce(local.path(), &["--only", "daa/seed1"]);

    let cluster = tempfile::tempdir().unwrap();
    grid(cluster.path(), &sets);
    let submitted = reproduce(cluster.path(), &["--only", "daa/seed1", "--slurm"]);
    let jobs = job_ids(&submitted);
    let cells = jobs.last().unwrap().clone();
    // Wait until the cell has finished at least one epoch, then requeue it: Slurm kills
    // the task and runs it again, which resumes from the last epoch's state.
    let start = Instant::now();
    let runs = cluster.path().join("runs/exp");
    loop {
        let epochs = std::fs::read_dir(&runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| {
                std::fs::read_dir(d.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|f| f.file_name().to_string_lossy().starts_with("state-epoch"))
            });
        if epochs {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let requeue = Command::new("scontrol")
        .args(["requeue", &format!("{cells}_0")])
        .output()
        .unwrap();
    assert!(
        requeue.status.success(),
        "{}",
        String::from_utf8_lossy(&requeue.stderr)
    );
    wait_for(&jobs, Duration::from_secs(600));
    let collected = reproduce(cluster.path(), &["--only", "daa/seed1", "--collect"]);
    assert!(collected.contains("1 finished, 0 missing"), "{collected}");
    assert_eq!(results(cluster.path()), results(local.path()));
    let log: String = std::fs::read_dir(cluster.path().join("out/slurm/logs"))
        .unwrap()
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
        .collect();
    // The task was killed mid-run and ran again; daa itself reported no error.
    assert!(log.contains("DUE TO JOB REQUEUE"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("error:")), "{log}");
}

#[test]
#[ignore = "needs Slurm: scripts/slurm-local.sh cargo test --release --test slurm -- --ignored"]
fn a_search_submits_its_trials_then_once_they_finish_its_evaluation_cells() {
    slurm_is_up();
    let search = "[search]\ntrials = 2\nseeds = [101]\n\
                  [search.space.finetune]\n\"optim.lr\" = { log_uniform = [1e-4, 1e-2] }\n";
    let methods = [
        ("finetune", "\"adapt.method=finetune\""),
        ("source_only", "\"adapt.method=source_only\""),
    ];
    let local = tempfile::tempdir().unwrap();
    grid_file(local.path(), &methods, &[], "", search);
    reproduce(local.path(), &[]);

    let cluster = tempfile::tempdir().unwrap();
    grid_file(cluster.path(), &methods, &[], "", search);
    // First the trials (and the cells without a search); the evaluation cells wait.
    let first = reproduce(cluster.path(), &["--slurm"]);
    assert!(
        first.contains("2 evaluation cell(s) wait on their search's trials"),
        "{first}"
    );
    let plan = std::fs::read_to_string(cluster.path().join("out/slurm/plan.tsv")).unwrap();
    assert_eq!(
        plan.lines().count(),
        1 + 4,
        "2 trials, 2 source_only: {plan}"
    );
    wait_for(&job_ids(&first), Duration::from_secs(600));
    // Then the selected trial on the evaluation seeds.
    let second = reproduce(cluster.path(), &["--slurm"]);
    assert!(!second.contains("wait on their search"), "{second}");
    let plan = std::fs::read_to_string(cluster.path().join("out/slurm/plan.tsv")).unwrap();
    assert_eq!(plan.lines().count(), 1 + 2, "{plan}");
    assert!(
        plan.contains("finetune/seed1\t") && plan.contains("finetune/seed2\t"),
        "{plan}"
    );
    wait_for(&job_ids(&second), Duration::from_secs(600));
    let collected = reproduce(cluster.path(), &["--collect"]);
    assert!(
        collected.contains("6 cells: 6 finished, 0 missing"),
        "{collected}"
    );
    let expected = results(local.path());
    assert_eq!(expected.len(), 6);
    assert_eq!(results(cluster.path()), expected);
}
