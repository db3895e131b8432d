//! Data: the real sample rows, every bad-input case, the binary cache, splits, the
//! synthetic generator (determinism, rates, and that transfer from the source helps).

mod common;

use std::path::{Path, PathBuf};

use common::{daa, project, repo, stderr};
use daa::config::schema::Validation;
use daa::data::cache::load_csv;
use daa::data::schema::Oov;
use daa::data::split;
use daa::data::synthetic::{Profile, Role, SyntheticConfig};
use daa::data::{DataError, Schema, Table, synthetic};
use daa::metrics::auc;

fn aliexpress() -> Schema {
    let registry = daa::catalog::registry(repo().join("registry"));
    serde_json::from_value(
        registry.entry("schemas", "aliexpress").unwrap().params["schema"].clone(),
    )
    .unwrap()
}

fn sample(name: &str) -> PathBuf {
    repo().join("tests/fixtures/aliexpress-sample").join(name)
}

fn label_sum(table: &Table, task: usize) -> u32 {
    table.label_column(task).iter().map(|&l| u32::from(l)).sum()
}

#[test]
fn shared_sample_rows_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["train.csv", "test.csv"] {
        std::fs::copy(sample(name), dir.path().join(name)).unwrap();
    }
    let train = load_csv(&dir.path().join("train.csv"), &aliexpress())
        .unwrap()
        .table;
    assert_eq!(train.rows(), 100);
    assert_eq!((label_sum(&train, 0), label_sum(&train, 1)), (60, 2));
    let h = &train.header;
    assert_eq!(
        (h.fields, h.numerical, h.labels, h.category_width),
        (16, 63, 2, 1)
    );
    // First data row: 81,9,0,0,0,9,4,25,0,0,0,0,0,0,0,1,0,0.0 x 23,0.116248,0.335578...
    let c = train.categorical();
    let first: Vec<u32> = (0..16).map(|f| c.get(f)).collect();
    assert_eq!(first, [9, 0, 0, 0, 9, 4, 25, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    let x = &train.numerical()[..63];
    assert_eq!(x[..23], [0.0; 23]);
    assert_eq!(x[23], 0.116248);
    assert_eq!(x[24], "0.33557800000000004".parse::<f32>().unwrap());
    assert_eq!(&train.labels()[..2], &[1, 0]);
    let test = load_csv(&dir.path().join("test.csv"), &aliexpress())
        .unwrap()
        .table;
    assert_eq!(test.rows(), 20);
}

#[test]
fn second_load_uses_the_cache_and_a_modified_source_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    std::fs::copy(sample("train.csv"), &csv).unwrap();
    assert!(load_csv(&csv, &aliexpress()).unwrap().built);
    let again = load_csv(&csv, &aliexpress()).unwrap();
    assert!(!again.built, "the second load memory-maps the cache");
    assert_eq!(again.table.rows(), 100);

    let text = std::fs::read_to_string(&csv).unwrap();
    let shorter: String = text.lines().take(51).map(|l| format!("{l}\n")).collect();
    std::fs::write(&csv, shorter).unwrap();
    let rebuilt = load_csv(&csv, &aliexpress()).unwrap();
    assert!(rebuilt.built);
    assert_eq!(rebuilt.table.rows(), 50);

    let mut clamped = aliexpress();
    clamped.oov = Oov::Clamp;
    assert!(
        load_csv(&csv, &clamped).unwrap().built,
        "another schema rebuilds the cache"
    );
}

