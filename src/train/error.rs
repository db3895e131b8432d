/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::params::CheckpointError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Adapt(#[from] crate::adapt::AdaptError),
    #[error("evaluation: {0}")]
    Metric(#[from] crate::metrics::MetricError),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl From<crate::atomic::FileError> for TrainError {
    fn from(e: crate::atomic::FileError) -> Self {
        TrainError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl TrainError {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + use<> {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    }
}
