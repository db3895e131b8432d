//! Source pretraining (MTReclib-style supervised training on the source domain), once per
//! source setup: the checkpoint under `<runs_dir>/_source/<key hash>/` serves every method
//! and experiment that shares the setup. One process pretrains while others wait for its
//! checkpoint (a lock on the directory); an interrupted pretraining continues from its last
//! epoch, bit-identically, the next time any run needs it.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::TrainError;
use super::driver::{Epochs, Schedule, drive, resume};
use super::epoch::{Phase, run_epoch};
use super::evaluate::evaluate;
use super::options::RunOptions;
use super::outputs::{progress_bar, write_json};
use super::recorder::{EpochRecord, Recorders};
use super::state::{self, Learner, Progress};
use crate::adapt::Supervised;
use crate::config::Experiment;
use crate::data::Schema;
use crate::data::batch::epoch_order;
use crate::data::dataset::Splits;
use crate::models::model::Model;
use crate::nn::optim::Adam;

/// The source's training rows split into the pretraining validation rows (at most
/// `data.valid_rows`, a tenth of the rows, seeded) and the rest. Pretraining trains on the
/// rest and selects on the validation rows; adaptation draws its source batches from the
/// rest too, so the validation rows stay unseen for the alignment probe.
pub fn source_holdout(exp: &Experiment, table: &crate::data::Table) -> (Vec<u32>, Vec<u32>) {
    let all: Vec<u32> = (0..table.rows() as u32).collect();
    let mut shuffled = epoch_order(&all, exp.train.seed, "source/holdout", 0, true);
    let holdout = exp.data.valid_rows.min(shuffled.len() / 10).max(1);
    let train = shuffled.split_off(holdout);
    (shuffled, train)
}

/// Pretrains the source model, or reuses a checkpoint from an earlier run with the same
/// source setup. Returns the checkpoint's path (`None`: stopped early as
/// [`RunOptions::stop_pretraining_after`] asks).
pub fn pretrain(
    exp: &Experiment,
    schema: &Schema,
    source: &Splits,
    device: &Device,
    options: &RunOptions,
) -> Result<Option<PathBuf>, TrainError> {
    let key = pretraining_key(exp, source, device);
    let hash = crate::config::digest(&key);
    let dir = exp.output.runs_dir.join("_source").join(hash);
    let checkpoint = dir.join("model.safetensors");
    let finished = || {
        let done = checkpoint.is_file();
        if done {
            tracing::info!(checkpoint = %checkpoint.display(), "reusing the pretrained source model");
        }
        done
    };
    // A finished source model is used without the writer's lock (it is written last, by a
    // rename, and checked where it is loaded): read-only storage serves it. Under the lock,
    // another process may have finished it meanwhile.
    if finished() {
        return Ok(Some(checkpoint));
    }
    let _lock = crate::lock::lock_dir(&dir, "this source pretraining")?;
    if finished() {
        return Ok(Some(checkpoint));
    }
    let Some(progress) = train_source(exp, schema, source, device, options, &dir)? else {
        return Ok(None);
    };
    publish(&dir, &checkpoint, &key, &progress)?;
    Ok(Some(checkpoint))
}

/// What a source model depends on: the source rows by content (a CSV's checksum, a
/// generator's recipe and version), not by where they are stored, and the settings that
/// shape its training.
fn pretraining_key(exp: &Experiment, source: &Splits, device: &Device) -> serde_json::Value {
    serde_json::json!({
        "source_rows": source.train.header.source, "schema": source.train.header.schema_hash,
        "backbone": exp.model.backbone, "embedding": exp.model.embedding,
        "pretrain": exp.pretrain, "batch_size": exp.train.batch_size, "seed": exp.train.seed,
        "device": crate::device::describe(device), "valid_rows": exp.data.valid_rows,
        "numerics": crate::config::NUMERICS_VERSION,
    })
}

/// Source pretraining's epochs: the source rows, selected on the held-out ones.
struct SourceEpochs<'a> {
    exp: &'a Experiment,
    schema: &'a Schema,
    source: &'a Splits,
    valid: &'a [u32],
    phase: Phase<'a>,
    dir: &'a Path,
}

