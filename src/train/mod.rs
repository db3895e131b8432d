//! Running an experiment: source pretraining (cached), target training with the chosen
//! adaptation method, early stopping on the validation split, checkpoints, resume, and the
//! run directory.

pub mod curves;
mod epoch;
mod error;
pub mod evaluate;
pub mod finished;
pub mod index;
mod outputs;
mod pretrain;
mod probe;
mod run;
mod state;
mod stopping;

pub use epoch::EpochStats;
pub use error::TrainError;
pub use evaluate::{Evaluation, TaskMetrics, evaluate};
pub use run::{RunOptions, RunRecord, RunResult, run, run_dir};
pub use stopping::EarlyStopping;
