//! The run store under concurrency, interruption and damage: two processes on one run
//! directory or one source cache both finish with the same bits; a finished run is reused
//! and `--rerun` runs it again; damaged tables and split files are rebuilt to the same
//! bits, damaged checkpoints and states are errors naming the file; a diverging run stops
//! with a clear error and records nothing; source pretraining resumes bit-identically;
//! temporary files of dead processes are removed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{command, daa, named_run_dir, repo, smoke_run_args, stderr, stdout};

/// The smoke-profile MMoE experiment in `dir` with `sets` and `extra` arguments.
fn args(dir: &Path, sets: &[&str], extra: &[&str]) -> Vec<String> {
    smoke_run_args(dir, &repo().join("configs/mmoe_nl.toml"), sets, extra)
}

fn run(dir: &Path, sets: &[&str], extra: &[&str]) -> Output {
    let args = args(dir, sets, extra);
    daa(
        dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    )
}

/// The test metrics, selected epoch and epochs of a run's result.json.
fn metrics(run: &Path) -> serde_json::Value {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    serde_json::json!({"test": r["test"], "best": r["best_epoch"], "epochs": r["epochs_run"]})
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn two_processes_on_one_run_directory_and_one_source_cache_both_finish_with_the_same_bits() {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = named_run_dir(reference_dir.path(), &run(reference_dir.path(), &[], &[]));
    let expected = metrics(&reference);

    let dir = tempfile::tempdir().unwrap();
    let start = |sets: &[&str]| {
        let args = args(dir.path(), sets, &[]);
        command(
            dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )
        .output()
    };
    // Two identical runs (one run directory, one source cache) and a third method that
    // shares only the source cache, all at once.
    let (a, b, c) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&[]));
        let b = s.spawn(|| start(&[]));
        let c = s.spawn(|| start(&["adapt.method=finetune"]));
        (
            a.join().unwrap().unwrap(),
            b.join().unwrap().unwrap(),
            c.join().unwrap().unwrap(),
        )
    });
    let (ra, rb) = (named_run_dir(dir.path(), &a), named_run_dir(dir.path(), &b));
    named_run_dir(dir.path(), &c);
    assert_eq!(ra, rb);
    assert_eq!(metrics(&ra), expected, "the same bits as a run alone");
    let epochs = expected["epochs"].as_u64().unwrap() as usize;
    assert_eq!(
        lines(&ra.join("metrics.jsonl")),
        epochs + 1,
        "one line per epoch, and one for the start model"
    );
    let reused = [&a, &b]
        .iter()
        .filter(|o| stdout(o).contains("finished earlier"))
        .count();
    assert_eq!(
        reused, 1,
        "the second process reused the first one's result"
    );
    let sources = std::fs::read_dir(dir.path().join("runs/_source"))
        .unwrap()
        .count();
    assert_eq!(sources, 1, "one source pretraining served all three");
}

#[test]
fn a_finished_run_is_reused_and_rerun_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    let expected = metrics(&first);
    let again = run(dir.path(), &[], &[]);
    assert!(
        stdout(&again).contains("finished earlier"),
        "{}",
        stdout(&again)
    );
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = mtime(&first.join("result.json"));
    let rerun = run(dir.path(), &[], &["--rerun"]);
    assert!(!stdout(&rerun).contains("finished earlier"));
    assert_eq!(named_run_dir(dir.path(), &rerun), first);
    assert!(mtime(&first.join("result.json")) > before, "written anew");
    assert_eq!(metrics(&first), expected);

    // The index of finished runs lists it once, with its hash and best epoch.
    let index = daa(dir.path(), &["runs", "--format", "csv"], &[]);
    assert!(index.status.success(), "{}", stderr(&index));
    let text = stdout(&index);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let hash = first.file_name().unwrap().to_str().unwrap();
    assert!(
        rows[0].starts_with("mmoe_nl,daa,1,") && rows[0].contains(hash),
        "{text}"
    );
    let json = daa(
        dir.path(),
        &["runs", "--format", "json", "--experiment", "ple"],
        &[],
    );
    assert_eq!(stdout(&json).trim(), "[]");
}