#[test]
fn an_edit_inside_a_large_csv_with_size_and_mtime_kept_rebuilds_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    let text = std::fs::read_to_string(sample("train.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    // Over 2 MiB, so that the edit is neither in the first nor in the last MiB.
    let mut big = format!("{header}\n");
    while big.len() < 3 << 20 {
        for row in &rows {
            big.push_str(row);
            big.push('\n');
        }
    }
    std::fs::write(&csv, &big).unwrap();
    let built = load_csv(&csv, &aliexpress()).unwrap();
    assert!(built.built);
    let first = built.table.numerical()[0];
    let modified = std::fs::metadata(&csv).unwrap().modified().unwrap();
    // Rewrite one numerical value in the middle with another of the same length.
    let middle = big.len() / 2;
    let at = middle + big[middle..].find(",0.").unwrap() + 3;
    let mut bytes = big.into_bytes();
    bytes[at] = if bytes[at] == b'5' { b'6' } else { b'5' };
    std::fs::write(&csv, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&csv)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let again = load_csv(&csv, &aliexpress()).unwrap();
    assert!(again.built, "the content changed: the cache is rebuilt");
    assert_eq!(again.table.numerical()[0], first);
}

/// The sample's header and first data row, with `edit` applied to the row's columns.
fn with_row_edit(edit: impl Fn(&mut Vec<String>)) -> String {
    let text = std::fs::read_to_string(sample("train.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let good = lines.next().unwrap();
    let mut row: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    edit(&mut row);
    format!("{header}\n{good}\n{}\n", row.join(","))
}

/// Loads `text` as a CSV through the CLI; checks exit 2, the message, and no table left.
fn rejected(text: Option<&str>, expected: &[&str]) {
    let registry_schema =
        std::fs::read_to_string(repo().join("registry/schemas/aliexpress.toml")).unwrap();
    let entry = "extends = [\"../schemas/aliexpress.toml\"]\nkind = \"csv\"\ndescription = \"bad\"\ntrain = \"../../bad.csv\"\ntest = \"../../bad.csv\"\n";
    let dir = project(&[
        ("registry/schemas/aliexpress.toml", &registry_schema),
        ("registry/datasets/bad.toml", entry),
    ]);
    if let Some(text) = text {
        std::fs::write(dir.path().join("bad.csv"), text).unwrap();
    }
    let registry = dir.path().join("registry");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daa"))
        .current_dir(dir.path())
        .args([
            "--registry",
            registry.to_str().unwrap(),
            "data",
            "split",
            "--dataset",
            "bad",
            "--rate",
            "0.5",
            "--seed",
            "1",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for piece in expected {
        assert!(err.contains(piece), "expected `{piece}` in: {err}");
    }
    let cache = dir.path().join(".daa-cache");
    // The cache directory's lock file is no output; anything else would be.
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| !p.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "no partial output: {leftovers:?}");
}

#[test]
fn wrong_column_count_names_the_line() {
    rejected(
        Some(&with_row_edit(|r| {
            r.pop();
        })),
        &["bad.csv:3:", "expected 82 columns, found 81"],
    );
    rejected(
        Some(&with_row_edit(|r| r.push("1".into()))),
        &["bad.csv:3:", "found 83"],
    );
}

#[test]
fn non_numeric_nan_and_infinite_values_name_the_column() {
    rejected(
        Some(&with_row_edit(|r| r[20] = "abc".into())),
        &["bad.csv:3:", "`numerical_4`", "`abc` is not a number"],
    );
    rejected(
        Some(&with_row_edit(|r| r[20] = "NaN".into())),
        &["bad.csv:3:", "`numerical_4`", "NaN or infinite"],
    );
    rejected(
        Some(&with_row_edit(|r| r[30] = "inf".into())),
        &["`numerical_14`", "NaN or infinite"],
    );
    rejected(
        Some(&with_row_edit(|r| r[2] = "x".into())),
        &["`categorical_2`", "not a category index"],
    );
}

#[test]
fn labels_must_be_binary_and_cascade() {
    // An empty last label at the very end of the file (no final line end), in a row of
    // plain values (which the fast path reads).
    rejected(
        Some(
            with_row_edit(|r| {
                r[17..80].fill("0.5".into());
                r[81] = String::new();
            })
            .trim_end_matches('\n'),
        ),
        &["bad.csv:3:", "`conversion`", "must be 0 or 1, found ``"],
    );
    rejected(
        Some(&with_row_edit(|r| r[80] = "2".into())),
        &["bad.csv:3:", "`click`", "must be 0 or 1, found `2`"],
    );
    rejected(
        Some(&with_row_edit(|r| {
            r[80] = "0".into();
            r[81] = "1".into();
        })),
        &["bad.csv:3:", "`conversion` is 1 but `click` is 0"],
    );
}

#[test]
fn category_at_cardinality_is_an_error_unless_clamped() {
    // categorical_1 has cardinality 11.
    rejected(
        Some(&with_row_edit(|r| r[1] = "11".into())),
        &[
            "bad.csv:3:",
            "`categorical_1`",
            "category 11",
            "cardinality 11",
            "oov = \"clamp\"",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, with_row_edit(|r| r[1] = "40".into())).unwrap();
    let mut schema = aliexpress();
    schema.oov = Oov::Clamp;
    let table = load_csv(&csv, &schema).unwrap().table;
    assert_eq!(
        table.categorical().get(16),
        10,
        "clamped to the field's last row, not another field's"
    );
}

#[test]
fn missing_empty_and_header_mismatch_files() {
    rejected(
        None,
        &[
            "bad.csv: no such file",
            "data set entry `bad`",
            "relative to the entry's file",
        ],
    );
    rejected(Some(""), &["bad.csv: the file is empty"]);
    let header_only = std::fs::read_to_string(sample("train.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
        + "\n";
    rejected(Some(&header_only), &["bad.csv: the file is empty"]);
    let renamed = with_row_edit(|_| {}).replacen("categorical_2", "categorical_two", 1);
    rejected(
        Some(&renamed),
        &[
            "bad.csv:1:",
            "header column 3 is `categorical_two`, expected `categorical_2`",
        ],
    );
}

fn synthetic_config(dir: &Path, domain: &str, role: Role, seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        schema: aliexpress(),
        domain: domain.into(),
        role,
        profile: Profile::Smoke,
        seed,
        dir: dir.to_path_buf(),
        shift: None,
    }
}

fn table_bytes(t: &Table) -> Vec<u8> {
    std::fs::read(&t.path).unwrap()
}

#[test]
fn synthetic_data_is_seeded_and_realistic() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) =
        synthetic::ensure(&synthetic_config(dir.path(), "nl", Role::Target, 5)).unwrap();
    let other = tempfile::tempdir().unwrap();
    let (same, _) =
        synthetic::ensure(&synthetic_config(other.path(), "nl", Role::Target, 5)).unwrap();
    assert!(
        table_bytes(&train) == table_bytes(&same),
        "same seed, same bytes"
    );
    let (reseeded, _) =
        synthetic::ensure(&synthetic_config(other.path(), "nl", Role::Target, 6)).unwrap();
    assert_ne!(table_bytes(&train).len(), 0);
    assert_ne!(train.numerical()[..1000], reseeded.numerical()[..1000]);

    assert_eq!(
        (train.rows(), test.rows()),
        synthetic::sizes(Profile::Smoke, Role::Target)
    );
    let ctr = f64::from(label_sum(&train, 0)) / train.rows() as f64;
    let ctcvr = f64::from(label_sum(&train, 1)) / train.rows() as f64;
    assert!((0.01..0.1).contains(&ctr), "CTR {ctr}");
    assert!(ctcvr > 0.0 && ctcvr < 0.01, "CTCVR {ctcvr}");
    let labels = train.labels();
    assert!(
        labels.chunks(2).all(|l| l[1] <= l[0]),
        "a conversion always follows a click"
    );
    assert!(train.numerical().iter().all(|x| (0.0..=1.0).contains(x)));
    let p = train.probabilities().unwrap();
    assert!(
        p.chunks(2)
            .all(|p| p[1] <= p[0] && p[0] > 0.0 && p[0] < 1.0)
    );
}

#[test]
fn splits_are_seeded_stratified_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) =
        synthetic::ensure(&synthetic_config(dir.path(), "nl", Role::Target, 5)).unwrap();
    let a = split::load_or_draw(&train, 0.01, 1000, Validation::Random, 1).unwrap();
    assert!(split::split_path(&train.path, 0.01, 1000, Validation::Random, 1).is_file());
    assert_eq!(
        split::load_or_draw(&train, 0.01, 1000, Validation::Random, 1).unwrap(),
        a
    );
    assert_ne!(
        split::load_or_draw(&train, 0.01, 1000, Validation::Random, 2).unwrap(),
        a
    );
    let clicks = train.label_column(0);
    let positives = clicks.iter().filter(|&&c| c == 1).count();
    let kept = a.train.iter().filter(|&&r| clicks[r as usize] == 1).count();
    assert_eq!(kept, (positives as f64 * 0.01).round() as usize);
    assert_eq!(
        a.train.len(),
        (positives as f64 * 0.01).round() as usize
            + ((train.rows() - positives) as f64 * 0.01).round() as usize
    );
    assert_eq!(a.valid.len(), 1000);
}

/// The fast path (plain values) and the checked path (everything else) give the same
/// table: the sample rewritten with CRLF line ends, blank lines, spaces, `+` signs,
/// exponents, `1.0` labels and no final line end parses to the sample's values.
#[test]
fn irregular_formatting_parses_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    std::fs::copy(sample("train.csv"), &plain).unwrap();
    let text = std::fs::read_to_string(&plain).unwrap();
    let mut lines = text.lines();
    let mut irregular = format!("{}\r\n", lines.next().unwrap());
    for (i, line) in lines.enumerate() {
        let fields: Vec<String> = line
            .split(',')
            .enumerate()
            .map(|(column, value)| match (i + column) % 7 {
                0 => format!(" {value} "),
                1 if (17..80).contains(&column) => format!("{:e}", value.parse::<f64>().unwrap()),
                2 if (17..80).contains(&column) && !value.starts_with('-') => format!("+{value}"),
                3 if column >= 80 => format!("{value}.0"),
                _ => value.to_string(),
            })
            .collect();
        irregular.push_str(&fields.join(","));
        irregular.push_str(if i % 10 == 3 { "\r\n\r\n" } else { "\r\n" });
    }
    let irregular = irregular.trim_end().to_string();
    let other = dir.path().join("irregular.csv");
    std::fs::write(&other, &irregular).unwrap();
    let a = load_csv(&plain, &aliexpress()).unwrap().table;
    let b = load_csv(&other, &aliexpress()).unwrap().table;
    assert_eq!(b.rows(), a.rows());
    let categories = |t: &Table| -> Vec<u32> {
        (0..t.rows() * t.header.fields)
            .map(|i| t.categorical().get(i))
            .collect()
    };
    assert_eq!(categories(&b), categories(&a));
    assert_eq!(b.numerical(), a.numerical());
    assert_eq!(b.labels(), a.labels());
}

#[test]
fn csv_round_trip_of_synthetic_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (_, test) =
        synthetic::ensure(&synthetic_config(dir.path(), "fr", Role::Target, 3)).unwrap();
    let csv = dir.path().join("fr.csv");
    daa::data::csv::write_csv(&test, &aliexpress(), &csv).unwrap();
    let back = load_csv(&csv, &aliexpress()).unwrap().table;
    assert_eq!(back.rows(), test.rows());
    assert_eq!(
        back.numerical(),
        test.numerical(),
        "f32 values survive their shortest decimal form"
    );
    assert_eq!(back.labels(), test.labels());
    assert_eq!(
        (0..1000)
            .map(|i| back.categorical().get(i))
            .collect::<Vec<_>>(),
        (0..1000)
            .map(|i| test.categorical().get(i))
            .collect::<Vec<_>>()
    );
}

