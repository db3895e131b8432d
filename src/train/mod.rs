//! Running an experiment: source pretraining (cached), target training with the chosen
//! adaptation method, early stopping on the validation split, checkpoints, resume, and the
//! run directory.

pub mod curves;
mod driver;
mod epoch;
mod error;
pub mod evaluate;
pub mod finished;
pub mod index;
mod options;
mod outputs;
mod pretrain;
mod probe;
mod record;
mod recorder;
mod run;
mod state;
mod stopping;
mod target;
mod tensorboard;
pub mod timing;

pub use epoch::EpochStats;
pub use error::TrainError;
pub use evaluate::{Evaluation, TaskMetrics, evaluate};
pub use options::RunOptions;
pub use record::RunRecord;
pub use run::{RunResult, run, run_dir};
pub use stopping::EarlyStopping;
pub use timing::Timing;
