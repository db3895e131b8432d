/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::checkpoint::CheckpointError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Adapt(#[from] crate::adapt::AdaptError),
    #[error("evaluation: {0}")]
    Metric(#[from] crate::metrics::MetricError),
    #[error(transparent)]
    Plot(#[from] crate::chart::ChartError),
    #[error(transparent)]
    Model(#[from] crate::models::model::ModelError),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{phase} diverged at epoch {epoch}, step {step}: {what}; nothing was recorded as a result. Lower {}, or check the data",
        suspects(settings)
    )]
    NonFinite {
        phase: &'static str,
        epoch: usize,
        step: usize,
        what: String,
        /// The settings in force that scale what diverged (key, value), likeliest first.
        settings: Vec<(&'static str, f64)>,
    },
}

/// "`a` (now 1e30) or `b` (now 1)": the keys a diverging run names, with their values.
fn suspects(settings: &[(&'static str, f64)]) -> String {
    let named: Vec<String> = settings
        .iter()
        .map(|(key, value)| {
            if *value == 0.0 || (1e-4..1e6).contains(&value.abs()) {
                format!("`{key}` (now {value})")
            } else {
                format!("`{key}` (now {value:e})")
            }
        })
        .collect();
    named.join(" or ")
}

impl From<crate::whole_file::FileError> for TrainError {
    fn from(e: crate::whole_file::FileError) -> Self {
        TrainError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl TrainError {
    /// The user's input is at fault (data, settings, checkpoints, a diverging learning
    /// rate): exit code 2; the environment (disk, computation) is: exit code 1.
    pub fn is_bad_input(&self) -> bool {
        match self {
            TrainError::Data(e) => e.is_bad_input(),
            TrainError::Checkpoint(e) => e.is_bad_input(),
            TrainError::Adapt(e) => e.is_bad_input(),
            TrainError::Device(e) => e.is_bad_input(),
            TrainError::Model(e) => e.is_bad_input(),
            TrainError::Invalid(_) | TrainError::NonFinite { .. } => true,
            TrainError::Metric(_)
            | TrainError::Plot(_)
            | TrainError::Candle(_)
            | TrainError::Io { .. } => false,
        }
    }

    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + use<> {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    }
}