/// Logistic regression on one-hot categories and the numerical columns, full-batch Adam.
fn logistic_probe(
    tables: &[(&Table, &[u32])],
    cardinalities: &[u32],
) -> impl Fn(&Table, usize) -> f32 {
    let offsets = daa::data::batch::field_offsets(cardinalities);
    let one_hot: usize = cardinalities.iter().map(|&c| c as usize).sum();
    let numerical = tables[0].0.header.numerical;
    let dim = one_hot + numerical + 1;
    let features = move |t: &Table, row: usize| -> Vec<(usize, f32)> {
        let h = &t.header;
        let c = t.categorical();
        let mut f: Vec<(usize, f32)> = (0..h.fields)
            .map(|i| ((offsets[i] + c.get(row * h.fields + i)) as usize, 1.0))
            .collect();
        f.extend(
            t.numerical()[row * numerical..(row + 1) * numerical]
                .iter()
                .enumerate()
                .map(|(j, &x)| (one_hot + j, x)),
        );
        f.push((dim - 1, 1.0));
        f
    };
    let rows: Vec<(Vec<(usize, f32)>, f32)> = tables
        .iter()
        .flat_map(|(t, rows)| {
            rows.iter().map(|&r| {
                (
                    features(t, r as usize),
                    f32::from(t.labels()[r as usize * t.header.labels]),
                )
            })
        })
        .collect();
    let (mut w, mut m, mut v) = (vec![0f32; dim], vec![0f32; dim], vec![0f32; dim]);
    for step in 1..=300 {
        let mut grad = vec![0f32; dim];
        for (x, y) in &rows {
            let z: f32 = x.iter().map(|&(i, xi)| w[i] * xi).sum();
            let g = 1.0 / (1.0 + (-z).exp()) - y;
            x.iter()
                .for_each(|&(i, xi)| grad[i] += g * xi / rows.len() as f32);
        }
        for i in 0..dim {
            let g = grad[i] + 1e-3 * w[i];
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            let (mh, vh) = (
                m[i] / (1.0 - 0.9f32.powi(step)),
                v[i] / (1.0 - 0.999f32.powi(step)),
            );
            w[i] -= 0.05 * mh / (vh.sqrt() + 1e-8);
        }
    }
    move |t: &Table, row: usize| features(t, row).iter().map(|&(i, x)| w[i] * x).sum()
}

