//! `daa run`: the stages of an experiment and its run directory
//! (`<runs_dir>/<experiment>/<config hash>/`).

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::epoch::{Phase, run_epoch};
use super::evaluate::{Evaluation, evaluate};
use super::finished::Finished;
use super::outputs::{append_line, progress_bar, truncate_lines, write_json};
use super::pretrain::{pretrain, source_holdout};
use super::probe::{Probe, ProbeRows};
use super::state::{self, Learner, Progress};
use crate::adapt::weights::Config as Weights;
use crate::adapt::{Needs, Setup};
use crate::config::Resolved;
use crate::config::schema::{SelectMetric, SelectOn, SourceBatchNorm};
use crate::data::dataset::{Splits, open};
use crate::data::split;
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::optim::Adam;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue an interrupted run from its last checkpoint.
    pub resume: bool,
    /// Run again even if the run directory holds a finished result.
    pub rerun: bool,
    /// Stop after this many epochs of this session, as an interruption would (tests resume).
    pub stop_after_epochs: Option<usize>,
    /// Stop source pretraining after this many epochs of this session, likewise.
    pub stop_pretraining_after: Option<usize>,
    /// Progress bars on the terminal.
    pub progress: bool,
    /// Only pretrain the source model (if the method needs one), then return.
    pub pretrain_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub experiment: String,
    pub config_hash: String,
    pub method: String,
    pub seed: u64,
    pub device: String,
    /// The GPU, on a CUDA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::device::Gpu>,
    pub git_commit: Option<String>,
    pub versions: serde_json::Value,
    pub target_train_rows: usize,
    pub valid_rows: usize,
    /// The selected epoch, counted from 1.
    pub best_epoch: Option<usize>,
    /// The selected epoch's validation score: the mean AUC, or what `select_metric` says.
    pub best_valid_mean_auc: Option<f64>,
    /// `train.select_metric` where it is not the mean AUC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_metric: Option<SelectMetric>,
    /// How the validation rows were chosen (`data.valid` in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::config::schema::Validation>,
    pub epochs_run: usize,
    pub source_checkpoint: Option<PathBuf>,
    pub test: Evaluation,
    pub wall_seconds: f64,
    /// The alignment diagnostics (metrics.jsonl's "alignment") of the start model (epoch
    /// 0, `start`) and of the selected epoch (`selected`), where the run measured them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub dir: PathBuf,
    /// `None` when stopped early by `stop_after_epochs`.
    pub record: Option<RunRecord>,
    /// The run directory already held this finished result.
    pub reused: bool,
}

/// The files of a run directory that belong to one attempt at the run (the result first:
/// no result outlives the files it describes).
const RUN_FILES: [&str; 6] = [
    "result.json",
    "progress.json",
    "metrics.jsonl",
    "curves.svg",
    "best.safetensors",
    "last.safetensors",
];

/// Removes a run's result first (so that no result outlives the files it describes), then
/// its other files.
fn clear(dir: &std::path::Path) -> Result<(), TrainError> {
    for name in RUN_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrainError::io(&path)(e)),
        }
    }
    state::remove_states(dir)
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

fn open_splits(component: &crate::config::Component) -> Result<Splits, TrainError> {
    Ok(open(
        &component.name,
        &component.description,
        &component.kind,
        &component.params,
    )?)
}

/// The git commit the binary was built from (`-dirty` when tracked files differed).
fn git_commit() -> Option<String> {
    Some(env!("GIT_COMMIT_OF_DAA").to_string()).filter(|c| !c.is_empty())
}

/// Σ_t w_t BCE_t / T (the reference's (w_c BCE_ctr + w_ac BCE_ctcvr) / 2).
fn weighted_task_loss(
    weights: &Weights,
) -> impl Fn(&Output, &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> + '_ {
    move |output, labels| {
        let losses = output.task_losses(labels)?;
        let mut total = (&losses[0] * weights.tasks[0])?;
        for (loss, w) in losses.iter().zip(&weights.tasks).skip(1) {
            total = (total + (loss * *w)?)?;
        }
        total / losses.len() as f64
    }
}

