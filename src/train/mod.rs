//! Running an experiment: source pretraining (cached), target training by method, early
//! stopping on the validation split, checkpoints, resume, and the run directory.

mod epoch;
mod error;
pub mod evaluate;
mod outputs;
mod run;
mod state;

pub use error::TrainError;
pub use evaluate::{Evaluation, TaskMetrics, evaluate};
pub use run::{RunOptions, RunRecord, RunResult, run, run_dir};
