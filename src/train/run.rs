//! `daa run`: the stages of an experiment and its run directory
//! (`<runs_dir>/<experiment>/<config hash>/`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::epoch::{Adversaries, Data, Learner, Real, run_epoch};
use super::evaluate::{Evaluation, evaluate};
use super::outputs::{append_line, truncate_lines, write_atomic, write_json};
use super::state::{self, Progress};
use crate::adapt::critic::{Config as CriticConfig, Critic, Head};
use crate::adapt::weights::Config as Weights;
use crate::config::schema::{Method, SelectOn};
use crate::config::{Experiment, Resolved};
use crate::data::batch::{Batches, LastBatch, epoch_order};
use crate::data::dataset::{Splits, open};
use crate::data::{Schema, split};
use crate::models::model::Model;
use crate::nn::optim::Adam;
use crate::nn::{Mode, Params};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue an interrupted run from its last checkpoint.
    pub resume: bool,
    /// Stop after this many epochs of this session, as an interruption would (tests resume).
    pub stop_after_epochs: Option<usize>,
    /// Progress bars on the terminal.
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub experiment: String,
    pub config_hash: String,
    pub method: Method,
    pub seed: u64,
    pub device: String,
    pub git_commit: Option<String>,
    pub versions: serde_json::Value,
    pub target_train_rows: usize,
    pub valid_rows: usize,
    pub best_epoch: Option<usize>,
    pub best_valid_mean_auc: Option<f64>,
    pub epochs_run: usize,
    pub source_checkpoint: Option<PathBuf>,
    pub test: Evaluation,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub dir: PathBuf,
    /// `None` when stopped early by `stop_after_epochs`.
    pub record: Option<RunRecord>,
}

/// The experiment's name: its file's stem.
fn experiment_name(resolved: &Resolved) -> String {
    resolved
        .path
        .file_stem()
        .map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned())
}

/// The run directory of `resolved`.
pub fn run_dir(resolved: &Resolved) -> PathBuf {
    resolved
        .experiment
        .output
        .runs_dir
        .join(experiment_name(resolved))
        .join(&resolved.hash)
}

fn bar(show: bool, label: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_prefix(label.to_string());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} {msg:>9} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn schema_of(component: &crate::config::Component) -> Result<Schema, TrainError> {
    serde_json::from_value(component.params["schema"].clone())
        .map_err(|e| TrainError::Invalid(e.to_string()))
}