/// The loss weights, checked against the data: one per label, and a source whose schema is
/// the target's where the method uses it; the selection metric's task or weights too.
fn checked_weights(
    exp: &crate::config::Experiment,
    schema: &crate::data::Schema,
    uses_source: bool,
) -> Result<Weights, TrainError> {
    if uses_source && crate::data::dataset::schema(&exp.data.source.params)? != *schema {
        return Err(TrainError::Invalid("data.source and data.target have different schemas; a source model cannot serve the target".into()));
    }
    let labels = schema.labels.join(", ");
    match &exp.train.select_metric {
        SelectMetric::Task(name) if !schema.labels.contains(name) => {
            return Err(TrainError::Invalid(format!(
                "train.select_metric names task `{name}`, but the data set's labels are {labels}"
            )));
        }
        SelectMetric::Weights(w) if w.len() != schema.labels.len() => {
            return Err(TrainError::Invalid(format!(
                "train.select_metric has {} weights but the data set has {} labels ({labels})",
                w.len(),
                schema.labels.len()
            )));
        }
        _ => {}
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
    Ok(weights)
}

/// The scarce target training rows and the validation rows (drawn once per seed, cached).
fn target_split(
    exp: &crate::config::Experiment,
    target: &Splits,
) -> Result<split::Split, TrainError> {
    let split = split::load_or_draw(
        &target.train,
        exp.data.target_rate,
        exp.data.valid_rows,
        exp.validation(),
        exp.train.seed,
    )?;
    if split.valid.len() < exp.data.valid_rows {
        return Err(TrainError::Invalid(format!(
            "data.target_rate = {} keeps {} of the target's {} training rows and leaves {} for \
             validation, fewer than data.valid_rows = {}: lower one of them",
            exp.data.target_rate,
            split.train.len(),
            target.train.rows(),
            split.valid.len(),
            exp.data.valid_rows
        )));
    }
    Ok(split)
}

/// The key and value of the target model's learning rate: the adaptation's for a model
/// that starts from the source model, the source training's for one trained from scratch.
fn target_lr(exp: &crate::config::Experiment, needs: Needs) -> (&'static str, f64) {
    if needs.source_model {
        ("optim.lr", exp.optim.lr)
    } else {
        ("pretrain.lr", exp.pretrain.lr)
    }
}

/// The target model's optimiser. A model trained from scratch on the target takes the
/// source training's settings (as MTReclib trains single-domain models); one that starts
/// from the source model takes the adaptation's. Methods that keep the body fixed train
/// the heads only.
fn target_optimizer(exp: &crate::config::Experiment, model: &Model, needs: Needs) -> Adam {
    let (kind, decay) = if needs.source_model {
        (exp.optim.optimizer, exp.optim.weight_decay)
    } else {
        (exp.pretrain.optimizer, exp.pretrain.weight_decay)
    };
    let (_, lr) = target_lr(exp, needs);
    let trained = model
        .params
        .named_trainable()
        .into_iter()
        .filter(|(name, _)| needs.trains_body || !model.backbone.is_body(name))
        .map(|(_, var)| var)
        .collect();
    Adam::new(trained, kind, lr, decay)
}

/// The alignment probe over `rows`, with a frozen copy of the source model (for the drift
/// and D1's held-out reals) where there is one.
fn alignment_probe<'a>(
    exp: &crate::config::Experiment,
    schema: &crate::data::Schema,
    rows: ProbeRows<'a>,
    source_checkpoint: Option<&std::path::Path>,
    device: &'a candle_core::Device,
) -> Result<Probe<'a>, TrainError> {
    let frozen = source_checkpoint
        .map(|path| -> Result<Model, TrainError> {
            let frozen = Model::new(exp, schema, device, exp.train.seed)?;
            frozen.load(path)?;
            Ok(frozen)
        })
        .transpose()?;
    Probe::new(
        rows,
        exp.train.probe_rows,
        frozen.as_ref(),
        exp.train.batch_size,
        exp.train.seed,
        device,
    )
}

/// The "alignment" of epoch 0 and of the `selected` epoch from a run's metrics.jsonl (the
/// last line of each epoch: a resumed run repeats none), `None` where neither has one.
fn alignment_record(
    metrics: &std::path::Path,
    selected: Option<usize>,
) -> Result<Option<serde_json::Value>, TrainError> {
    let mut start = serde_json::Value::Null;
    let mut chosen = serde_json::Value::Null;
    for value in super::outputs::read_lines(metrics)? {
        let epoch = value["epoch"].as_u64().map(|e| e as usize);
        if epoch == Some(0) {
            start = value["alignment"].clone();
        }
        if epoch.is_some() && epoch == selected {
            chosen = value["alignment"].clone();
        }
    }
    Ok((!start.is_null() || !chosen.is_null())
        .then(|| serde_json::json!({"start": start, "selected": chosen})))
}