impl Epochs for SourceEpochs<'_> {
    fn phase(&self) -> &'static str {
        "source"
    }

    fn epoch(
        &self,
        learner: &mut Learner<'_>,
        epoch: usize,
        bar: &indicatif::ProgressBar,
    ) -> Result<EpochRecord, TrainError> {
        let timer = std::time::Instant::now();
        let index = (epoch - 1) as u64;
        let stats = run_epoch(learner, &self.phase, index..index + 1, bar)?;
        let exp = self.exp;
        let valid = evaluate(
            learner.model,
            &self.source.train,
            Some(self.valid),
            &self.schema.labels,
            exp.train.batch_size,
            exp.train.auc,
            self.phase.device,
        )?;
        let score = valid.mean_auc("source validation")?;
        Ok(EpochRecord {
            epoch,
            train: Some(stats),
            valid,
            score,
            score_key: "valid_mean_auc",
            alignment: None,
            seconds: timer.elapsed().as_secs_f64(),
        })
    }

    fn save(&self, learner: &Learner<'_>, progress: &mut Progress) -> Result<(), TrainError> {
        state::save(self.dir, learner, progress)
    }
}

/// Trains the source model in `dir` (locked), from its last epoch where an earlier attempt
/// stopped, until early stopping ends it; its best epoch is `dir/best.safetensors`, its
/// epochs the lines of `dir/metrics.jsonl`. `None` where `stop_pretraining_after` stopped
/// it first.
fn train_source(
    exp: &Experiment,
    schema: &Schema,
    source: &Splits,
    device: &Device,
    options: &RunOptions,
    dir: &Path,
) -> Result<Option<Progress>, TrainError> {
    let seed = exp.train.seed;
    let (valid, train) = source_holdout(exp, &source.train);
    let model = Model::new(exp, schema, device, seed)?;
    let p = &exp.pretrain;
    let mut optimizer = Adam::new(model.params.trainable(), p.optimizer, p.lr, p.weight_decay);
    // The unweighted sum of the task losses, as MTReclib trains.
    let summed = |out: &crate::models::Output, labels: &candle_core::Tensor| {
        let losses = out.task_losses(labels)?;
        let mut loss = losses[0].clone();
        for l in &losses[1..] {
            loss = (loss + l)?;
        }
        Ok(loss)
    };
    let epochs = SourceEpochs {
        exp,
        schema,
        source,
        valid: &valid,
        phase: Phase {
            name: "source pretraining",
            lr: ("pretrain.lr", p.lr),
            table: &source.train,
            rows: &train,
            batch_size: exp.train.batch_size,
            shuffle: "shuffle/source",
            dropout: "dropout/source",
            source: None,
            source_statistics: false,
            device,
            task_loss: Box::new(summed),
            seed,
        },
        dir,
    };
    let mut learner = Learner {
        model: &model,
        optimizer: &mut optimizer,
        adaptation: &mut Supervised,
    };
    let mut progress = match resume(dir, &mut learner, 1)? {
        Some(progress) => progress,
        None => {
            // A first epoch killed before its state leaves a line without one.
            let _ = std::fs::remove_file(dir.join("metrics.jsonl"));
            Progress::start()
        }
    };
    let bar = progress_bar(options.progress, "source");
    let mut recorders = Recorders::standard(dir, &bar, exp.output.tensorboard)?;
    let schedule = Schedule {
        epochs: p.epochs,
        patience: p.patience,
        interrupt_after: options.stop_pretraining_after,
    };
    let finished = drive(
        &epochs,
        &mut learner,
        &mut progress,
        &schedule,
        dir,
        &mut recorders,
        &bar,
    )?;
    Ok(finished.then_some(progress))
}

/// Publishes the pretrained model as `checkpoint` (a rename: whole or absent) beside its
/// record, and removes the training's states.
fn publish(
    dir: &Path,
    checkpoint: &Path,
    key: &serde_json::Value,
    progress: &Progress,
) -> Result<(), TrainError> {
    let best_path = dir.join("best.safetensors");
    let stopping = &progress.stopping;
    write_json(
        &dir.join("source.json"),
        &serde_json::json!({"valid_mean_auc": stopping.best_score, "best_epoch": stopping.best_epoch, "epochs": progress.epochs, "key": key}),
    )?;
    std::fs::rename(&best_path, checkpoint).map_err(TrainError::io(checkpoint))?;
    state::remove_states(dir)?;
    for done in ["progress.json", "last.safetensors"] {
        let _ = std::fs::remove_file(dir.join(done));
    }
    Ok(())
}
