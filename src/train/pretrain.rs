//! Source pretraining (MTReclib-style supervised training on the source domain), once per
//! source setup: the checkpoint under `<runs_dir>/_source/<key hash>/` serves every method
//! and experiment that shares the setup.

use std::path::PathBuf;

use candle_core::Device;

use super::epoch::{Phase, run_epoch};
use super::evaluate::evaluate;
use super::outputs::{progress_bar, write_json};
use super::stopping::EarlyStopping;
use super::{RunOptions, TrainError};
use crate::adapt::Supervised;
use crate::config::Experiment;
use crate::data::Schema;
use crate::data::batch::epoch_order;
use crate::data::dataset::Splits;
use crate::models::model::Model;
use crate::nn::optim::Adam;

/// Pretrains the source model, or reuses a checkpoint from an earlier run with the same
/// source setup. Returns the checkpoint's path.
pub fn pretrain(
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
        "rows_version": exp.data.source.version,
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
    let phase = Phase {
        table: &source.train,
        rows: train,
        batch_size: exp.train.batch_size,
        shuffle: "shuffle/source",
        dropout: "dropout/source",
        source: None,
        device,
    };
    // The unweighted sum of the task losses, as MTReclib trains.
    let summed = |out: &crate::models::Output, labels: &candle_core::Tensor| {
        let losses = out.task_losses(labels)?;
        let mut loss = losses[0].clone();
        for l in &losses[1..] {
            loss = (loss + l)?;
        }
        Ok(loss)
    };
    let bar = progress_bar(options.progress, "source");
    let mut stopping = EarlyStopping::default();
    let best_path = dir.join("best.safetensors");
    for index in 0..p.epochs {
        let epoch = index + 1;
        bar.set_message(format!("epoch {epoch}"));
        let stats = run_epoch(
            &model,
            &mut optimizer,
            &mut Supervised,
            &phase,
            &summed,
            seed,
            index as u64,
            &bar,
        )?;
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
                epoch,
                task_loss = stats.task_loss,
                valid_mean_auc = score,
                "source pretraining"
            )
        });
        if stopping.observe(epoch, score) {
            model.save(&best_path)?;
        } else if stopping.exhausted(p.patience) {
            break;
        }
    }
    bar.finish_and_clear();
    write_json(
        &dir.join("source.json"),
        &serde_json::json!({"valid_mean_auc": stopping.best_score, "best_epoch": stopping.best_epoch, "key": key}),
    )?;
    std::fs::rename(&best_path, &checkpoint).map_err(TrainError::io(&checkpoint))?;
    Ok(checkpoint)
}