fn open_splits(component: &crate::config::Component) -> Result<Splits, TrainError> {
    Ok(open(&component.kind, &component.params)?)
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn run(resolved: &Resolved, options: &RunOptions) -> Result<RunResult, TrainError> {
    let started = Instant::now();
    let exp = &resolved.experiment;
    let device = exp.train.device.open()?;
    let dir = run_dir(resolved);
    std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
    write_atomic(
        &dir.join("config.resolved.toml"),
        crate::config::render(resolved, false).as_bytes(),
    )?;
    let schema = schema_of(&exp.data.target)?;
    if exp.adapt.method != Method::SingleDomain && schema_of(&exp.data.source)? != schema {
        return Err(TrainError::Invalid("data.source and data.target have different schemas; a source model cannot serve the target".into()));
    }
    let weights: Weights = exp.adapt.weights.params();
    if weights.tasks.len() != schema.labels.len() {
        return Err(TrainError::Invalid(format!(
            "adapt.weights.tasks has {} weights but the data set has {} labels ({})",
            weights.tasks.len(),
            schema.labels.len(),
            schema.labels.join(", ")
        )));
    }
    let target = open_splits(&exp.data.target)?;
    let split = split::load_or_draw(
        &target.train,
        exp.data.target_rate,
        exp.data.valid_rows,
        exp.train.seed,
    )?;
    tracing::info!(target_rows = split.train.len(), valid_rows = split.valid.len(), dir = %dir.display(), "target split");
    let needs_source = exp.adapt.method != Method::SingleDomain;
    let source = needs_source
        .then(|| open_splits(&exp.data.source))
        .transpose()?;
    let source_checkpoint = match &source {
        Some(source) => Some(pretrain(exp, &schema, source, &device, options)?),
        None => None,
    };

    let mut learner = build_learner(exp, &schema, &device, source_checkpoint.as_deref())?;
    let metrics_path = dir.join("metrics.jsonl");
    let mut progress = Progress::start();
    if options.resume
        && let Some(p) = state::restore(&dir, &mut learner)?
    {
        tracing::info!(next_epoch = p.next_epoch, "resuming");
        truncate_lines(&metrics_path, p.next_epoch)?;
        progress = p;
    } else {
        let _ = std::fs::remove_file(&metrics_path);
    }
    let (select_table, select_rows) = match exp.train.select_on {
        SelectOn::Valid => (&target.train, Some(split.valid.as_slice())),
        SelectOn::Test => (&target.test, None),
    };
    let data = Data {
        target: &target.train,
        target_rows: &split.train,
        source: source.as_ref().map(|s| &s.train),
        source_fraction: exp.data.source_fraction,
        batch_size: exp.train.batch_size,
        device: &device,
    };
    let trains = exp.adapt.method != Method::SourceOnly;
    let bar = bar(options.progress, "target");
    let mut session_epochs = 0;
    while trains && !progress.finished && progress.next_epoch < exp.train.epochs {
        let epoch = progress.next_epoch;
        bar.set_message(format!("epoch {}", epoch + 1));
        let stats = run_epoch(
            exp.adapt.method,
            &mut learner,
            &data,
            &weights,
            exp.train.seed,
            epoch as u64,
            &bar,
        )?;
        let valid = evaluate(
            &learner.model,
            select_table,
            select_rows,
            &schema.labels,
            exp.train.batch_size,
            exp.train.auc,
            &device,
        )?;
        let score = valid.mean_auc("validation")?;
        bar.suspend(|| {
            tracing::info!(
                epoch = epoch + 1,
                task_loss = stats.task_loss,
                valid_mean_auc = score,
                "epoch"
            )
        });
        append_line(
            &metrics_path,
            &serde_json::json!({"epoch": epoch, "train": stats, "valid": valid, "valid_mean_auc": score}),
        )?;
        if score > progress.best_score {
            progress.best_score = score;
            progress.best_epoch = Some(epoch);
            progress.bad_epochs = 0;
            learner.model.save(&dir.join("best.safetensors"))?;
        } else {
            progress.bad_epochs += 1;
        }
        progress.next_epoch = epoch + 1;
        progress.finished = progress.bad_epochs >= exp.train.patience;
        state::save(&dir, &learner, &mut progress)?;
        session_epochs += 1;
        if options
            .stop_after_epochs
            .is_some_and(|n| session_epochs >= n)
            && !progress.finished
            && progress.next_epoch < exp.train.epochs
        {
            bar.finish_and_clear();
            progress.seconds += started.elapsed().as_secs_f64();
            write_json(&dir.join("progress.json"), &progress)?;
            return Ok(RunResult { dir, record: None });
        }
    }
    bar.finish_and_clear();
    if progress.best_epoch.is_some() {
        learner.model.load(&dir.join("best.safetensors"))?;
    }
    let test = evaluate(
        &learner.model,
        &target.test,
        None,
        &schema.labels,
        exp.train.batch_size,
        exp.train.auc,
        &device,
    )?;
    let record = RunRecord {
        experiment: experiment_name(resolved),
        config_hash: resolved.hash.clone(),
        method: exp.adapt.method,
        seed: exp.train.seed,
        device: crate::device::describe(&device),
        git_commit: git_commit(),
        versions: serde_json::json!({"daa": env!("CARGO_PKG_VERSION"), "candle": env!("CANDLE_VERSION_OF_DAA")}),
        target_train_rows: split.train.len(),
        valid_rows: split.valid.len(),
        best_epoch: progress.best_epoch,
        best_valid_mean_auc: progress.best_epoch.map(|_| progress.best_score),
        epochs_run: progress.next_epoch,
        source_checkpoint,
        test,
        wall_seconds: progress.seconds + started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join("result.json"), &record)?;
    Ok(RunResult {
        dir,
        record: Some(record),
    })
}

fn build_learner(
    exp: &Experiment,
    schema: &Schema,
    device: &Device,
    source: Option<&Path>,
) -> Result<Learner, TrainError> {
    let seed = exp.train.seed;
    let model = Model::new(exp, schema, device, seed)?;
    if let Some(path) = source {
        model.load(path)?;
    }
    let optim = &exp.optim;
    let optimizer = Adam::new(
        model.params.trainable(),
        optim.optimizer,
        optim.lr,
        optim.weight_decay,
    );
    let critic: CriticConfig = exp.adapt.critic.params();
    let reals = match exp.adapt.method {
        Method::Daa => vec![Real::FrozenSource, Real::TargetOnSource],
        Method::DaaSingle => vec![Real::FrozenSource],
        Method::DaaD2 | Method::Dann => vec![Real::TargetOnSource],
        _ => Vec::new(),
    };
    let adversaries = if reals.is_empty() {
        None
    } else {
        let mut config = critic;
        if exp.adapt.method == Method::Dann {
            // DANN's domain classifier is a logit, whatever the critic head.
            config.head = Head::Linear;
        }
        let mut params = Params::new(device, seed);
        let width = model.backbone.feature_width();
        let critics = (1..=reals.len())
            .map(|k| Critic::new(&mut params, &format!("critic{k}"), width, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let decay = config.weight_decay.unwrap_or(optim.weight_decay);
        let optimizer = Adam::new(params.trainable(), config.optimizer, config.lr, decay);
        Some(Adversaries {
            params,
            critics,
            reals: reals.clone(),
            optimizer,
            config,
        })
    };
    let frozen = match (reals.contains(&Real::FrozenSource), source) {
        (false, _) => None,
        (true, Some(path)) => {
            let frozen = Model::new(exp, schema, device, seed)?;
            frozen.load(path)?;
            Some(frozen)
        }
        (true, None) => return Err(TrainError::Invalid("DAA needs a source model".into())),
    };
    Ok(Learner {
        model,
        optimizer,
        frozen,
        adversaries,
    })
}

/// Pretrains the source model, or reuses a checkpoint from an earlier run with the same
/// source setup. Returns the checkpoint's path.
fn pretrain(
    exp: &Experiment,
    schema: &Schema,
    source: &Splits,
    device: &Device,
    options: &RunOptions,
) -> Result<PathBuf, TrainError> {
    let key = serde_json::json!({
        "source": exp.data.source, "backbone": exp.model.backbone, "embedding": exp.model.embedding,
        "pretrain": exp.pretrain, "batch_size": exp.train.batch_size, "seed": exp.train.seed,
        "device": crate::device::describe(device), "valid_rows": exp.data.valid_rows,
        "rows_version": crate::data::dataset::rows_version(&exp.data.source.kind),
    });
    let hash = crate::config::digest(&key);
    let dir = exp.output.runs_dir.join("_source").join(hash);
    let checkpoint = dir.join("model.safetensors");
    if checkpoint.is_file() {
        tracing::info!(checkpoint = %checkpoint.display(), "reusing the pretrained source model");
        return Ok(checkpoint);
    }
    std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
    let seed = exp.train.seed;
    let all: Vec<u32> = (0..source.train.rows() as u32).collect();
    let shuffled = epoch_order(&all, seed, "source/holdout", 0, true);
    let holdout = exp.data.valid_rows.min(shuffled.len() / 10).max(1);
    let (valid, train) = shuffled.split_at(holdout);
    let model = Model::new(exp, schema, device, seed)?;
    let p = &exp.pretrain;
    let mut optimizer = Adam::new(model.params.trainable(), p.optimizer, p.lr, p.weight_decay);
    let bar = bar(options.progress, "source");
    let (mut best, mut bad) = (f64::NEG_INFINITY, 0);
    let best_path = dir.join("best.safetensors");
    for epoch in 0..p.epochs {
        bar.set_message(format!("epoch {}", epoch + 1));
        let order = epoch_order(train, seed, "shuffle/source", epoch as u64, true);
        let mut batches = Batches::new(
            &source.train,
            order,
            exp.train.batch_size,
            LastBatch::Keep,
            Some(model.offsets.clone()),
        );
        bar.set_length(train.len() as u64);
        bar.set_position(0);
        let mut noise = crate::rng::stream(seed, "dropout/source", epoch as u64);
        let mut batch = Default::default();
        while batches.next_into(&mut batch) {
            bar.inc(batch.size as u64);
            if batch.size < 2 {
                continue;
            }
            let t = batch.to_tensors(
                source.train.header.fields,
                source.train.header.numerical,
                device,
            )?;
            let out = model.forward(
                &t.categorical,
                &t.numerical,
                &mut Mode {
                    train: true,
                    noise: Some(&mut noise),
                },
            )?;
            let losses = out.task_losses(&t.labels)?;
            let mut loss = losses[0].clone();
            for l in &losses[1..] {
                loss = (loss + l)?;
            }
            optimizer.step(&loss.backward()?)?;
        }
        let score = evaluate(
            &model,
            &source.train,
            Some(valid),
            &schema.labels,
            exp.train.batch_size,
            exp.train.auc,
            device,
        )?
        .mean_auc("source validation")?;
        bar.suspend(|| {
            tracing::info!(
                epoch = epoch + 1,
                valid_mean_auc = score,
                "source pretraining"
            )
        });
        if score > best {
            best = score;
            bad = 0;
            model.save(&best_path)?;
        } else {
            bad += 1;
            if bad >= p.patience {
                break;
            }
        }
    }
    bar.finish_and_clear();
    write_json(
        &dir.join("source.json"),
        &serde_json::json!({"valid_mean_auc": best, "key": key}),
    )?;
    std::fs::rename(&best_path, &checkpoint).map_err(TrainError::io(&checkpoint))?;
    Ok(checkpoint)
}