/// The data a run trains, selects and probes on, checked against its method.
struct Inputs {
    schema: crate::data::Schema,
    weights: Weights,
    target: Splits,
    split: split::Split,
    /// The source domain, where the method or the alignment probe uses it.
    source: Option<Splits>,
    /// The source rows held out of training (the probe's reals) and the rows it trains on.
    holdout: Option<(Vec<u32>, Vec<u32>)>,
    probing: bool,
}

impl Inputs {
    fn open(
        exp: &crate::config::Experiment,
        needs: Needs,
        dir: &std::path::Path,
    ) -> Result<Self, TrainError> {
        let schema = crate::data::dataset::schema(&exp.data.target.params)?;
        let uses_source = needs.source_model || needs.source_rows;
        let weights = checked_weights(exp, &schema, uses_source)?;
        let target = open_splits(&exp.data.target)?;
        let split = target_split(exp, &target)?;
        tracing::info!(target_rows = split.train.len(), valid_rows = split.valid.len(), dir = %dir.display(), "target split");
        // The alignment probe needs source rows even where the method does not.
        let probing = exp.train.probe_rows > 0
            && (uses_source || crate::data::dataset::schema(&exp.data.source.params)? == schema);
        let source = (uses_source || probing)
            .then(|| open_splits(&exp.data.source))
            .transpose()?;
        let holdout = source.as_ref().map(|s| source_holdout(exp, &s.train));
        Ok(Inputs {
            schema,
            weights,
            target,
            split,
            source,
            holdout,
            probing,
        })
    }
}

impl RunResult {
    /// A run that stopped before its result (pretraining only, or an interruption).
    fn unfinished(dir: PathBuf) -> Self {
        RunResult {
            dir,
            record: None,
            reused: false,
        }
    }
}

/// What a run directory holds for a run about to start.
enum Claim {
    Finished(Box<RunRecord>),
    /// The directory, locked for this run and cleared of what cannot be trusted.
    Locked(crate::lock::DirLock),
}

/// The finished result in `dir`, or the directory locked for training.
fn claim(dir: &std::path::Path, options: &RunOptions) -> Result<Claim, TrainError> {
    // A finished run is read without the writer's lock (its result is written last, whole,
    // by a rename), so that finished runs on read-only storage serve their results.
    if !options.rerun
        && dir.join("curves.svg").is_file()
        && let Finished::Done(record) = super::finished::read(dir)
    {
        return Ok(Claim::Finished(record));
    }
    let lock = crate::lock::lock_dir(dir, "this run directory")?;
    let mut afresh = options.rerun || !options.resume;
    if !options.rerun {
        match super::finished::read(dir) {
            Finished::Done(record) => {
                // A chart lost after its result was written (a full disk) is drawn again.
                if !dir.join("curves.svg").exists() && dir.join("metrics.jsonl").exists() {
                    super::curves::write(dir, Some((&record.method, record.seed)))?;
                }
                return Ok(Claim::Finished(record));
            }
            // Run again from the start: what else the attempt left is not to be trusted.
            Finished::Damaged { path, reason } => {
                super::finished::warn_rerun(&path, &reason);
                afresh = true;
            }
            Finished::Missing => {}
        }
    }
    if afresh {
        clear(dir)?;
    }
    Ok(Claim::Locked(lock))
}

/// The progress of an interrupted run restored into `learner`, or a fresh start.
fn resume(
    dir: &std::path::Path,
    learner: &mut Learner<'_>,
    needs: Needs,
) -> Result<Progress, TrainError> {
    match state::restore(dir, learner)? {
        Some(progress) => {
            tracing::info!(next_epoch = progress.epochs + 1, "resuming");
            // Epoch 0's line is there when the start model was a candidate.
            let first = usize::from(!needs.source_model);
            truncate_lines(&dir.join("metrics.jsonl"), first, progress.epochs)?;
            Ok(progress)
        }
        None => {
            clear(dir)?;
            Ok(Progress::start())
        }
    }
}