#[test]
fn transfer_matters_logistic_probe() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) =
        synthetic::ensure(&synthetic_config(dir.path(), "ru", Role::Source, 2024)).unwrap();
    let (target, test) =
        synthetic::ensure(&synthetic_config(dir.path(), "nl", Role::Target, 2024)).unwrap();
    let cards = aliexpress().categorical.cardinalities;
    let subset = split::draw(&target.label_column(0), 0.01, 10, 1).train;
    let all_source: Vec<u32> = (0..source.rows() as u32).collect();
    let clicks = test.label_column(0);
    let evaluate = |score: &dyn Fn(&Table, usize) -> f32| {
        let scores: Vec<f32> = (0..test.rows()).map(|r| score(&test, r)).collect();
        auc(&scores, &clicks).unwrap()
    };
    let target_only = evaluate(&logistic_probe(&[(&target, &subset)], &cards));
    let with_source = evaluate(&logistic_probe(
        &[(&source, &all_source), (&target, &subset)],
        &cards,
    ));
    let p: Vec<f32> = test
        .probabilities()
        .unwrap()
        .iter()
        .step_by(2)
        .copied()
        .collect();
    let oracle = auc(&p, &clicks).unwrap();
    println!(
        "probe (CTR AUC on nl test): target subset only {target_only:.4}, source + target subset {with_source:.4}, oracle {oracle:.4} ({} target rows)",
        subset.len()
    );
    assert!(
        target_only < oracle - 0.05,
        "target rows alone stay clearly below the oracle"
    );
    assert!(
        with_source > target_only + 0.03,
        "the source rows carry signal that helps"
    );
    assert!(with_source < oracle, "nothing beats the Bayes limit");
}

