//! The resumable state of a target training run: one safetensors file per checkpoint with
//! the model, its optimiser's moments and the method's own state, and progress.json naming
//! it (written last, so a crash at any point leaves a consistent pair).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::outputs::write_json;
use super::stopping::EarlyStopping;
use crate::adapt::Adaptation;
use crate::models::model::Model;
use crate::nn::optim::Adam;
use crate::nn::params::{prefixed, under};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Epochs finished (the next one is `epochs + 1`, counted from 1).
    pub epochs: usize,
    #[serde(flatten)]
    pub stopping: EarlyStopping,
    /// No epoch is left to run: patience ran out or the last epoch is done.
    pub finished: bool,
    /// Seconds spent so far, over all sessions of this run.
    pub seconds: f64,
    /// The state file this progress belongs to.
    pub state: String,
}

impl Progress {
    pub fn start() -> Self {
        Progress {
            epochs: 0,
            stopping: EarlyStopping::default(),
            finished: false,
            seconds: 0.0,
            state: String::new(),
        }
    }
}

impl Progress {
    /// Closes epoch `epoch` (counted from 1) with its validation `score`: true when it is
    /// the best so far (keep this model). The run is finished when `patience` epochs
    /// brought nothing or `epoch` was the `last`.
    pub fn end_epoch(&mut self, epoch: usize, score: f64, patience: usize, last: usize) -> bool {
        let best = self.stopping.observe(epoch, score);
        self.epochs = epoch;
        self.finished = self.stopping.exhausted(patience) || epoch >= last;
        best
    }
}

/// What a target training run learns: the model, its optimiser, the method's state.
pub struct Learner<'a> {
    pub model: &'a Model,
    pub optimizer: &'a mut Adam,
    pub adaptation: &'a mut dyn Adaptation,
}

/// Saves the learner and `progress` (whose `state` is set here) into `dir`.
pub fn save(dir: &Path, learner: &Learner<'_>, progress: &mut Progress) -> Result<(), TrainError> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.extend(prefixed("model.", learner.model.params.state_dict()?));
    tensors.extend(prefixed("optimizer.", learner.optimizer.state()?));
    tensors.extend(learner.adaptation.state()?);
    let name = format!("state-epoch{}.safetensors", progress.epochs);
    let path = dir.join(&name);
    crate::nn::checkpoint::save(&tensors, &path)?;
    let previous = std::mem::replace(&mut progress.state, name);
    write_json(&dir.join("progress.json"), progress)?;
    if !previous.is_empty() && previous != progress.state {
        let _ = std::fs::remove_file(dir.join(previous));
    }
    learner.model.save(&dir.join("last.safetensors"))?;
    Ok(())
}

/// Removes every state file of `dir` (a run begun afresh, or a pretraining that finished).
pub fn remove_states(dir: &Path) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("state-epoch") && name.ends_with(".safetensors") {
            std::fs::remove_file(entry.path()).map_err(TrainError::io(&entry.path()))?;
        }
    }
    Ok(())
}

/// The progress of an interrupted run in `dir`, with the learner restored, if there is one.
pub fn restore(dir: &Path, learner: &mut Learner<'_>) -> Result<Option<Progress>, TrainError> {
    let path = dir.join("progress.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let progress: Progress = serde_json::from_str(&text)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
    let tensors = crate::nn::checkpoint::load(&dir.join(&progress.state))?;
    let shown = dir.join(&progress.state).display().to_string();
    learner
        .model
        .params
        .load_state_dict(&under(&tensors, "model."), &shown)?;
    learner
        .optimizer
        .load_state(&under(&tensors, "optimizer."))?;
    learner.adaptation.load_state(&tensors, &shown)?;
    Ok(Some(progress))
}
