/// Why a method could not be built or could not step.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::params::CheckpointError),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}