/// Flips the bits of the byte at `at` (counted back from the end when negative).
fn damage_at(path: &Path, at: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = if at < 0 { bytes.len() as i64 + at } else { at } as usize;
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Flips a byte near the end of `path` (inside a checkpoint's tensors).
fn damage(path: &Path) {
    damage_at(path, -100);
}

fn find(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn damaged_tables_and_split_files_are_rebuilt_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    let expected = metrics(&first);
    let tables = find(&dir.path().join("data"), "train.table");
    let splits = find(&dir.path().join("data"), ".idx");
    assert!(
        tables.len() == 2 && splits.len() == 1,
        "{tables:?} {splits:?}"
    );
    // Tables: every row's first category set to 0 (valid values, other rows: a table read
    // as it is would train differently). Split files: a row index.
    for path in &tables {
        let mut bytes = std::fs::read(path).unwrap();
        let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + len]).unwrap();
        let (rows, fields) = (
            header["rows"].as_u64().unwrap(),
            header["fields"].as_u64().unwrap(),
        );
        assert_eq!(header["category_width"], 1);
        let start = header["offsets"][0].as_u64().unwrap();
        for row in 0..rows {
            bytes[(start + row * fields) as usize] = 0;
        }
        std::fs::write(path, bytes).unwrap();
    }
    damage_at(&splits[0], -8);
    let again = named_run_dir(dir.path(), &run(dir.path(), &[], &["--rerun"]));
    assert_eq!(metrics(&again), expected);
}

