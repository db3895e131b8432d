//! The target model's training: the data a run trains, selects and probes on, its epochs
//! (validated, logged, checkpointed) and its test and record.

use std::path::PathBuf;
use std::time::Instant;

use super::TrainError;
use super::driver::{Epochs, Schedule, drive};
use super::epoch::{Phase, run_epoch};
use super::evaluate::{Evaluation, evaluate};
use super::options::RunOptions;
use super::outputs::{progress_bar, write_json};
use super::pretrain::source_holdout;
use super::probe::{Probe, ProbeRows};
use super::record::{RunRecord, experiment_name, git_commit};
use super::recorder::{EpochRecord, Recorders};
use super::state::{self, Learner, Progress};
use super::timing::Timing;
use crate::adapt::Needs;
use crate::adapt::weights::Config as Weights;
use crate::config::Resolved;
use crate::config::schema::{SelectMetric, SelectOn, SourceBatchNorm};
use crate::data::dataset::{Splits, open};
use crate::data::split;
use crate::models::Output;
use crate::models::model::Model;
use crate::nn::optim::Adam;

fn open_splits(component: &crate::config::Component) -> Result<Splits, TrainError> {
    Ok(open(
        &component.name,
        &component.description,
        &component.kind,
        &component.params,
    )?)
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
pub(super) fn target_optimizer(
    exp: &crate::config::Experiment,
    model: &Model,
    needs: Needs,
) -> Adam {
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
pub(super) struct Inputs {
    pub(super) schema: crate::data::Schema,
    weights: Weights,
    target: Splits,
    split: split::Split,
    /// The source domain, where the method or the alignment probe uses it.
    pub(super) source: Option<Splits>,
    /// The source rows held out of training (the probe's reals) and the rows it trains on.
    holdout: Option<(Vec<u32>, Vec<u32>)>,
    probing: bool,
}

impl Inputs {
    pub(super) fn open(
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

/// When this session of a run started, the seconds of its earlier sessions (in all and by
/// phase), and this session's phases before target training (data, source model, setup).
#[derive(Debug, Clone)]
pub(super) struct Clock {
    pub(super) started: Instant,
    pub(super) earlier_seconds: f64,
    pub(super) earlier_timing: Timing,
    pub(super) session: Timing,
}

impl Clock {
    /// Seconds over every session of the run so far.
    fn seconds(&self) -> f64 {
        self.earlier_seconds + self.started.elapsed().as_secs_f64()
    }
}

/// The target model's training, fixed for the run: its rows, its selection, its probe, and
/// where it writes.
pub(super) struct TargetTraining<'a> {
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
    clock: Clock,
    /// Passes over the target rows per epoch.
    passes: u64,
    /// This session's seconds by phase (the earlier sessions' are in the clock).
    timing: std::cell::RefCell<Timing>,
}

impl<'a> TargetTraining<'a> {
    pub(super) fn new(
        exp: &'a crate::config::Experiment,
        inputs: &'a Inputs,
        needs: Needs,
        dir: &'a std::path::Path,
        source_checkpoint: Option<&std::path::Path>,
        device: &'a candle_core::Device,
        clock: Clock,
    ) -> Result<Self, TrainError> {
        let timer = Instant::now();
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
            task_loss: Box::new(weighted_task_loss(&inputs.weights)),
            seed: exp.train.seed,
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
        let mut session = clock.session.clone();
        session.add("setup", timer.elapsed().as_secs_f64());
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
            clock,
            passes: super::epoch::passes_per_epoch(
                inputs.split.train.len(),
                exp.train.target_batch_size,
                exp.train.steps_per_epoch,
            ),
            timing: std::cell::RefCell::new(session),
        })
    }

    /// The model's AUCs on the selection rows and its selection score.
    fn validate(&self, model: &Model) -> Result<(Evaluation, f64), TrainError> {
        let timer = Instant::now();
        let (table, rows) = self.select;
        let valid = self.evaluate(model, table, rows)?;
        let score = valid.score(&self.exp.train.select_metric, "validation")?;
        self.spent("validation", timer.elapsed().as_secs_f64());
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

    /// Trains the epochs left to the run, each validated, recorded and checkpointed; false
    /// when `stop_after_epochs` stopped it before the end.
    pub(super) fn run(
        &self,
        learner: &mut Learner<'_>,
        progress: &mut Progress,
        options: &RunOptions,
    ) -> Result<bool, TrainError> {
        let exp = self.exp;
        let training = Instant::now();
        let bar = progress_bar(options.progress, "target");
        let mut recorders = Recorders::standard(self.dir, &bar, exp.output.tensorboard)?;
        if self.needs.source_model && progress.epochs == 0 && progress.stopping.best_epoch.is_none()
        {
            self.start_candidate(learner, progress, &mut recorders)?;
        }
        if !self.needs.training {
            return Ok(true);
        }
        let schedule = Schedule {
            epochs: exp.train.epochs,
            patience: exp.train.patience,
            interrupt_after: options.stop_after_epochs,
        };
        let finished = drive(
            self,
            learner,
            progress,
            &schedule,
            self.dir,
            &mut recorders,
            &bar,
        )?;
        let diagnostics: f64 = (self.timing.borrow().0.iter())
            .filter(|(phase, _)| phase.contains("diagnostics"))
            .map(|(_, seconds)| seconds)
            .sum();
        tracing::info!(
            seconds = diagnostics,
            share = diagnostics / training.elapsed().as_secs_f64().max(1e-9),
            "alignment diagnostics (probe and term gradient ratio) in this session's target training"
        );
        Ok(finished)
    }

    /// Epoch 0: the source model the target model starts from is the first candidate, so
    /// that a method whose training only hurts falls back to its start. (A fresh
    /// initialisation is no candidate: its score is that of a random projection.)
    fn start_candidate(
        &self,
        learner: &mut Learner<'_>,
        progress: &mut Progress,
        recorders: &mut Recorders,
    ) -> Result<(), TrainError> {
        let timer = Instant::now();
        let (valid, score) = self.validate(learner.model)?;
        let record = EpochRecord {
            epoch: 0,
            train: None,
            valid,
            score,
            score_key: self.score_key,
            alignment: self.probe(learner)?,
            seconds: timer.elapsed().as_secs_f64(),
        };
        let records = Instant::now();
        recorders.epoch(self.phase(), &record)?;
        self.spent("records", records.elapsed().as_secs_f64());
        progress.stopping.observe(0, score);
        let best = Instant::now();
        learner.model.save(&self.dir.join("best.safetensors"))?;
        self.spent("checkpoints", best.elapsed().as_secs_f64());
        Epochs::save(self, learner, progress)
    }

    /// The model's alignment now, where the run probes it (its seconds counted as
    /// diagnostics).
    fn probe(&self, learner: &Learner<'_>) -> Result<Option<serde_json::Value>, TrainError> {
        let Some(probe) = &self.probe else {
            return Ok(None);
        };
        let timer = Instant::now();
        let alignment = probe.measure(learner.model, &*learner.adaptation)?;
        self.spent("diagnostics_probe", timer.elapsed().as_secs_f64());
        Ok(Some(alignment))
    }

    /// Tests the selected model and writes the run's record, last of its files.
    pub(super) fn finish(
        &self,
        resolved: &Resolved,
        model: &Model,
        mut progress: Progress,
        source_checkpoint: Option<PathBuf>,
    ) -> Result<RunRecord, TrainError> {
        let exp = self.exp;
        let timer = Instant::now();
        model.load(&self.dir.join("best.safetensors"))?;
        let test = self.evaluate(model, &self.inputs.target.test, None)?;
        self.spent("test", timer.elapsed().as_secs_f64());
        let alignment = self
            .probe
            .as_ref()
            .map(|_| alignment_record(&self.metrics, progress.stopping.best_epoch))
            .transpose()?
            .flatten();
        // progress.json stays the one saved with the last state, which already says the
        // run is finished: a run stopped before its result resumes here, to this record.
        if self.needs.training {
            let timer = Instant::now();
            let title = (&exp.adapt.method.name, exp.train.seed);
            super::curves::write(self.dir, Some((title.0, title.1)))?;
            self.spent("records", timer.elapsed().as_secs_f64());
        }
        progress.seconds = self.clock.seconds();
        let timing =
            (self.clock.earlier_timing.merged(&self.timing.borrow())).closed(progress.seconds);
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
            timing: Some(timing),
            alignment,
        };
        // Last: a result.json means every file of the run is written.
        write_json(&self.dir.join("result.json"), &record)?;
        Ok(record)
    }
}

impl Epochs for TargetTraining<'_> {
    fn phase(&self) -> &'static str {
        "target"
    }

    fn epoch(
        &self,
        learner: &mut Learner<'_>,
        epoch: usize,
        bar: &indicatif::ProgressBar,
    ) -> Result<EpochRecord, TrainError> {
        let timer = Instant::now();
        let first = (epoch - 1) as u64 * self.passes;
        let stats = run_epoch(learner, &self.phase, first..first + self.passes, bar)?;
        // The epoch's passes, less what the diagnostics and the method's own parts took.
        let mut training = timer.elapsed().as_secs_f64() - stats.ratio_seconds;
        self.spent("diagnostics_gradient_ratio", stats.ratio_seconds);
        for (phase, seconds) in learner.adaptation.take_seconds() {
            training -= seconds;
            self.spent(phase, seconds);
        }
        self.spent("training", training);
        let (valid, score) = self.validate(learner.model)?;
        Ok(EpochRecord {
            epoch,
            train: Some(stats),
            valid,
            score,
            score_key: self.score_key,
            alignment: self.probe(learner)?,
            seconds: timer.elapsed().as_secs_f64(),
        })
    }

    /// Saves the learner's state with the seconds of every session so far, by phase.
    fn save(&self, learner: &Learner<'_>, progress: &mut Progress) -> Result<(), TrainError> {
        let timer = Instant::now();
        progress.seconds = self.clock.seconds();
        progress.timing = self.clock.earlier_timing.merged(&self.timing.borrow());
        state::save(self.dir, learner, progress)?;
        self.spent("checkpoints", timer.elapsed().as_secs_f64());
        Ok(())
    }

    fn spent(&self, phase: &'static str, seconds: f64) {
        self.timing.borrow_mut().add(phase, seconds);
    }
}
