//! `daa run`: the stages of an experiment and its run directory
//! (`<runs_dir>/<experiment>/<config hash>/`).

use std::path::PathBuf;
use std::time::Instant;

use super::TrainError;
use super::finished::Finished;
use super::options::RunOptions;
use super::pretrain::pretrain;
use super::record::{RunRecord, experiment_name};
use super::state::{self, Learner, Progress};
use super::target::{Clock, Inputs, TargetTraining, target_optimizer};
use super::timing::Timing;
use crate::adapt::{Needs, Setup};
use crate::config::Resolved;
use crate::models::model::Model;

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
/// its other files: its states and TensorBoard event files too.
fn clear(dir: &std::path::Path) -> Result<(), TrainError> {
    for name in RUN_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrainError::io(&path)(e)),
        }
    }
    state::remove_named(dir, |name| name.starts_with(super::tensorboard::PREFIX))?;
    state::remove_states(dir)
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
enum Reservation {
    Finished(Box<RunRecord>),
    /// The directory, locked for this run and cleared of what cannot be trusted.
    Locked(crate::lock::DirLock),
}

/// The finished result in `dir`, or the directory locked for training.
fn reserve(dir: &std::path::Path, options: &RunOptions) -> Result<Reservation, TrainError> {
    // A finished run is read without the writer's lock (its result is written last, whole,
    // by a rename), so that finished runs on read-only storage serve their results.
    if !options.rerun
        && dir.join("curves.svg").is_file()
        && let Finished::Done(record) = super::finished::read(dir)
    {
        return Ok(Reservation::Finished(record));
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
                return Ok(Reservation::Finished(record));
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
    Ok(Reservation::Locked(lock))
}

/// The progress of an interrupted run restored into `learner`, or a fresh start.
fn resume(
    dir: &std::path::Path,
    learner: &mut Learner<'_>,
    needs: Needs,
) -> Result<Progress, TrainError> {
    // Epoch 0's line is there when the start model was a candidate.
    let first = usize::from(!needs.source_model);
    match super::driver::resume(dir, learner, first)? {
        Some(progress) => Ok(progress),
        None => {
            clear(dir)?;
            Ok(Progress::start())
        }
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
    let _lock = match reserve(&dir, options)? {
        Reservation::Finished(record) => {
            return Ok(RunResult {
                dir,
                record: Some(*record),
                reused: true,
            });
        }
        Reservation::Locked(lock) => lock,
    };
    crate::whole_file::write(
        &dir.join("config.resolved.toml"),
        crate::config::render(resolved, false).as_bytes(),
    )?;
    let needs = (method.needs)(&exp.adapt.method);
    let inputs = Inputs::open(exp, needs, &dir)?;
    // This session's seconds by phase, from its start (the reservation included).
    let mut session = Timing::default();
    let mut lap = Instant::now();
    session.add("data", started.elapsed().as_secs_f64());
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
    session.add("source_model", lap.elapsed().as_secs_f64());
    lap = Instant::now();

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
    session.add("setup", lap.elapsed().as_secs_f64());
    let clock = Clock {
        started,
        earlier_seconds: progress.seconds,
        earlier_timing: progress.timing.clone(),
        session,
    };
    let record = {
        let training = TargetTraining::new(
            exp,
            &inputs,
            needs,
            &dir,
            source_checkpoint.as_deref(),
            &device,
            clock,
        )?;
        match training.run(&mut learner, &mut progress, options)? {
            true => Some(training.finish(resolved, &model, progress, source_checkpoint)?),
            false => None,
        }
    };
    Ok(RunResult {
        dir,
        record,
        reused: false,
    })
}