/// The target model's training, fixed for the run: its rows, its selection, its probe, and
/// where it writes.
struct TargetTraining<'a> {
    exp: &'a crate::config::Experiment,
    inputs: &'a Inputs,
    needs: Needs,
    dir: &'a std::path::Path,
    metrics: PathBuf,
    phase: Phase<'a>,
    probe: Option<Probe<'a>>,
    /// The table and rows the epoch is selected on.
    select: (&'a crate::data::Table, Option<&'a [u32]>),
    /// metrics.jsonl names the selection score for what it is.
    score_key: &'static str,
    device: &'a candle_core::Device,
    /// When this session of the run started, and the seconds of its earlier sessions.
    started: Instant,
    earlier_seconds: f64,
}

impl<'a> TargetTraining<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        exp: &'a crate::config::Experiment,
        inputs: &'a Inputs,
        needs: Needs,
        dir: &'a std::path::Path,
        source_checkpoint: Option<&std::path::Path>,
        device: &'a candle_core::Device,
        started: Instant,
        earlier_seconds: f64,
    ) -> Result<Self, TrainError> {
        let select = match exp.train.select_on {
            SelectOn::Valid => (&inputs.target.train, Some(inputs.split.valid.as_slice())),
            SelectOn::Test => (&inputs.target.test, None),
        };
        let source_rows = inputs.source.as_ref().zip(inputs.holdout.as_ref());
        let phase = Phase {
            name: "target training",
            lr: target_lr(exp, needs),
            table: &inputs.target.train,
            rows: &inputs.split.train,
            batch_size: exp.train.target_batch_size,
            shuffle: "shuffle/target",
            dropout: "dropout/target",
            source: source_rows
                .filter(|_| needs.source_rows)
                .map(|(s, (_, pool))| (&s.train, pool.as_slice(), exp.data.source_fraction)),
            source_statistics: exp.adapt.source_batchnorm == SourceBatchNorm::Update,
            device,
        };
        let probe = match source_rows {
            Some((source, (held_out, _))) if inputs.probing => {
                let rows = ProbeRows {
                    source: (&source.train, held_out),
                    target: &inputs.target.train,
                    valid: &inputs.split.valid,
                    train: &inputs.split.train,
                };
                Some(alignment_probe(
                    exp,
                    &inputs.schema,
                    rows,
                    source_checkpoint,
                    device,
                )?)
            }
            _ => None,
        };
        let score_key = match exp.train.select_metric {
            SelectMetric::Mean => "valid_mean_auc",
            _ => "valid_score",
        };
        Ok(TargetTraining {
            exp,
            inputs,
            needs,
            dir,
            metrics: dir.join("metrics.jsonl"),
            phase,
            probe,
            select,
            score_key,
            device,
            started,
            earlier_seconds,
        })
    }

    /// The model's AUCs on the selection rows and its selection score.
    fn validate(&self, model: &Model) -> Result<(Evaluation, f64), TrainError> {
        let (table, rows) = self.select;
        let valid = self.evaluate(model, table, rows)?;
        let score = valid.score(&self.exp.train.select_metric, "validation")?;
        Ok((valid, score))
    }

    fn evaluate(
        &self,
        model: &Model,
        table: &crate::data::Table,
        rows: Option<&[u32]>,
    ) -> Result<Evaluation, TrainError> {
        evaluate(
            model,
            table,
            rows,
            &self.inputs.schema.labels,
            self.exp.train.batch_size,
            self.exp.train.auc,
            self.device,
        )
    }

    /// Trains the epochs left to the run, each validated, logged and checkpointed; false
    /// when `stop_after_epochs` stopped it before the end.
    fn run(
        &self,
        learner: &mut Learner<'_>,
        progress: &mut Progress,
        options: &RunOptions,
    ) -> Result<bool, TrainError> {
        let exp = self.exp;
        // This session's seconds of target training and of its alignment diagnostics (probe
        // and gradient ratio).
        let training = Instant::now();
        let mut diagnostics = 0.0;
        if self.needs.source_model && progress.epochs == 0 && progress.stopping.best_epoch.is_none()
        {
            diagnostics += self.start_candidate(learner, progress)?;
        }
        let passes = super::epoch::passes_per_epoch(
            self.inputs.split.train.len(),
            exp.train.target_batch_size,
            exp.train.steps_per_epoch,
        );
        let task_loss = weighted_task_loss(&self.inputs.weights);
        let bar = progress_bar(options.progress, "target");
        let mut session_epochs = 0;
        while self.needs.training && !progress.finished && progress.epochs < exp.train.epochs {
            let epoch = progress.epochs + 1;
            bar.set_message(format!("epoch {epoch}"));
            let first = progress.epochs as u64 * passes;
            let stats = run_epoch(
                learner.model,
                learner.optimizer,
                learner.adaptation,
                &self.phase,
                &task_loss,
                exp.train.seed,
                first..first + passes,
                &bar,
            )?;
            let (valid, score) = self.validate(learner.model)?;
            bar.suspend(|| {
                tracing::info!(
                    epoch,
                    task_loss = stats.task_loss,
                    loss = stats.loss,
                    valid_mean_auc = score,
                    "epoch"
                )
            });
            let line = serde_json::json!({"epoch": epoch, "train": stats, "valid": valid, self.score_key: score});
            diagnostics += self.log_epoch(line, learner)? + stats.ratio_seconds;
            if progress.end_epoch(epoch, score, exp.train.patience, exp.train.epochs) {
                learner.model.save(&self.dir.join("best.safetensors"))?;
            }
            self.save(learner, progress)?;
            session_epochs += 1;
            if options
                .stop_after_epochs
                .is_some_and(|n| session_epochs >= n)
                && !progress.finished
            {
                bar.finish_and_clear();
                return Ok(false);
            }
        }
        bar.finish_and_clear();
        tracing::info!(
            seconds = diagnostics,
            share = diagnostics / training.elapsed().as_secs_f64().max(1e-9),
            "alignment diagnostics (probe and term gradient ratio) in this session's target training"
        );
        Ok(true)
    }

    /// Epoch 0: the source model the target model starts from is the first candidate, so
    /// that a method whose training only hurts falls back to its start. (A fresh
    /// initialisation is no candidate: its score is that of a random projection.) Returns
    /// the probe's seconds.
    fn start_candidate(
        &self,
        learner: &mut Learner<'_>,
        progress: &mut Progress,
    ) -> Result<f64, TrainError> {
        let (valid, score) = self.validate(learner.model)?;
        tracing::info!(epoch = 0, valid_mean_auc = score, "start model");
        let line = serde_json::json!({"epoch": 0, "valid": valid, self.score_key: score});
        let seconds = self.log_epoch(line, learner)?;
        progress.stopping.observe(0, score);
        learner.model.save(&self.dir.join("best.safetensors"))?;
        state::save(self.dir, learner, progress)?;
        Ok(seconds)
    }

    /// Appends an epoch's `line` to metrics.jsonl, with the model's alignment now where the
    /// run probes it; returns the seconds the probe took.
    fn log_epoch(
        &self,
        mut line: serde_json::Value,
        learner: &Learner<'_>,
    ) -> Result<f64, TrainError> {
        let timer = Instant::now();
        if let Some(probe) = &self.probe {
            line["alignment"] = probe.measure(learner.model, &*learner.adaptation)?;
        }
        let seconds = timer.elapsed().as_secs_f64();
        append_line(&self.metrics, &line)?;
        Ok(seconds)
    }

    /// Saves the learner's state with the seconds of every session so far.
    fn save(&self, learner: &Learner<'_>, progress: &mut Progress) -> Result<(), TrainError> {
        progress.seconds = self.earlier_seconds + self.started.elapsed().as_secs_f64();
        state::save(self.dir, learner, progress)
    }

    /// Tests the selected model and writes the run's record, last of its files.
    fn finish(
        &self,
        resolved: &Resolved,
        model: &Model,
        mut progress: Progress,
        source_checkpoint: Option<PathBuf>,
    ) -> Result<RunRecord, TrainError> {
        let exp = self.exp;
        model.load(&self.dir.join("best.safetensors"))?;
        let test = self.evaluate(model, &self.inputs.target.test, None)?;
        progress.finished = true;
        progress.seconds = self.earlier_seconds + self.started.elapsed().as_secs_f64();
        let split = &self.inputs.split;
        let record = RunRecord {
            experiment: experiment_name(resolved),
            config_hash: resolved.hash.clone(),
            method: exp.adapt.method.name.clone(),
            seed: exp.train.seed,
            device: crate::device::describe(self.device),
            gpu: crate::device::gpu(self.device),
            git_commit: git_commit(),
            versions: serde_json::json!({"daa": env!("CARGO_PKG_VERSION"), "candle": env!("CANDLE_VERSION_OF_DAA")}),
            target_train_rows: split.train.len(),
            valid_rows: split.valid.len(),
            best_epoch: progress.stopping.best_epoch,
            best_valid_mean_auc: progress
                .stopping
                .best_epoch
                .map(|_| progress.stopping.best_score),
            select_metric: (exp.train.select_metric != SelectMetric::Mean)
                .then(|| exp.train.select_metric.clone()),
            validation: Some(exp.validation()),
            epochs_run: progress.epochs,
            source_checkpoint,
            test,
            wall_seconds: progress.seconds,
            alignment: self
                .probe
                .as_ref()
                .map(|_| alignment_record(&self.metrics, progress.stopping.best_epoch))
                .transpose()?
                .flatten(),
        };
        if self.needs.training {
            write_json(&self.dir.join("progress.json"), &progress)?;
            super::curves::write(self.dir, Some((&record.method, record.seed)))?;
        }
        // Last: a result.json means every file of the run is written.
        write_json(&self.dir.join("result.json"), &record)?;
        Ok(record)
    }
}

