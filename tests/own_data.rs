//! The guide's "Your own data" example (docs/src/data.md), run as written from a fresh project directory:
//! its registry files, experiment and grid come from its code blocks, its CSVs
//! are fabricated here, and every `daa` command of its shell block must succeed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{copy_tree, repo, stderr, stdout};

/// The section's code blocks: files (a TOML block whose first line is `# PATH`)
/// and the `daa` commands of its shell block.
fn example() -> (Vec<(String, String)>, Vec<String>) {
    let readme = std::fs::read_to_string(repo().join("docs/src/data.md")).unwrap();
    let start = readme
        .find("## Your own data")
        .expect("docs/src/data.md has a `Your own data` section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut files = Vec::new();
    let mut commands = Vec::new();
    let mut blocks = section.split("```").skip(1).step_by(2);
    for block in blocks.by_ref() {
        let (lang, body) = block.split_once('\n').unwrap();
        match lang {
            "toml" => {
                let path = body
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# "))
                    .expect("a file block starts with `# PATH`");
                files.push((path.to_string(), body.to_string()));
            }
            "sh" => commands.extend(
                body.lines()
                    .filter_map(|l| l.strip_prefix("daa "))
                    .map(String::from),
            ),
            other => panic!("unexpected block `{other}`"),
        }
    }
    (files, commands)
}

/// A small seeded generator (SplitMix64): the rows need signal, not a distribution.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Shop events: clicks depend on the user, the item, the hour and the price; purchases on
/// the item among clicks. The app domain favours other items and hours than the web.
fn write_domain(path: &Path, domain: u64, rows: usize, labels: bool, seed: u64) {
    let mut effects = Draws(7);
    let user: Vec<f64> = (0..2000).map(|_| effects.uniform() * 2.0 - 1.0).collect();
    let item: Vec<f64> = (0..300).map(|_| effects.uniform() * 2.0 - 1.0).collect();
    let buy: Vec<f64> = (0..300).map(|_| effects.uniform() * 2.0 - 1.5).collect();
    let mut draws = Draws(seed);
    let mut text = String::from("event_id,user,item,hour");
    text.push_str(if labels {
        ",price,click,purchase\n"
    } else {
        ",price\n"
    });
    for row in 0..rows {
        let u = draws.below(2000) as usize;
        let i = ((draws.below(300) * (1 + domain)) % 300) as usize;
        let hour = (draws.below(12) + 12 * domain) % 24;
        let price = draws.uniform() * 2.0;
        let logit =
            -0.5 + 1.5 * user[u] + 1.5 * item[i] + 0.4 * (hour as f64 / 4.0).sin() - 0.3 * price;
        let click = u8::from(draws.uniform() < 1.0 / (1.0 + (-logit).exp()));
        let purchase = click & u8::from(draws.uniform() < 1.0 / (1.0 + (-buy[i]).exp()));
        text.push_str(&format!("d{domain}r{row},{u},{i},{hour},{price:.3}"));
        text.push_str(&if labels {
            format!(",{click},{purchase}\n")
        } else {
            "\n".into()
        });
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `daa ARGS` in `dir` as a user types it: no `--registry` (the project's own is found).
fn daa_here(dir: &Path, line: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daa"));
    command.current_dir(dir).args(line.split_whitespace());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("DAA_")) {
        command.env_remove(key);
    }
    command.output().unwrap()
}

#[test]
fn the_readme_own_data_example_runs_from_a_fresh_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&repo().join("registry"), &root.join("registry"));
    copy_tree(&repo().join("configs"), &root.join("configs"));
    let (files, commands) = example();
    assert_eq!(files.len(), 5, "schema, two data sets, experiment, grid");
    assert_eq!(commands.len(), 5);
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let data = root.join("data/shop");
    write_domain(&data.join("web/train.csv"), 0, 20_000, true, 1);
    write_domain(&data.join("web/test.csv"), 0, 4_000, true, 2);
    write_domain(&data.join("app/train.csv"), 1, 14_000, true, 3);
    write_domain(&data.join("app/test.csv"), 1, 4_000, true, 4);
    write_domain(&data.join("app/new.csv"), 1, 300, false, 5);

    let mut outputs = Vec::new();
    for line in &commands {
        let out = daa_here(root, line);
        assert!(
            out.status.success(),
            "daa {line}\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        outputs.push(stdout(&out));
    }

    // The run: a result, its curves, and a grid cell that reused it.
    let runs: Vec<_> = std::fs::read_dir(root.join("runs/mmoe"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("result.json").is_file())
        .collect();
    assert_eq!(runs.len(), 2, "daa and finetune: {runs:?}");
    for run in &runs {
        let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("validation"),
            "{svg:.200}"
        );
    }
    // `daa plot` redraws a run's curves; a folder that holds no run is refused.
    std::fs::remove_file(runs[0].join("curves.svg")).unwrap();
    let out = daa_here(root, &format!("plot {}", runs[0].display()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(runs[0].join("curves.svg").is_file());
    let out = daa_here(root, "plot data");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a run directory"),
        "{}",
        stderr(&out)
    );
    assert!(outputs[2].contains("1 already finished"), "{}", outputs[2]);
    for name in ["table.md", "table.csv", "results.json", "plot.svg"] {
        assert!(
            root.join("reproduce/out/shop").join(name).is_file(),
            "{name}"
        );
    }

    // Predictions on rows without labels: the ids, one probability per task, in order.
    let predictions = std::fs::read_to_string(root.join("predictions.csv")).unwrap();
    let mut lines = predictions.lines();
    assert_eq!(
        lines.next(),
        Some("event_id,click_prob,purchase_prob"),
        "{predictions:.300}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[0], format!("d1r{i}"));
        let p: Vec<f64> = fields[1..].iter().map(|f| f.parse().unwrap()).collect();
        assert!(
            p.len() == 2 && p.iter().all(|p| (0.0..=1.0).contains(p)),
            "{row}"
        );
    }
    assert!(
        !outputs[3].contains("AUC"),
        "no labels, no AUC: {}",
        outputs[3]
    );
    assert!(outputs[4].contains("mmoe"), "{}", outputs[4]);

    // With labels, predict's AUCs are the run's test AUCs (same checkpoint, same rows).
    let out = daa_here(
        root,
        "predict configs/shop/mmoe.toml --profile cpu --data data/shop/app/test.csv --out p.csv",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = runs
        .iter()
        .map(|run| {
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(run.join("result.json")).unwrap(),
            )
            .unwrap()
        })
        .find(|result| result["method"] == "daa")
        .unwrap();
    let click_auc = result["test"]["tasks"][0]["auc"].as_f64().unwrap();
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!("click: AUC {click_auc:.6}")),
        "{printed} vs {click_auc}"
    );

    // The target re-prepared in place with other rows of the same schema gets new runs:
    // neither the grid's cells nor `daa run` may serve results of the old rows.
    write_domain(&data.join("app/train.csv"), 1, 14_000, true, 13);
    write_domain(&data.join("app/test.csv"), 1, 4_000, true, 14);
    let out = daa_here(root, &commands[2]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 run now, 0 already finished"),
        "{}",
        stdout(&out)
    );
    let out = daa_here(root, &commands[1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("finished earlier"),
        "the grid's cell, on the new rows: {}",
        stdout(&out)
    );
    let fresh: Vec<_> = std::fs::read_dir(root.join("runs/mmoe"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("result.json").is_file() && !runs.contains(p))
        .collect();
    assert_eq!(fresh.len(), 2, "new runs beside the old ones: {fresh:?}");
    let hash = |run: &std::path::PathBuf| run.file_name().unwrap().to_string_lossy().into_owned();
    let printed = stdout(&out);
    assert!(
        fresh.iter().any(|r| printed.contains(&hash(r)))
            && !runs.iter().any(|r| printed.contains(&hash(r))),
        "{printed}"
    );
}