#[test]
fn table_errors_are_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("x.table");
    std::fs::write(&bogus, b"not a table").unwrap();
    assert!(matches!(
        Table::open(&bogus),
        Err(DataError::Corrupt { .. })
    ));
}

#[test]
fn synth_and_split_commands_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = daa(
        dir.path(),
        &[
            "data",
            "synth",
            "--preset",
            "aliexpress",
            "--profile",
            "smoke",
            "--seed",
            "9",
            "--dir",
            "data/synthetic",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    for domain in ["ru", "nl", "es", "fr", "us"] {
        assert!(text.lines().any(|l| l.starts_with(domain)), "{text}");
        assert!(
            dir.path()
                .join(format!("data/synthetic/smoke/seed9/{domain}/train.table"))
                .is_file()
        );
    }
}

/// A raw Tianchi archive for country `xx`: nested zips of headerless user and item rows.
fn raw_archive(dir: &Path, users: &[u64], items: &[(u64, &str)]) {
    use std::io::Write;
    let zip_bytes = |name: &str, text: &str| -> Vec<u8> {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut cursor);
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(text.as_bytes()).unwrap();
        z.finish().unwrap();
        cursor.into_inner()
    };
    // User columns 2..8 and 32, 33 are categories; 9..31 numbers in [0, 1].
    let user_row = |id: u64| {
        let mut f = vec![id.to_string()];
        f.extend((2..=33).map(|c| {
            if (2..=8).contains(&c) || c >= 32 {
                (id % 2).to_string()
            } else {
                format!("0.{c}")
            }
        }));
        f.join(",")
    };
    // Item columns 19, 34, 35, 36, 40, 41, 42 are categories; the rest of 2..48 numbers.
    let item_row = |id: u64, label: &str| {
        let mut f = vec![id.to_string()];
        f.extend((2..=48).map(|c| {
            if [19, 34, 35, 36, 40, 41, 42].contains(&c) {
                "1".to_string()
            } else {
                format!("0.{}", c % 10)
            }
        }));
        f.push(label.to_string());
        f.join(",")
    };
    let users: String = users.iter().map(|&i| user_row(i) + "\n").collect();
    let items: String = items.iter().map(|&(i, l)| item_row(i, l) + "\n").collect();
    let file = std::fs::File::create(dir.join("aliexpress_XX_datasets.zip")).unwrap();
    let mut outer = zip::ZipWriter::new(file);
    for split in ["train", "test"] {
        for (kind, text) in [("user", &users), ("item", &items)] {
            let name = format!("xx_{kind}_{split}");
            outer
                .start_file(
                    format!("aliexpress_XX_datasets/{name}.zip"),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
            outer
                .write_all(&zip_bytes(&format!("{name}.csv"), text))
                .unwrap();
        }
    }
    outer.finish().unwrap();
}

#[test]
fn prepare_aliexpress_joins_nested_raw_zips() {
    let dir = tempfile::tempdir().unwrap();
    let items = [(1, "0"), (1, "1"), (2, "2"), (3, "0"), (4, "1")];
    raw_archive(dir.path(), &[1, 2, 4], &items);
    let out = daa(
        dir.path(),
        &[
            "data",
            "prepare-aliexpress",
            "--raw",
            ".",
            "--country",
            "xx",
            "--out",
            "prepared",
        ],
        &[],
    );
    let text = common::stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("4 rows written (1 impressions, 2 clicks, 1 purchases); 1 item rows without a user row dropped; merge join"), "{text}");
    let csv = dir.path().join("prepared/XX/train.csv");
    let table = load_csv(&csv, &aliexpress()).unwrap().table;
    assert_eq!(table.rows(), 4);
    assert_eq!(table.labels(), &[0, 0, 1, 0, 1, 1, 1, 0]);
    // categorical_1 is user column 2 (id % 2); categorical_10 is item column 19 (1).
    let c = table.categorical();
    assert_eq!((c.get(0), c.get(9), c.get(3 * 16)), (1, 1, 0));
    // numerical_1 is user column 9; numerical_24 is item column 2.
    assert_eq!((table.numerical()[0], table.numerical()[23]), (0.9, 0.2));

    let unsorted = tempfile::tempdir().unwrap();
    raw_archive(
        unsorted.path(),
        &[4, 1, 2],
        &[(4, "1"), (2, "2"), (1, "0"), (3, "0"), (1, "1")],
    );
    let out = daa(
        unsorted.path(),
        &[
            "data",
            "prepare-aliexpress",
            "--raw",
            ".",
            "--country",
            "XX",
            "--out",
            "p",
        ],
        &[],
    );
    assert!(common::stdout(&out).contains("4 rows written (1 impressions, 2 clicks, 1 purchases); 1 item rows without a user row dropped; hash join"), "{}", stderr(&out));
}

