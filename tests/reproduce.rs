//! `daa reproduce table3 --profile smoke` end to end: every cell filled; an interrupted
//! reproduction continues where it stopped and a finished one runs nothing again.

mod common;

use common::{daa, repo, stderr, stdout};

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

#[test]
fn a_methods_table_compares_every_method_with_one_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let base = repo().join("configs/mmoe_nl.toml");
    std::fs::write(
        dir.path().join("exp.toml"),
        format!("extends = [{:?}]\n", base.display().to_string()),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("methods.toml"),
        format!(
            "title = \"Methods\"\ndescription = \"three methods\"\norder = [\"method\"]\n\
             config = \"exp.toml\"\nrows = []\ncolumn = \"method\"\nagainst = \"finetune\"\n\
             sets = [\"output.runs_dir='runs'\", \"data.source.dir='{0}'\", \"data.target.dir='{0}'\"]\n\
             [axes.method]\nfinetune = [\"adapt.method=finetune\"]\n\
             partial = [\"adapt.method=partial\"]\nl2sp = [\"adapt.method=l2sp\"]\n\
             [profiles]\nsmoke = {{ seeds = 2 }}\n",
            data.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = daa(
        dir.path(),
        &[
            "-q",
            "reproduce",
            dir.path().join("methods.toml").to_str().unwrap(),
            "--profile",
            "smoke",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    // The paired differences, recomputed from the runs' own results.
    let mut aucs: std::collections::BTreeMap<(String, u64), f64> = Default::default();
    for entry in walk(&dir.path().join("runs")) {
        if entry.file_name().is_some_and(|n| n == "result.json") {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
            aucs.insert(
                (
                    r["method"].as_str().unwrap().into(),
                    r["seed"].as_u64().unwrap(),
                ),
                r["test"]["tasks"][0]["auc"].as_f64().unwrap(),
            );
        }
    }
    let table = std::fs::read_to_string(out_dir.join("table.md")).unwrap();
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
