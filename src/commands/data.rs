//! `daa data ...`: synthetic generation and scarce-target splits.

use anyhow::{Context, Result, bail};
use daa::config::Registry;
use daa::config::schema::Validation;
use daa::data::dataset::open;
use daa::data::split;
use daa::data::synthetic::{Profile, SyntheticConfig};
use daa::metrics;

use super::UsageError;

/// Generates every synthetic domain of the registry whose schema is `preset`'s.
pub fn synth(
    registry: &Registry,
    preset: &str,
    profile: &str,
    seed: Option<u64>,
    dir: Option<&std::path::Path>,
) -> Result<()> {
    let schema = registry
        .entry("schemas", preset)
        .map_err(|e| UsageError(format!("--preset {preset}: {e}")))?
        .params["schema"]
        .clone();
    let profile: Profile = serde_json::from_value(serde_json::Value::String(profile.into()))
        .map_err(|_| UsageError(format!("--profile {profile}: expected smoke, cpu or paper")))?;
    let mut found = 0;
    println!(
        "{:<8} {:>10} {:>10} {:>24} {:>24}",
        "domain", "train", "test", "label rates (test)", "oracle AUC (test)"
    );
    for name in registry.names("datasets") {
        let entry = registry.entry("datasets", &name)?;
        if entry.kind != "synthetic" || entry.params["schema"] != schema {
            continue;
        }
        found += 1;
        let mut config: SyntheticConfig = serde_json::from_value(entry.params)?;
        config.profile = profile;
        config.seed = seed.unwrap_or(config.seed);
        if let Some(dir) = dir {
            config.dir = dir.to_path_buf();
        }
        let (train, test) = daa::data::synthetic::ensure(&config)
            .with_context(|| format!("registry/datasets/{name}.toml"))?;
        let tasks = test.header.labels;
        let probabilities = test
            .probabilities()
            .expect("synthetic tables keep their probabilities");
        let mut rates = Vec::new();
        let mut oracle = Vec::new();
        for t in 0..tasks {
            let labels = test.label_column(t);
            rates.push(format!(
                "{:.4}",
                labels.iter().map(|&l| f64::from(l)).sum::<f64>() / labels.len() as f64
            ));
            let p: Vec<f32> = probabilities
                .iter()
                .skip(t)
                .step_by(tasks)
                .copied()
                .collect();
            oracle.push(metrics::auc(&p, &labels).map_or("n/a".into(), |a| format!("{a:.4}")));
        }
        println!(
            "{:<8} {:>10} {:>10} {:>24} {:>24}",
            config.domain,
            train.rows(),
            test.rows(),
            rates.join(" / "),
            oracle.join(" / ")
        );
    }
    if found == 0 {
        bail!(UsageError(format!(
            "no synthetic data set in the registry uses the `{preset}` schema"
        )));
    }
    Ok(())
}

/// Draws (or reads) the scarce training subset and validation rows of a data set.
pub fn split(
    registry: &Registry,
    dataset: &str,
    rate: f64,
    valid_rows: usize,
    valid: Option<&str>,
    seed: u64,
) -> Result<()> {
    if !(rate > 0.0 && rate <= 1.0) {
        bail!(UsageError(format!("--rate {rate}: must be in (0, 1]")));
    }
    let entry = registry
        .entry("datasets", dataset)
        .map_err(|e| UsageError(format!("--dataset: {e}")))?;
    let splits = open(&entry.name, &entry.description, &entry.kind, &entry.params)?;
    let validation = match valid {
        Some("latest") => Validation::Latest,
        Some(_) => Validation::Random,
        None => Validation::default_for(&entry.params),
    };
    let drawn = split::load_or_draw(&splits.train, rate, valid_rows, validation, seed)?;
    let positives = |rows: &[u32]| {
        let first = splits.train.label_column(0);
        rows.iter().filter(|&&r| first[r as usize] == 1).count()
    };
    println!(
        "{dataset}: {} training rows ({} positive), {} validation rows ({} positive) of {}; {}",
        drawn.train.len(),
        positives(&drawn.train),
        drawn.valid.len(),
        positives(&drawn.valid),
        splits.train.rows(),
        split::split_path(&splits.train.path, rate, valid_rows, validation, seed).display()
    );
    Ok(())
}

/// Converts the raw Tianchi zips of one country into the processed layout.
pub fn prepare_aliexpress(
    raw: &std::path::Path,
    country: &str,
    out: &std::path::Path,
) -> Result<()> {
    let summaries = daa::data::aliexpress::prepare(raw, country, out)?;
    for s in summaries {
        println!(
            "{}: {} rows written ({} impressions, {} clicks, {} purchases); {} item rows without a user row dropped; {} join",
            s.path.display(),
            s.rows,
            s.labels[0],
            s.labels[1],
            s.labels[2],
            s.orphan_items,
            if s.merge_join { "merge" } else { "hash" }
        );
    }
    Ok(())
}

/// Converts MovieLens-1M into the benchmark's domains and prints what each holds.
pub fn prepare_movielens(
    raw: &std::path::Path,
    out: &std::path::Path,
    grouping: daa::data::movielens::Grouping,
) -> Result<()> {
    let summaries = daa::data::movielens::prepare(raw, out, grouping)?;
    println!(
        "{:<8} {:>9} {:>8} {:>14} {:>14} {:>6} {:>6}  folder",
        "domain", "train", "test", "like (share)", "love (share)", "users", "movies"
    );
    for s in summaries {
        let rows = (s.train_rows + s.test_rows).max(1) as f64;
        println!(
            "{:<8} {:>9} {:>8} {:>7} ({:.2}) {:>7} ({:.2}) {:>6} {:>6}  {}",
            s.domain,
            s.train_rows,
            s.test_rows,
            s.likes,
            s.likes as f64 / rows,
            s.loves,
            s.loves as f64 / rows,
            s.users,
            s.movies,
            s.dir.display()
        );
    }
    Ok(())
}