/// Runs an experiment into its run directory: reuses a finished result, pretrains the
/// source model where the method starts from one, trains the target model (resuming an
/// interrupted run), tests the selected epoch and writes the record.
pub fn run(resolved: &Resolved, options: &RunOptions) -> Result<RunResult, TrainError> {
    let started = Instant::now();
    let exp = &resolved.experiment;
    let method = crate::adapt::method(&exp.adapt.method.kind).ok_or_else(|| {
        TrainError::Invalid(format!("unknown method kind `{}`", exp.adapt.method.kind))
    })?;
    let device = exp.train.device.open()?;
    let _kernels = crate::nn::use_kernels(exp.train.kernels);
    let dir = run_dir(resolved);
    let _lock = match claim(&dir, options)? {
        Claim::Finished(record) => {
            return Ok(RunResult {
                dir,
                record: Some(*record),
                reused: true,
            });
        }
        Claim::Locked(lock) => lock,
    };
    crate::atomic::write(
        &dir.join("config.resolved.toml"),
        crate::config::render(resolved, false).as_bytes(),
    )?;
    let needs = (method.needs)(&exp.adapt.method);
    let inputs = Inputs::open(exp, needs, &dir)?;
    let source_checkpoint = match (&inputs.source, needs.source_model) {
        (Some(source), true) => match pretrain(exp, &inputs.schema, source, &device, options)? {
            Some(checkpoint) => Some(checkpoint),
            None => return Ok(RunResult::unfinished(dir)),
        },
        _ => None,
    };
    if options.pretrain_only {
        return Ok(RunResult::unfinished(dir));
    }

    let model = Model::new(exp, &inputs.schema, &device, exp.train.seed)?;
    if let Some(path) = &source_checkpoint {
        model.load(path)?;
    }
    let mut optimizer = target_optimizer(exp, &model, needs);
    let mut adaptation = (method.build)(&Setup {
        experiment: exp,
        schema: &inputs.schema,
        device: &device,
        feature_width: model.backbone.feature_width(),
        feature_blocks: model.backbone.feature_blocks(),
        source_checkpoint: source_checkpoint.as_deref(),
    })?;
    let mut learner = Learner {
        model: &model,
        optimizer: &mut optimizer,
        adaptation: adaptation.as_mut(),
    };
    let mut progress = resume(&dir, &mut learner, needs)?;
    let training = TargetTraining::new(
        exp,
        &inputs,
        needs,
        &dir,
        source_checkpoint.as_deref(),
        &device,
        started,
        progress.seconds,
    )?;
    if !training.run(&mut learner, &mut progress, options)? {
        return Ok(RunResult::unfinished(dir));
    }
    let record = training.finish(resolved, &model, progress, source_checkpoint)?;
    Ok(RunResult {
        dir,
        record: Some(record),
        reused: false,
    })
}
