//! Hyperparameter search in grids (`[search]`): trial cells, selection on validation, the
//! evaluation cells on their own seeds, diverged trials, and the bits under `--jobs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{grid_file, reproduce_grid, reproduce_grid_command, stderr, stdout};

/// Finetune searches its learning rate among a sane value and one that diverges, and its
/// weight decay; L2-SP its alpha; source_only runs no trials. 3 trials on search seed 101,
/// then the smoke profile's evaluation seeds 1 and 2.
const SEARCH: &str = "[search]\ntrials = 3\nseeds = [101]\nseed = 4\n\
    [search.space.finetune]\n\"optim.lr\" = { choice = [0.001, 1e30] }\n\
    \"optim.weight_decay\" = { log_uniform = [1e-6, 1e-2] }\n\
    [search.space.l2sp]\n\"adapt.method.alpha\" = { log_uniform = [0.01, 1.0] }\n";

const METHODS: [(&str, &str); 3] = [
    ("finetune", "\"adapt.method=finetune\""),
    ("l2sp", "\"adapt.method=l2sp\""),
    ("source_only", "\"adapt.method=source_only\""),
];

/// The cells in the order one process ran them, from its "running" log lines.
fn run_order(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(" running"))
        .filter_map(|line| line.split("cell=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn results_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/results.json")).unwrap()).unwrap()
}

