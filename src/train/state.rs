//! The resumable state of a target training run: one safetensors file per checkpoint with
//! the model, its optimiser's moments and the method's own state, and progress.json naming
//! it (written last, so a crash at any point leaves a consistent pair).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::outputs::json_text;
use super::stopping::EarlyStopping;
use super::timing::Timing;
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
    /// Those seconds by phase (target training; see [`Timing`]).
    #[serde(default, skip_serializing_if = "Timing::is_empty")]
    pub timing: Timing,
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
            timing: Timing::default(),
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

    /// Whether an unfinished run stops here as an interruption would: `limit` (a test's
    /// `stop_after_epochs` or `stop_pretraining_after`) epochs of this session are done.
    pub fn interrupted(&self, session_epochs: usize, limit: Option<usize>) -> bool {
        !self.finished && limit.is_some_and(|n| session_epochs >= n)
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
    let name = state_name(progress.epochs);
    let path = dir.join(&name);
    let previous = std::mem::replace(&mut progress.state, name);
    // The state carries the very bytes of progress.json, so that resuming can tell an
    // edited or damaged progress.json from the one written with it.
    let text = json_text(progress);
    let bytes = text.as_bytes().to_vec();
    let len = bytes.len();
    tensors.insert(
        PROGRESS.into(),
        Tensor::from_vec(bytes, len, &candle_core::Device::Cpu)?,
    );
    crate::nn::checkpoint::save(&tensors, &path)?;
    crate::whole_file::write(&dir.join("progress.json"), text.as_bytes())?;
    if !previous.is_empty() && previous != progress.state {
        let _ = std::fs::remove_file(dir.join(previous));
    }
    learner.model.save(&dir.join("last.safetensors"))?;
    Ok(())
}

/// Removes every state file of `dir` (a run begun afresh, or a pretraining that finished).
pub fn remove_states(dir: &Path) -> Result<(), TrainError> {
    remove_named(dir, |name| {
        name.starts_with("state-epoch") && name.ends_with(".safetensors")
    })
}

/// Removes every file of `dir` whose name `matches`.
pub fn remove_named(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if matches(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path()).map_err(TrainError::io(&entry.path()))?;
        }
    }
    Ok(())
}

/// The name of a state file of `epochs` finished epochs, in its run directory.
fn state_name(epochs: usize) -> String {
    format!("state-epoch{epochs}.safetensors")
}

/// A value from a file, for a message: quoted and escaped, its first 80 characters.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

/// The state's copy of progress.json.
const PROGRESS: &str = "progress.json";

/// The progress of an interrupted run in `dir`, with the learner restored, if there is one.
/// Everything it reads is checked: progress.json must be the one written with the state it
/// names (a copy travels in the state), the state must lie in `dir`, and the selected
/// model (`best.safetensors`) must be there; otherwise the error names the file and says
/// to start afresh.
pub fn restore(dir: &Path, learner: &mut Learner<'_>) -> Result<Option<Progress>, TrainError> {
    let path = dir.join("progress.json");
    let refuse = |what: String| {
        TrainError::Invalid(format!(
            "{what}; the run cannot resume: run it without --resume to start afresh"
        ))
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::io(&path)(e)),
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| refuse(format!("{} is not UTF-8 text", path.display())))?;
    let progress: Progress =
        serde_json::from_str(&text).map_err(|e| refuse(format!("{}: {e}", path.display())))?;
    if progress.state != state_name(progress.epochs) {
        return Err(refuse(format!(
            "{} names the state {}, but the state of its {} epochs is `{}` in the run \
             directory (the file was edited or damaged)",
            path.display(),
            shown(&progress.state),
            progress.epochs,
            state_name(progress.epochs)
        )));
    }
    let state = dir.join(&progress.state);
    let tensors = crate::nn::checkpoint::load(&state)?;
    let written = tensors
        .get(PROGRESS)
        .and_then(|t| t.to_vec1::<u8>().ok())
        .unwrap_or_default();
    if written != text.as_bytes() {
        return Err(refuse(format!(
            "{} is not the one written with {} (edited or damaged)",
            path.display(),
            state.display()
        )));
    }
    let best = dir.join("best.safetensors");
    if progress.stopping.best_epoch.is_some() && !best.is_file() {
        return Err(refuse(format!(
            "{} (the model selected so far) is missing",
            best.display()
        )));
    }
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