#[test]
fn prepare_aliexpress_rejects_a_bad_label_without_output() {
    let dir = tempfile::tempdir().unwrap();
    raw_archive(dir.path(), &[1, 2], &[(1, "0"), (2, "5")]);
    let out = daa(
        dir.path(),
        &[
            "data",
            "prepare-aliexpress",
            "--raw",
            ".",
            "--country",
            "xx",
            "--out",
            "prepared",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("xx_item_train.zip")
            && err.contains(":2: label (column 49) must be 0, 1 or 2, found `5`"),
        "{err}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path().join("prepared/XX"))
        .unwrap()
        .flatten()
        .collect();
    assert!(written.is_empty(), "no partial output: {written:?}");
    let missing = daa(
        dir.path(),
        &[
            "data",
            "prepare-aliexpress",
            "--raw",
            ".",
            "--country",
            "nl",
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("aliexpress_NL_datasets.zip: no such file"));
}

/// `n` rows of the smoke-sized domain `domain` under `shift`, in memory.
fn shifted_rows(domain: &str, shift: Option<synthetic::Shift>, n: usize) -> daa::data::table::Rows {
    let mut config = synthetic_config(Path::new("unused"), domain, Role::Target, 11);
    config.shift = shift;
    let mut all = daa::data::table::Rows::default();
    synthetic::generate_rows(&config, "train", n, |rows| -> Result<(), ()> {
        all.categorical.extend(rows.categorical);
        all.numerical.extend(rows.numerical);
        all.labels.extend(rows.labels);
        all.probabilities.extend(rows.probabilities);
        Ok(())
    })
    .unwrap();
    all
}

fn shift_of(kind: &str, m: f32) -> Option<synthetic::Shift> {
    // `kind` "none": no magnitude set, every kind at 0.
    let mut spec = serde_json::json!({"base": "ru"});
    if kind != "none" {
        spec[kind] = m.into();
    }
    Some(serde_json::from_value(spec).unwrap())
}

/// The largest total-variation distance between the two row sets' category marginals.
fn largest_tvd(a: &daa::data::table::Rows, b: &daa::data::table::Rows) -> f64 {
    let cards = aliexpress().categorical.cardinalities;
    let fields = cards.len();
    (0..fields)
        .map(|f| {
            let freq = |rows: &daa::data::table::Rows| {
                let mut counts = vec![0f64; cards[f] as usize];
                let n = rows.categorical.len() / fields;
                for r in 0..n {
                    counts[rows.categorical[r * fields + f] as usize] += 1.0 / n as f64;
                }
                counts
            };
            let (fa, fb) = (freq(a), freq(b));
            0.5 * fa.iter().zip(&fb).map(|(x, y)| (x - y).abs()).sum::<f64>()
        })
        .fold(0.0, f64::max)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

#[test]
fn a_zero_shift_reproduces_its_base_and_each_kind_shifts_what_it_names() {
    let n = 40_000;
    let base = shifted_rows("ru", None, n);
    // Same domain name, so the same row stream: a zero shift gives the base's rows.
    assert!(shifted_rows("ru", shift_of("none", 0.0), n) == base);

    // Other rows of the same distribution: marginals within sampling noise (largest TVD
    // over the 16 fields, up to 50 categories, at 40,000 rows: about 0.02).
    let twin = shifted_rows("shifted", shift_of("none", 0.0), n);
    assert!(
        largest_tvd(&base, &twin) < 0.025,
        "{}",
        largest_tvd(&base, &twin)
    );
    let click_rate =
        |r: &daa::data::table::Rows| mean(r.probabilities.iter().step_by(2).map(|&p| f64::from(p)));
    assert!((click_rate(&base) - click_rate(&twin)).abs() < 0.003);

    // Covariate: the marginals move.
    let covariate = shifted_rows("shifted", shift_of("covariate", 1.0), n);
    assert!(
        largest_tvd(&base, &covariate) > 0.2,
        "{}",
        largest_tvd(&base, &covariate)
    );

    // Concept and prior keep the features (the same draws) and move the probabilities;
    // a prior shift moves each click logit by exactly one.
    let concept = shifted_rows("ru", shift_of("concept", 1.0), n);
    assert!(concept.categorical == base.categorical && concept.numerical == base.numerical);
    assert!(concept.probabilities != base.probabilities);
    let prior = shifted_rows("ru", shift_of("prior", 1.0), n);
    assert!(prior.categorical == base.categorical && prior.numerical == base.numerical);
    let logit = |p: f32| (f64::from(p) / (1.0 - f64::from(p))).ln();
    let moves: Vec<f64> = prior
        .probabilities
        .iter()
        .zip(&base.probabilities)
        .step_by(2)
        .map(|(&a, &b)| logit(a) - logit(b))
        .collect();
    let first = moves[0];
    assert!((first.abs() - 1.0).abs() < 1e-3, "{first}");
    assert!(moves.iter().all(|m| (m - first).abs() < 1e-3));

    // Representation: the same probabilities behind relabelled categories (one to one per
    // field) and mirrored numbers.
    let shown = shifted_rows("ru", shift_of("representation", 0.5), n);
    assert!(shown.probabilities == base.probabilities);
    let fields = aliexpress().categorical.cardinalities.len();
    let mut maps = vec![std::collections::HashMap::new(); fields];
    for (i, (&a, &b)) in base.categorical.iter().zip(&shown.categorical).enumerate() {
        let earlier = maps[i % fields].insert(a, b);
        assert!(
            earlier.is_none_or(|e| e == b),
            "one shown index per category"
        );
    }
    assert!(
        maps.iter().flatten().any(|(a, b)| a != b),
        "some categories move"
    );
    let columns = shown.numerical.len() / n;
    let mirrored: Vec<bool> = (0..columns)
        .map(|j| {
            (0..n)
                .all(|r| shown.numerical[r * columns + j] == 1.0 - base.numerical[r * columns + j])
        })
        .collect();
    let kept = (0..columns)
        .filter(|&j| {
            (0..n).all(|r| shown.numerical[r * columns + j] == base.numerical[r * columns + j])
        })
        .count();
    assert_eq!(
        mirrored.iter().filter(|&&m| m).count(),
        (0.5f32 * columns as f32).round() as usize
    );
    assert_eq!(kept + mirrored.iter().filter(|&&m| m).count(), columns);
}