#[test]
fn trials_select_on_validation_evaluate_on_other_seeds_and_give_the_bits_of_one_process_in_parallel()
 {
    let one = tempfile::tempdir().unwrap();
    grid_file(one.path(), &METHODS, &[], "", SEARCH);
    // Before any trial: the trial cells, and the evaluation cells of searched methods wait.
    let dry = reproduce_grid(one.path(), &["--dry-run"]);
    let listing = stdout(&dry);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        listing.contains("8 cells, 0 finished, 8 to run"),
        "{listing}"
    );
    assert!(
        listing.contains("4 evaluation cell(s) wait on their search's trials"),
        "{listing}"
    );
    assert!(listing.contains("finetune/trial2/seed101"), "{listing}");
    assert!(listing.contains("\n       l2sp/seed2"), "{listing}");
    // The draws include the diverging learning rate (else pick another `seed`).
    assert!(listing.contains("optim.lr=1e30"), "{listing}");
    assert!(listing.contains("optim.lr=0.001"), "{listing}");

    let out = reproduce_grid_command(one.path(), &[])
        .env("DAA_LOG", "daa::reproduce=info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Each search's evaluation cells run as soon as its last trial has finished, before
    // the other methods' trials: not all at the end of the grid.
    let order = run_order(&stderr(&out));
    assert_eq!(order.len(), 12, "{order:?}");
    let at = |cell: &str| order.iter().position(|c| c == cell).expect(cell);
    for method in ["finetune", "l2sp"] {
        let last_trial = (1..=3)
            .map(|k| at(&format!("{method}/trial{k}/seed101")))
            .max()
            .unwrap();
        assert_eq!(at(&format!("{method}/seed1")), last_trial + 1, "{order:?}");
        assert_eq!(at(&format!("{method}/seed2")), last_trial + 2, "{order:?}");
    }
    assert!(
        at("finetune/seed2") < at("l2sp/trial1/seed101"),
        "{order:?}"
    );
    let json = results_json(one.path());
    // The cost per method: every finished cell's seconds, trials included.
    let runs = json["runs"].as_array().unwrap();
    let costs = json["cost"].as_array().unwrap();
    assert_eq!(costs.len(), 3, "{costs:?}");
    for cost in costs {
        let column = cost["column"].as_str().unwrap();
        let mine: Vec<&serde_json::Value> = runs
            .iter()
            .filter(|r| {
                r["cell"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{column}/"))
            })
            .collect();
        assert_eq!(
            cost["cells"].as_u64().unwrap() as usize,
            mine.len(),
            "{column}"
        );
        let total: f64 = mine
            .iter()
            .map(|r| r["record"]["wall_seconds"].as_f64().unwrap())
            .sum();
        assert!((cost["total_seconds"].as_f64().unwrap() - total).abs() < 1e-9);
    }
    let table = std::fs::read_to_string(one.path().join("out/table.md")).unwrap();
    assert!(table.contains("## Cost"), "{table}");
    let searches = json["search"]["searches"].as_array().unwrap();
    assert_eq!(json["search"]["seeds"], serde_json::json!([101]));
    assert_eq!(searches.len(), 2, "source_only has no search");
    // Each trial's validation score, read from its run's record.
    let mut valid: BTreeMap<(String, u64), Option<f64>> = BTreeMap::new();
    let mut evaluation_seeds = BTreeSet::new();
    for run in json["runs"].as_array().unwrap() {
        let cell = run["cell"].as_str().unwrap();
        let record = &run["record"];
        let parts: Vec<&str> = cell.split('/').collect();
        match parts.as_slice() {
            [method, trial, seed] => {
                assert_eq!(*seed, "seed101", "{cell}");
                let k = trial.strip_prefix("trial").unwrap().parse().unwrap();
                valid.insert(
                    (method.to_string(), k),
                    record["best_valid_mean_auc"].as_f64(),
                );
            }
            [_, seed] => {
                evaluation_seeds.insert(seed.to_string());
            }
            _ => panic!("{cell}"),
        }
    }
    assert_eq!(
        evaluation_seeds,
        BTreeSet::from(["seed1".to_string(), "seed2".to_string()]),
        "evaluation seeds are never search seeds"
    );
    for search in searches {
        let method = search["method"].as_str().unwrap();
        assert_eq!(search["trials"], 3);
        assert_eq!(search["trials_run"], 3);
        // The selected trial: the best validation score (one search seed) among the trials
        // that finished; a diverged trial has no record.
        let best = (1..=3u64)
            .filter_map(|k| {
                valid
                    .get(&(method.to_string(), k))
                    .copied()
                    .flatten()
                    .map(|v| (k, v))
            })
            .fold(None::<(u64, f64)>, |b, (k, v)| match b {
                Some((_, bv)) if bv >= v => b,
                _ => Some((k, v)),
            })
            .unwrap();
        assert_eq!(search["selected"]["trial"], best.0, "{search:#}");
        for trial in search["runs"].as_array().unwrap() {
            let k = trial["trial"].as_u64().unwrap();
            let lr = trial["values"]["optim.lr"].as_f64();
            if lr == Some(1e30) {
                assert_eq!(trial["diverged"].as_array().unwrap().len(), 1, "{trial:#}");
                assert!(trial["mean_valid"].is_null());
                assert!(!valid.contains_key(&(method.to_string(), k)));
            } else {
                assert_eq!(
                    trial["mean_valid"].as_f64(),
                    valid[&(method.to_string(), k)]
                );
            }
        }
        assert_ne!(search["selected"]["values"]["optim.lr"], 1e30);
    }
    let table = std::fs::read_to_string(one.path().join("out/table.md")).unwrap();
    assert!(
        table.contains("## Search") && table.contains("### Oracle"),
        "{table}"
    );
    assert!(table.contains(" diverged runs)"), "{table}");
    // Finished: every cell done, a diverged trial included; none waits.
    let dry = stdout(&reproduce_grid(one.path(), &["--dry-run"]));
    assert!(dry.contains("12 cells, 12 finished, 0 to run"), "{dry}");
    assert!(dry.contains("done: diverged"), "{dry}");
    assert!(
        dry.contains("finetune/seed1") && dry.contains("[selected trial"),
        "{dry}"
    );

    // The same grid with two children at a time: the same search, the same numbers.
    let two = tempfile::tempdir().unwrap();
    grid_file(two.path(), &METHODS, &[], "", SEARCH);
    let out = reproduce_grid(two.path(), &["--jobs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let parallel = results_json(two.path());
    assert_eq!(parallel["search"], json["search"]);
    assert_eq!(parallel["aggregates"], json["aggregates"]);
    assert_eq!(parallel["comparisons"], json["comparisons"]);
}

#[test]
fn every_row_gets_the_same_trials_and_search_seeds_must_differ_from_evaluation_seeds() {
    let dir = tempfile::tempdir().unwrap();
    grid_file(dir.path(), &METHODS, &[], "", SEARCH);
    // A second row axis: two targets.
    let grid = dir.path().join("grid.toml");
    let text = std::fs::read_to_string(&grid)
        .unwrap()
        .replace("order = [\"method\"]", "order = [\"target\", \"method\"]");
    let text = text.replace("rows = []", "rows = [\"target\"]").replace(
        "[axes.method]",
        "[axes.target]\nnl = [\"data.target=synthetic_nl\"]\nes = [\"data.target=synthetic_es\"]\n[axes.method]",
    );
    std::fs::write(&grid, &text).unwrap();
    let listing = stdout(&reproduce_grid(dir.path(), &["--dry-run"]));
    let values = |row: &str, trial: usize| -> String {
        let name = format!(" {row}/finetune/trial{trial}/seed101 ");
        let line = listing
            .lines()
            .find(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("{listing}"));
        line.split("  [").nth(1).unwrap().to_string()
    };
    for trial in 1..=3 {
        assert_eq!(values("nl", trial), values("es", trial));
    }
    assert_ne!(values("nl", 1), values("nl", 2));
    // The trials reproduce: a second listing is the same.
    assert_eq!(listing, stdout(&reproduce_grid(dir.path(), &["--dry-run"])));

    // The grid with `from` replaced by `to` is refused (exit 2), saying `says`.
    let refused = |from: &str, to: &str, says: &str| {
        std::fs::write(&grid, text.replace(from, to)).unwrap();
        let out = reproduce_grid(dir.path(), &["--dry-run"]);
        assert_eq!(out.status.code(), Some(2), "{from} -> {to}");
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    };
    // A search seed among the evaluation seeds (1, 2), naming the clash.
    refused(
        "seeds = [101]",
        "seeds = [2]",
        "search seed 2 is also an evaluation seed (1 to 2)",
    );
    // A space for a method the grid lacks, and a space that cannot be drawn from.
    refused(
        "[search.space.l2sp]",
        "[search.space.l2sp_typo]",
        "[search.space.l2sp_typo]: `l2sp_typo` is not a value of the column axis `method`",
    );
    refused(
        "[0.01, 1.0]",
        "[1.0, 0.01]",
        "[search.space.l2sp] adapt.method.alpha: log_uniform needs",
    );
    // A key the experiment does not have, named by the grid file and trial that set it,
    // not by a `--set` the user never typed.
    refused(
        "\"adapt.method.alpha\"",
        "\"adapt.method.alhpa\"",
        "grid.toml, [search] trial 1 (adapt.method.alhpa=",
    );
    let out = reproduce_grid(dir.path(), &["--dry-run"]);
    assert!(!stderr(&out).contains("--set"), "{}", stderr(&out));
    // A TOML syntax error is placed by line and column, quoting nothing of the file (a
    // line may hold a secret).
    refused(
        "[search]\n",
        "[search]\npassword = hunter2 x\n",
        "grid.toml: line",
    );
    let out = reproduce_grid(dir.path(), &["--dry-run"]);
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}
