impl AdaptError {
    /// The user's input is at fault (a setting, a checkpoint), not the computation.
    pub fn is_bad_input(&self) -> bool {
        match self {
            AdaptError::Checkpoint(e) => e.is_bad_input(),
            AdaptError::Model(e) => e.is_bad_input(),
            AdaptError::Invalid(_) | AdaptError::NonFinite { .. } => true,
            AdaptError::Candle(_) => false,
        }
    }
}

/// Why a method could not be built or could not step.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::checkpoint::CheckpointError),
    #[error(transparent)]
    Model(#[from] crate::models::model::ModelError),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
    /// The method's own networks diverged (the training loop says where, with the model's
    /// settings added to `settings`).
    #[error("{what}")]
    NonFinite {
        /// The model step of the epoch (from 1) whose critic steps diverged.
        step: usize,
        what: String,
        /// The method's settings that scale what diverged (key, value), likeliest first.
        settings: Vec<(&'static str, f64)>,
    },
}
