//! The one loop of source pretraining and target training: resume from the last state,
//! then per epoch train and validate ([`Epochs`]), hand the record to the writers, keep the
//! best model, save the state, and stop where patience, the last epoch or an interruption
//! says ([`Schedule`]).

use std::path::Path;

use indicatif::ProgressBar;

use super::TrainError;
use super::outputs::truncate_lines;
use super::recorder::{EpochRecord, Recorders};
use super::state::{self, Learner, Progress};

/// When a phase stops: after `epochs`, after `patience` epochs without a better score, or
/// (a test's interruption) after `interrupt_after` epochs of this session.
pub struct Schedule {
    pub epochs: usize,
    pub patience: usize,
    pub interrupt_after: Option<usize>,
}

/// A phase's epochs, as the driver runs them.
pub trait Epochs {
    /// The phase's name in the records' writers: "source", "target".
    fn phase(&self) -> &'static str;

    /// Trains epoch `epoch` (counted from 1) and validates it.
    fn epoch(
        &self,
        learner: &mut Learner<'_>,
        epoch: usize,
        bar: &ProgressBar,
    ) -> Result<EpochRecord, TrainError>;

    /// Saves the learner's state with `progress`, after an epoch.
    fn save(&self, learner: &Learner<'_>, progress: &mut Progress) -> Result<(), TrainError>;

    /// Takes `seconds` the driver spent on the phase's behalf in `phase` (`records`,
    /// `checkpoints`), for a phase that accounts for its time.
    fn spent(&self, _phase: &'static str, _seconds: f64) {}
}

/// The progress of an interrupted phase in `dir` with `learner` restored, its
/// metrics.jsonl kept to the epochs `first..` that the state includes; `None` where there
/// is no state to resume.
pub fn resume(
    dir: &Path,
    learner: &mut Learner<'_>,
    first: usize,
) -> Result<Option<Progress>, TrainError> {
    let Some(progress) = state::restore(dir, learner)? else {
        return Ok(None);
    };
    tracing::info!(next_epoch = progress.epochs + 1, "resuming");
    truncate_lines(&dir.join("metrics.jsonl"), first, progress.epochs)?;
    Ok(Some(progress))
}

/// Trains the epochs left to `progress` under `schedule`, the best model kept as
/// `dir/best.safetensors`; false where an interruption stopped it before the end.
pub fn drive(
    epochs: &dyn Epochs,
    learner: &mut Learner<'_>,
    progress: &mut Progress,
    schedule: &Schedule,
    dir: &Path,
    recorders: &mut Recorders,
    bar: &ProgressBar,
) -> Result<bool, TrainError> {
    let mut session_epochs = 0;
    while !progress.finished && progress.epochs < schedule.epochs {
        let epoch = progress.epochs + 1;
        bar.set_message(format!("epoch {epoch}"));
        let record = epochs.epoch(learner, epoch, bar)?;
        let timer = std::time::Instant::now();
        recorders.epoch(epochs.phase(), &record)?;
        epochs.spent("records", timer.elapsed().as_secs_f64());
        if progress.end_epoch(epoch, record.score, schedule.patience, schedule.epochs) {
            let timer = std::time::Instant::now();
            learner.model.save(&dir.join("best.safetensors"))?;
            epochs.spent("checkpoints", timer.elapsed().as_secs_f64());
        }
        epochs.save(learner, progress)?;
        session_epochs += 1;
        if progress.interrupted(session_epochs, schedule.interrupt_after) {
            bar.finish_and_clear();
            return Ok(false);
        }
    }
    bar.finish_and_clear();
    Ok(true)
}
