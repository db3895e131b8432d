//! `daa reproduce table3 --profile smoke` end to end: every cell filled; an interrupted
//! reproduction continues where it stopped and a finished one runs nothing again.

mod common;

use common::{daa, grid_file, repo, reproduce_grid, stderr, stdout};

fn reproduce(dir: &std::path::Path, extra: &[&str]) -> String {
    let out_dir = dir.join("out");
    let mut args = vec![
        "-q",
        "reproduce",
        "table3",
        "--profile",
        "smoke",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = daa(dir, &args, &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

#[test]
fn table3_smoke_fills_every_cell_and_skips_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let dry = reproduce(dir.path(), &["--dry-run"]);
    assert!(
        dry.contains("table3 (smoke): 60 cells, 0 finished, 60 to run"),
        "{dry}"
    );

    // An interrupted reproduction: only some cells ran.
    let partial = reproduce(dir.path(), &["--only", "sharedbottom/nl"]);
    assert!(
        partial.contains("3 cells: 3 run now, 0 already finished"),
        "{partial}"
    );

    let full = reproduce(dir.path(), &[]);
    assert!(
        full.contains("60 cells: 57 run now, 3 already finished (skipped)"),
        "{full}"
    );
    let csv = std::fs::read_to_string(dir.path().join("out/table.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        5 * 4 * 3 * 2,
        "backbones x targets x methods x tasks"
    );
    for row in &rows {
        let fields: Vec<&str> = row.split(',').collect();
        let auc: f64 = fields[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{row}");
        assert!(
            !fields[7].is_empty(),
            "synthetic data has an oracle AUC: {row}"
        );
    }
    let table = std::fs::read_to_string(dir.path().join("out/table.md")).unwrap();
    assert!(table.contains("**The data is synthetic**"));
    assert!(table.contains("Paper: daa over single_domain for mmoe: +6.85%"));
    assert!(table.contains("| mmoe/us |"));
    for file in ["results.json", "plot.svg"] {
        assert!(dir.path().join("out").join(file).is_file(), "{file}");
    }

    let again = reproduce(dir.path(), &[]);
    assert!(
        again.contains("60 cells: 0 run now, 60 already finished (skipped)"),
        "{again}"
    );
}

#[test]
fn a_closed_stdout_ends_the_listing_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let args = ["reproduce", "table3", "--profile", "smoke", "--dry-run"];
    let mut child = common::command(&repo(), &args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert_ne!(status.code(), Some(101), "a panic's exit code");
}

#[test]
fn a_grid_file_outside_the_project_resolves_its_configs_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let grids = dir.path().join("grids");
    std::fs::create_dir_all(grids.join("exp")).unwrap();
    let base = repo().join("configs/mmoe_nl.toml");
    std::fs::write(
        grids.join("exp/mine.toml"),
        format!("extends = [{:?}]\n", base.display().to_string()),
    )
    .unwrap();
    std::fs::write(
        grids.join("small.toml"),
        "title = \"Mine\"\ndescription = \"two methods\"\norder = [\"method\"]\n\
         config = \"exp/mine.toml\"\nrows = [\"method\"]\ncolumn = \"method\"\n\
         [axes.method]\nfinetune = [\"adapt.method=finetune\"]\ndaa = [\"adapt.method=daa\"]\n\
         [profiles]\nsmoke = { seeds = 2 }\n",
    )
    .unwrap();
    let grid = grids.join("small.toml");
    let out = daa(
        dir.path(),
        &[
            "reproduce",
            grid.to_str().unwrap(),
            "--profile",
            "smoke",
            "--dry-run",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("small (smoke): 4 cells, 0 finished, 4 to run"),
        "{text}"
    );
    let missing = daa(
        dir.path(),
        &["reproduce", "nowhere/x.toml", "--dry-run"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no such grid file"),
        "{}",
        stderr(&missing)
    );
}

/// Every result.json under `dir/runs`: (method, seed) -> (config hash, test metrics).
fn results(dir: &std::path::Path) -> std::collections::BTreeMap<(String, u64), serde_json::Value> {
    walk(&dir.join("runs"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "result.json"))
        .map(|p| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (
                (r["method"].as_str().unwrap().to_string(), r["seed"].as_u64().unwrap()),
                serde_json::json!({"hash": r["config_hash"], "test": r["test"], "best": r["best_epoch"]}),
            )
        })
        .collect()
}

#[test]
fn parallel_jobs_give_the_bits_of_one_process_and_a_failed_cell_stops_no_other() {
    let methods = [
        ("finetune", "\"adapt.method=finetune\""),
        ("single_domain", "\"adapt.method=single_domain\""),
        ("l2sp", "\"adapt.method=l2sp\""),
    ];
    let one = tempfile::tempdir().unwrap();
    grid_file(one.path(), &methods, &[], "", "");
    let out = reproduce_grid(one.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // In parallel, with a cell that diverges listed first.
    let two = tempfile::tempdir().unwrap();
    // Two more cells share a source pretraining that diverges: the first is listed with
    // the pretraining's failure, the second as not run because of it.
    let mut with_bad = vec![
        ("bad", "\"adapt.method=finetune\", \"optim.lr=1e30\""),
        (
            "src_bad_a",
            "\"adapt.method=finetune\", \"pretrain.lr=1e30\"",
        ),
        ("src_bad_b", "\"adapt.method=l2sp\", \"pretrain.lr=1e30\""),
    ];
    with_bad.extend(methods);
    grid_file(two.path(), &with_bad, &[], "", "");
    let out = reproduce_grid(two.path(), &["--jobs", "2"]);
    assert_eq!(out.status.code(), Some(2), "diverging is the input's fault");
    let err = stderr(&out);
    assert!(
        err.contains("6 cell(s) failed")
            && err.contains("bad/seed1 (Cell")
            && err.contains("logs/bad_seed1.log")
            && err.contains("src_bad_a/seed2 (Pretrain")
            && err.contains(
                "src_bad_b/seed2 (Pretrain, not run: its source model failed with \
                 src_bad_a/seed2): see"
            ),
        "{err}"
    );
    let log =
        std::fs::read_to_string(two.path().join("out/logs/src_bad_a_seed1.pretrain.log")).unwrap();
    assert!(log.contains("pretraining diverged"), "{log}");
    let log = std::fs::read_to_string(two.path().join("out/logs/bad_seed1.log")).unwrap();
    assert!(log.contains("diverged"), "{log}");
    // The diverging cells left no result; the others' are those of one process.
    let (a, b) = (results(one.path()), results(two.path()));
    assert_eq!(a.len(), 6);
    assert_eq!(a, b);
    // The report was written for the cells that finished.
    let table = std::fs::read_to_string(two.path().join("out/table.md")).unwrap();
    assert!(table.contains("l2sp"), "{table}");
}

#[test]
fn two_reproductions_of_one_grid_at_once_run_each_cell_once_with_the_bits_of_one() {
    let methods = [
        ("finetune", "\"adapt.method=finetune\""),
        ("l2sp", "\"adapt.method=l2sp\""),
    ];
    let one = tempfile::tempdir().unwrap();
    grid_file(one.path(), &methods, &[], "", "");
    let out = reproduce_grid(one.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let both = tempfile::tempdir().unwrap();
    grid_file(both.path(), &methods, &[], "", "");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| reproduce_grid(both.path(), &["--jobs", "2"]));
        let b = s.spawn(|| reproduce_grid(both.path(), &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(results(one.path()), results(both.path()));
    // Each run trained once: one metrics line per epoch and one for the start model.
    for result in walk(&both.path().join("runs"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "result.json"))
    {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
        let epochs = r["epochs_run"].as_u64().unwrap() as usize;
        let metrics = std::fs::read_to_string(result.with_file_name("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), epochs + 1, "{}", result.display());
    }
    let sources = std::fs::read_dir(both.path().join("runs/_source"))
        .unwrap()
        .count();
    assert_eq!(sources, 2, "one source pretraining per seed");
}

/// The config hashes `--dry-run` lists for the grid in `dir` with `extra` arguments.
fn listed_hashes(dir: &std::path::Path, extra: &[&str]) -> std::collections::BTreeSet<String> {
    let mut args = vec!["--dry-run"];
    args.extend(extra);
    let out = reproduce_grid(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect()
}

#[test]
fn set_overrides_every_cell_and_reaches_the_children_and_slurm_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    grid_file(
        dir.path(),
        &[("finetune", "\"adapt.method=finetune\"")],
        &[],
        "",
        "",
    );
    let plain = listed_hashes(dir.path(), &[]);
    let set = ["--set", "optim.lr=0.002"];
    let changed = listed_hashes(dir.path(), &set);
    assert_eq!(changed.len(), 2);
    assert!(plain.is_disjoint(&changed), "{plain:?} {changed:?}");
    // An sbatch option is not part of any experiment.
    let with_slurm = listed_hashes(dir.path(), &["--set", "slurm.partition=gpu"]);
    assert_eq!(with_slurm, plain);
    // The children of --jobs run the overridden experiments.
    let out = reproduce_grid(dir.path(), &["--jobs", "2", "--set", "optim.lr=0.002"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ran: std::collections::BTreeSet<String> = results(dir.path())
        .values()
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, changed);
    let typo = reproduce_grid(dir.path(), &["--dry-run", "--set", "slurm.partitoin=gpu"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains("--set slurm.partitoin=gpu: unknown field `partitoin`"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn a_methods_table_compares_every_method_with_one_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    grid_file(
        dir.path(),
        &[
            ("finetune", "\"adapt.method=finetune\""),
            ("partial", "\"adapt.method=partial\""),
            ("l2sp", "\"adapt.method=l2sp\""),
        ],
        &[],
        "against = \"finetune\"",
        "",
    );
    let out = reproduce_grid(dir.path(), &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    // The paired differences, recomputed from the runs' own results.
    let aucs: std::collections::BTreeMap<(String, u64), f64> = results(dir.path())
        .into_iter()
        .map(|(key, r)| (key, r["test"]["tasks"][0]["auc"].as_f64().unwrap()))
        .collect();
    let table = std::fs::read_to_string(dir.path().join("out/table.md")).unwrap();
    for method in ["partial", "l2sp"] {
        let seeds: Vec<u64> = aucs
            .keys()
            .filter(|(m, _)| m == "finetune")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seeds.len(), 2);
        let delta: f64 = seeds
            .iter()
            .map(|&s| aucs[&(method.to_string(), s)] - aucs[&("finetune".to_string(), s)])
            .sum::<f64>()
            / 2.0;
        let row = format!("| {method} − finetune | 2 | {delta:+.4}");
        assert!(table.contains(&row), "no `{row}` in\n{table}");
        assert!(
            table.contains(&format!("- {method} vs finetune: ")),
            "{table}"
        );
    }
    assert!(!table.contains("finetune − finetune"), "{table}");
    // Every comparison carries its p, Holm's adjusted p over the grid (the default family:
    // never below p, at most 1, in the order of the p-values) and what the seeds resolve.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let comparisons = json["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 4, "2 methods x 2 tasks");
    let mut tested: Vec<(f64, f64)> = Vec::new();
    for c in comparisons {
        assert_eq!(c["family"], "grid");
        match (c["p_value"].as_f64(), c["p_adjusted"].as_f64()) {
            (Some(p), Some(adjusted)) => {
                assert!(p <= adjusted && adjusted <= 1.0, "{c}");
                let [low, high] = [
                    c["ci95"][0].as_f64().unwrap(),
                    c["ci95"][1].as_f64().unwrap(),
                ];
                assert!((c["detectable"].as_f64().unwrap() - (high - low) / 2.0).abs() < 1e-12);
                tested.push((p, adjusted));
            }
            (None, None) => assert!(c["detectable"].is_null(), "{c}"),
            _ => panic!("an adjusted p without a p, or the reverse: {c}"),
        }
    }
    tested.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(tested.windows(2).all(|w| w[0].1 <= w[1].1), "{tested:?}");
    if let Some((p, adjusted)) = tested.first() {
        assert!((adjusted - (p * tested.len() as f64).min(1.0)).abs() < 1e-12);
    }
    assert!(
        table.contains("| Holm p | family | detectable |"),
        "{table}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The processes whose parent is `parent` and that have not ended (zombies count as ended).
fn living_children(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (name) state ppid ...": the name may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && state != "Z" && state != "X" {
            children.push(pid);
        }
    }
    children
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

#[test]
#[cfg(target_os = "linux")]
fn the_children_of_a_parallel_reproduction_die_with_it() {
    // Before: they ran on until their cells finished (here, hours of pretraining).
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let dir = tempfile::tempdir().unwrap();
        grid_file(
            dir.path(),
            &[
                ("finetune", "\"adapt.method=finetune\""),
                ("l2sp", "\"adapt.method=l2sp\", \"pretrain.lr=0.0011\""),
            ],
            &["pretrain.epochs=1000000", "pretrain.patience=1000000"],
            "",
            "",
        );
        let mut parent = common::reproduce_grid_command(dir.path(), &["--jobs", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let children = loop {
            let children = living_children(parent.id());
            if children.len() == 2 {
                break children;
            }
            assert!(
                started.elapsed().as_secs() < 120,
                "the two pretraining children never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        // SAFETY: a plain kill(2) of the process this test spawned.
        assert_eq!(unsafe { libc::kill(parent.id() as i32, signal) }, 0);
        parent.wait().unwrap();
        let killed = std::time::Instant::now();
        while children.iter().any(|&c| alive(c)) {
            assert!(
                killed.elapsed().as_secs() < 30,
                "signal {signal}: children {children:?} outlived their parent"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn a_table_marks_cells_whose_selected_models_collapsed() {
    // Before: a collapsed model's AUC 0.5 entered the table like any other.
    let dir = tempfile::tempdir().unwrap();
    grid_file(
        dir.path(),
        &[
            ("collapsed", "\"adapt.method=finetune\", \"optim.lr=10\""),
            ("finetune", "\"adapt.method=finetune\""),
        ],
        &[],
        "",
        "",
    );
    let out = reproduce_grid(dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = std::fs::read_to_string(dir.path().join("out/table.md")).unwrap();
    // The row's cells: collapsed click, collapsed conversion, finetune click, conversion.
    let row = table
        .lines()
        .find(|l| l.starts_with("|  | 0."))
        .expect("the table's row");
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(
        cells[1..3].iter().any(|c| c.contains("/2 constant]**")),
        "{row}"
    );
    assert!(!cells[3..5].iter().any(|c| c.contains("constant")), "{row}");
    let csv = std::fs::read_to_string(dir.path().join("out/table.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",constant_seeds"));
    let seeds = |column: &str| -> usize {
        csv.lines()
            .filter(|l| l.split(',').nth(1) == Some(column))
            .map(|l| l.rsplit(',').next().unwrap().parse::<usize>().unwrap())
            .sum()
    };
    assert!(seeds("collapsed") > 0 && seeds("finetune") == 0, "{csv}");
    // Validation against test over the row's four runs, and its rule.
    assert!(
        table.contains("## Does validation predict the test?"),
        "{table}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let agreement = &results["selection_agreement"][0];
    assert_eq!(agreement["runs"], 4, "{agreement}");
    assert_eq!(agreement["validation"], serde_json::json!(["random"]));
}