#[test]
fn damaged_checkpoints_and_states_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let stopped = named_run_dir(
        dir.path(),
        &run(
            dir.path(),
            &["train.patience=10"],
            &["--stop-after-epochs", "1"],
        ),
    );
    let states = find(&stopped, ".safetensors");
    let state = states
        .iter()
        .find(|p| p.to_string_lossy().contains("state-epoch"))
        .expect("a state file");
    damage(state);
    let resumed = run(dir.path(), &["train.patience=10"], &["--resume"]);
    assert_eq!(resumed.status.code(), Some(2), "{}", stderr(&resumed));
    let err = stderr(&resumed);
    assert!(
        err.contains(state.file_name().unwrap().to_str().unwrap()) && err.contains("damaged"),
        "{err}"
    );
    assert!(!stopped.join("result.json").exists());

    let source = find(&dir.path().join("runs/_source"), "model.safetensors");
    damage(&source[0]);
    let out = run(dir.path(), &["adapt.method=finetune"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("model.safetensors"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["optim.lr=1e30", "adapt.method=finetune"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("target training diverged at epoch")
            && err.contains("step")
            && err.contains("optim.lr"),
        "{err}"
    );
    assert!(
        find(&dir.path().join("runs"), "result.json").is_empty(),
        "no result recorded"
    );
    // Losses are read once per epoch: a critic that diverges first is still the one named.
    let out = run(
        dir.path(),
        &["adapt.method=daa", "adapt.critic.lr=1e20"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // The user needs where it diverged and the values in force to know what to lower.
    assert!(
        err.contains("target training diverged at epoch 1, step 1: critic 1's loss is NaN after 1 critic steps")
            && err.contains("Lower `adapt.critic.lr` (now 1e20) or `adapt.critic.penalty_weight` (now 10)"),
        "{err}"
    );
    // A model trained from scratch names the learning rate it trains with, not
    // `optim.lr`, which single_domain does not use.
    let out = run(
        dir.path(),
        &["adapt.method=single_domain", "pretrain.lr=1e30"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("target training diverged")
            && err.contains("Lower `pretrain.lr` (now 1e30), or check the data"),
        "{err}"
    );
    // Weights that f32 cannot hold are refused before training, by key: otherwise
    // training diverges and the learning rates look to blame.
    for key in ["adapt.weights.adversarial", "adapt.critic.penalty_weight"] {
        let out = run(dir.path(), &[&format!("{key}=1e39")], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("key `{key}`: 1e39 is beyond the range of f32")),
            "{err}"
        );
    }
    assert!(find(&dir.path().join("runs"), "result.json").is_empty());
}

#[test]
fn a_collapsed_model_is_recorded_as_such_and_warned_about() {
    // A collapsed model's AUC of 0.5 is no result: it must not pass without a word.
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["optim.lr=10", "adapt.method=finetune"], &[]);
    let result = named_run_dir(dir.path(), &out);
    let err = stderr(&out);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.join("result.json")).unwrap())
            .unwrap();
    let collapsed: Vec<&serde_json::Value> = record["test"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("constant_prediction").is_some())
        .collect();
    assert!(!collapsed.is_empty(), "{record}");
    for task in collapsed {
        assert_eq!(task["auc"].as_f64(), Some(0.5), "one value: AUC 0.5");
        let name = task["task"].as_str().unwrap();
        assert!(
            err.contains(&format!("every test row of `{name}`: it has collapsed")),
            "{err}"
        );
    }
    // A healthy run carries no mark.
    let fine = run(dir.path(), &["adapt.method=finetune"], &[]);
    let healthy = named_run_dir(dir.path(), &fine);
    let text = std::fs::read_to_string(healthy.join("result.json")).unwrap();
    assert!(!text.contains("constant_prediction"), "{text}");
    assert!(!stderr(&fine).contains("collapsed"));
}

#[test]
fn interrupted_source_pretraining_resumes_bit_identically() {
    let sets = ["pretrain.epochs=3", "pretrain.patience=3"];
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = named_run_dir(whole_dir.path(), &run(whole_dir.path(), &sets, &[]));
    let expected = metrics(&whole);
    let source = |dir: &Path| {
        std::fs::read(&find(&dir.join("runs/_source"), "model.safetensors")[0]).unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    let stopped = run(dir.path(), &sets, &["--stop-pretraining-after", "1"]);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(find(&dir.path().join("runs/_source"), "model.safetensors").is_empty());
    assert_eq!(
        find(&dir.path().join("runs/_source"), "progress.json").len(),
        1
    );
    let resumed = named_run_dir(dir.path(), &run(dir.path(), &sets, &[]));
    assert_eq!(metrics(&resumed), expected);
    assert_eq!(
        source(dir.path()),
        source(whole_dir.path()),
        "the same source model"
    );
}

#[test]
fn temporary_files_of_dead_processes_are_removed_and_files_follow_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    // pid_max on Linux is at most 2^22: no process has this id.
    let stale = first.join("best.safetensors.4194305.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    named_run_dir(dir.path(), &run(dir.path(), &[], &["--rerun"]));
    assert!(!stale.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(first.join("best.safetensors"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(
            mode & 0o044,
            0,
            "readable by others as the umask allows: {mode:o}"
        );
    }
}

#[test]
fn profiles_are_names_or_paths_and_say_which_file_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("tiny.toml");
    std::fs::copy(repo().join("configs/profiles/smoke.toml"), &profile).unwrap();
    let config = repo().join("configs/mmoe_nl.toml");
    let show = |p: &str| {
        daa(
            dir.path(),
            &["config", "show", config.to_str().unwrap(), "--profile", p],
            &[],
        )
    };
    let by_path = show(profile.to_str().unwrap());
    assert!(by_path.status.success(), "{}", stderr(&by_path));
    assert!(
        stderr(&by_path).contains("tiny.toml"),
        "{}",
        stderr(&by_path)
    );
    assert_eq!(stdout(&by_path), stdout(&show("smoke")));
    let missing = show("../../nowhere.toml");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no such file"),
        "{}",
        stderr(&missing)
    );
    let escaping = show("..");
    assert_eq!(escaping.status.code(), Some(2), "{}", stderr(&escaping));
}

#[test]
fn an_unwritable_output_is_an_environment_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    let config = repo().join("configs/mmoe_nl.toml");
    let csv = dir.path().join("rows.csv");
    std::fs::copy(
        repo().join("tests/fixtures/aliexpress-sample/train.csv"),
        &csv,
    )
    .unwrap();
    let checkpoint = first.join("best.safetensors");
    let out = daa(
        dir.path(),
        &[
            "predict",
            config.to_str().unwrap(),
            "--profile",
            "smoke",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
            "--out",
            "/dev/null/p.csv",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/dev/null/p.csv"), "{}", stderr(&out));
}

#[test]
fn resume_refuses_what_it_cannot_trust_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["train.patience=10"];
    let stopped = named_run_dir(
        dir.path(),
        &run(dir.path(), &sets, &["--stop-after-epochs", "2"]),
    );
    let progress = stopped.join("progress.json");
    let original = std::fs::read_to_string(&progress).unwrap();
    assert!(original.contains("\"epochs\": 2"), "{original}");
    let refused = |damage: &dyn Fn(), file: &str| {
        damage();
        let out = run(dir.path(), &sets, &["--resume"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(file) && err.contains("without --resume"),
            "{file}: {err}"
        );
        assert!(!stopped.join("result.json").exists());
        std::fs::write(&progress, &original).unwrap();
    };
    // An edited epoch count, another edited value, a state outside the run directory, a
    // file that is not text.
    let write = |text: String| std::fs::write(&progress, text).unwrap();
    refused(
        &|| write(original.replace("\"epochs\": 2", "\"epochs\": 7")),
        "progress.json",
    );
    refused(
        &|| write(original.replace("\"finished\": false", "\"finished\": true")),
        "progress.json",
    );
    refused(
        &|| write(original.replace("\"state-epoch2", "\"../../state-epoch2")),
        "progress.json",
    );
    refused(
        &|| std::fs::write(&progress, b"\xff\xfe{\"epochs\": 2}").unwrap(),
        "progress.json",
    );
    // metrics.jsonl cut in the middle of a line loses an epoch: refused, not cut silently.
    let metrics_path = stopped.join("metrics.jsonl");
    let metrics_text = std::fs::read_to_string(&metrics_path).unwrap();
    let cut = metrics_text.find('\n').unwrap() + 20;
    refused(
        &|| std::fs::write(&metrics_path, &metrics_text[..cut]).unwrap(),
        "metrics.jsonl",
    );
    // A line repeated would leave the log with an epoch twice.
    let second = metrics_text.lines().nth(1).unwrap();
    refused(
        &|| std::fs::write(&metrics_path, format!("{metrics_text}{second}\n")).unwrap(),
        "metrics.jsonl",
    );
    std::fs::write(&metrics_path, &metrics_text).unwrap();
    // A missing selected model: --resume says to start afresh, and a plain run does.
    let best = stopped.join("best.safetensors");
    refused(&|| std::fs::remove_file(&best).unwrap(), "best.safetensors");
    let fresh = run(dir.path(), &sets, &[]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    assert!(stopped.join("result.json").exists());
}

#[test]
fn a_model_too_large_for_the_machine_is_refused_naming_its_sizes_before_allocating() {
    // A layer of 10^10 units would abort the process at its allocation, and 100,000
    // experts would grow until the system kills it: both must be refused, naming the key.
    let dir = tempfile::tempdir().unwrap();
    for (set, key) in [
        (
            "model.backbone.bottom_dims=[10000000000, 16]",
            "model.backbone.bottom_dims",
        ),
        ("model.backbone.experts=100000", "model.backbone.experts"),
    ] {
        let out = run(dir.path(), &[set], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains(key) && err.contains("does not fit in this machine's memory"),
            "{set}: {err}"
        );
        assert!(err.contains("GiB"), "{err}");
    }
}

#[test]
fn a_finished_run_that_lost_its_result_resumes_to_the_same_record() {
    // A run killed between its last state and result.json (or whose result.json was
    // deleted) holds a finished state: it must finish again, not be refused as edited.
    let dir = tempfile::tempdir().unwrap();
    let done = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    let expected = metrics(&done);
    std::fs::remove_file(done.join("result.json")).unwrap();
    let resumed = run(dir.path(), &[], &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(!stdout(&resumed).contains("finished earlier"));
    assert_eq!(metrics(&done), expected);
    // Without --resume the run starts afresh, to the same bits.
    std::fs::remove_file(done.join("result.json")).unwrap();
    let afresh = run(dir.path(), &[], &[]);
    assert!(afresh.status.success(), "{}", stderr(&afresh));
    assert_eq!(metrics(&done), expected);
}

#[test]
fn the_runs_index_takes_its_directory_from_the_config_layers() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let done = run(
        dir.path(),
        &[&format!("output.runs_dir='{}'", elsewhere.display())],
        &[],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    let listed = |args: &[&str], env: &[(&str, &str)]| {
        let out = daa(dir.path(), args, env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let shown = elsewhere.display().to_string();
    // The environment, --set and an experiment's layers; --runs-dir wins over them all.
    let env = [("DAA_OUTPUT__RUNS_DIR", shown.as_str())];
    assert!(listed(&["runs"], &env).contains("1 finished run(s)"));
    let set = format!("output.runs_dir='{shown}'");
    assert!(listed(&["runs", "--set", &set], &[]).contains("1 finished run(s)"));
    let config = repo().join("configs/mmoe_nl.toml");
    let config = config.to_str().unwrap();
    assert!(listed(&["runs", config, "--set", &set], &[]).contains("1 finished run(s)"));
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other = other.display().to_string();
    assert!(listed(&["runs", "--runs-dir", &other], &env).contains("0 finished run(s)"));
    // Nowhere: the message names the directory and the ways to set it.
    let out = daa(dir.path(), &["runs"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("DAA_OUTPUT__RUNS_DIR"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_chart_is_redrawn_with_its_run_and_never_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    let curves = first.join("curves.svg");
    assert!(curves.exists());
    // Lost after the result (a full disk): a reusing run draws it again.
    std::fs::remove_file(&curves).unwrap();
    let again = run(dir.path(), &[], &[]);
    assert!(
        stdout(&again).contains("finished earlier"),
        "{}",
        stdout(&again)
    );
    assert!(curves.exists(), "redrawn");
    // A rerun stopped before its end leaves no chart of the earlier attempt beside its
    // partial metrics.
    let rerun = run(dir.path(), &[], &["--rerun", "--stop-after-epochs", "1"]);
    assert_eq!(named_run_dir(dir.path(), &rerun), first);
    assert!(!curves.exists(), "the earlier attempt's chart is gone");
    assert!(!first.join("result.json").exists());
}

#[test]
fn a_damaged_result_is_named_left_out_of_listings_and_run_again_everywhere() {
    // Every command must take a damaged result the same way: named, left out, run again.
    let dir = tempfile::tempdir().unwrap();
    common::grid_file(
        dir.path(),
        &[("finetune", "\"adapt.method=finetune\"")],
        &[],
        "",
        "",
    );
    let out = common::reproduce_grid(dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = find(&dir.path().join("runs"), "result.json");
    assert_eq!(results.len(), 2);
    let damaged = &results[0];
    let cell = damaged.parent().unwrap();
    let expected = metrics(cell);
    std::fs::write(damaged, "{\"experiment\": \"mm").unwrap();
    // Named by its path under the runs directory (listings show it relative or absolute).
    let shown = damaged
        .strip_prefix(dir.path())
        .unwrap()
        .display()
        .to_string();

    let index = daa(dir.path(), &["runs", "--runs-dir", "runs"], &[]);
    assert!(index.status.success(), "{}", stderr(&index));
    assert!(
        stdout(&index).contains("1 finished run(s)"),
        "{}",
        stdout(&index)
    );
    let err = stderr(&index);
    assert!(
        err.contains(&shown) && err.contains("damaged result"),
        "{err}"
    );

    let dry = common::reproduce_grid(dir.path(), &["--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let listed = stdout(&dry);
    assert!(
        listed.contains("1 finished, 1 to run") && listed.contains("to run: damaged result"),
        "{listed}"
    );
    let collected = daa(
        dir.path(),
        &[
            "reproduce",
            "grid.toml",
            "--profile",
            "smoke",
            "--out",
            "out",
            "--collect",
        ],
        &[],
    );
    assert!(collected.status.success(), "{}", stderr(&collected));
    assert!(
        stdout(&collected).contains("1 missing"),
        "{}",
        stdout(&collected)
    );
    assert!(
        stderr(&collected).contains(&shown),
        "{}",
        stderr(&collected)
    );

    // Running the grid runs the cell again, to the bits it had.
    let again = common::reproduce_grid(dir.path(), &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(metrics(cell), expected);

    // `daa run` does the same, saying why.
    let first = named_run_dir(dir.path(), &run(dir.path(), &[], &[]));
    std::fs::write(first.join("result.json"), [0xff, 0x00]).unwrap();
    let rerun = run(dir.path(), &[], &[]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(!stdout(&rerun).contains("finished earlier"));
    assert!(
        stderr(&rerun).contains("damaged result"),
        "{}",
        stderr(&rerun)
    );
    assert!(
        metrics(&first)["epochs"].as_u64().is_some(),
        "a result that reads again"
    );
}

/// `args` of `daa` in `dir` with `root` read-only: in a mount namespace where it is bound
/// read-only (`unshare -m`, as root); where that is not allowed, with every `.lock` below
/// `root` replaced by a folder, so that taking any writer's lock there fails.
fn daa_read_only(dir: &Path, root: &Path, args: &[&str]) -> Output {
    let isolated = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !isolated {
        for lock in find(root, "/.lock") {
            std::fs::remove_file(&lock).unwrap();
            std::fs::create_dir(&lock).unwrap();
        }
        return daa(dir, args, &[]);
    }
    let root = root.to_str().unwrap();
    let script = format!(
        "mount --bind '{root}' '{root}' && mount -o remount,bind,ro '{root}' && \
         touch '{root}/probe' 2>/dev/null && exit 99; exec \"$@\""
    );
    let inner = common::command(dir, args, &[]);
    let mut command = std::process::Command::new("unshare");
    command
        .args(["-m", "sh", "-c", &script, "sh"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(dir);
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    let out = command.output().unwrap();
    assert_ne!(out.status.code(), Some(99), "the storage was not read-only");
    out
}

#[test]
fn finished_runs_data_and_caches_on_read_only_storage_serve_without_a_lock() {
    // Finished work must serve without the writer's lock, which read-only storage denies.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let first = named_run_dir(&store, &run(&store, &[], &[]));
    let expected = metrics(&first);
    let csv = store.join("rows.csv");
    std::fs::copy(
        repo().join("tests/fixtures/aliexpress-sample/train.csv"),
        &csv,
    )
    .unwrap();
    let checkpoint = first.join("best.safetensors");
    let predict = |out: &Path| -> Vec<String> {
        let mut args = args(&store, &[], &[]);
        args[1] = "predict".into();
        args.extend(
            [
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--data",
                csv.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ]
            .map(String::from),
        );
        args
    };
    let written = predict(&dir.path().join("p1.csv"));
    let made = daa(
        &store,
        &written.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(store.join(".daa-cache/rows.csv.table").is_file());

    // The finished run prints its result.
    let a = args(&store, &[], &[]);
    let out = daa_read_only(
        &store,
        &store,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("finished earlier"),
        "{}",
        stdout(&out)
    );
    // The cached CSV table serves predict.
    let again = predict(&dir.path().join("p2.csv"));
    let out = daa_read_only(
        &store,
        &store,
        &again.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("p1.csv")).unwrap(),
        std::fs::read(dir.path().join("p2.csv")).unwrap()
    );
    // Its data serve a run whose runs directory is elsewhere.
    let elsewhere = dir.path().join("elsewhere");
    let set = format!("output.runs_dir='{}'", elsewhere.display());
    let moved = args(&store, &[&set], &[]);
    let out = daa_read_only(
        &store,
        &store,
        &moved.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = find(&elsewhere, "result.json");
    assert_eq!(copy.len(), 1);
    assert_eq!(
        metrics(copy[0].parent().unwrap()),
        expected,
        "the same bits"
    );
}
