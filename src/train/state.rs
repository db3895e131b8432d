//! The resumable state of a target training run: one safetensors file per checkpoint with
//! the model, the adversaries and both optimisers' moments, and progress.json naming it
//! (written last, so a crash at any point leaves a consistent pair).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::epoch::Learner;
use super::outputs::write_json;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// The first epoch still to run.
    pub next_epoch: usize,
    pub best_epoch: Option<usize>,
    pub best_score: f64,
    pub bad_epochs: usize,
    pub finished: bool,
    /// Seconds spent in earlier sessions of this run.
    pub seconds: f64,
    /// The state file this progress belongs to.
    pub state: String,
}

impl Progress {
    pub fn start() -> Self {
        Progress {
            next_epoch: 0,
            best_epoch: None,
            best_score: f64::NEG_INFINITY,
            bad_epochs: 0,
            finished: false,
            seconds: 0.0,
            state: String::new(),
        }
    }
}

fn prefixed(
    prefix: &str,
    tensors: impl IntoIterator<Item = (String, Tensor)>,
) -> impl Iterator<Item = (String, Tensor)> {
    tensors
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), v))
}

/// Saves the learner and `progress` (whose `state` is set here) into `dir`.
pub fn save(dir: &Path, learner: &Learner, progress: &mut Progress) -> Result<(), TrainError> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.extend(prefixed("model.", learner.model.params.state_dict()?));
    tensors.extend(prefixed("optimizer.", learner.optimizer.state()?));
    if let Some(a) = &learner.adversaries {
        tensors.extend(prefixed("adversaries.", a.params.state_dict()?));
        tensors.extend(prefixed("adversaries_optimizer.", a.optimizer.state()?));
    }
    let name = format!("state-epoch{}.safetensors", progress.next_epoch);
    let path = dir.join(&name);
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(TrainError::io(&path))?;
    let previous = std::mem::replace(&mut progress.state, name);
    write_json(&dir.join("progress.json"), progress)?;
    if !previous.is_empty() && previous != progress.state {
        let _ = std::fs::remove_file(dir.join(previous));
    }
    learner.model.save(&dir.join("last.safetensors"))?;
    Ok(())
}

/// The progress of an interrupted run in `dir`, with the learner restored, if there is one.
pub fn restore(dir: &Path, learner: &mut Learner) -> Result<Option<Progress>, TrainError> {
    let path: PathBuf = dir.join("progress.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let progress: Progress = serde_json::from_str(&text)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
    let tensors =
        candle_core::safetensors::load(dir.join(&progress.state), &candle_core::Device::Cpu)?;
    let part = |prefix: &str| -> HashMap<String, Tensor> {
        tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
            .collect()
    };
    let shown = dir.join(&progress.state).display().to_string();
    learner
        .model
        .params
        .load_state_dict(&part("model."), &shown)?;
    learner.optimizer.load_state(&part("optimizer."))?;
    if let Some(a) = &mut learner.adversaries {
        a.params.load_state_dict(&part("adversaries."), &shown)?;
        a.optimizer.load_state(&part("adversaries_optimizer."))?;
    }
    Ok(Some(progress))
}
