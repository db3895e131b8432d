use std::path::PathBuf;

/// Problems with data files. Each names the file (and line and column where there is one)
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no such file{hint}")]
    Missing { path: PathBuf, hint: String },
    #[error("{path}: the file is empty; expected a header line and data rows")]
    Empty { path: PathBuf },
    #[error(
        "{path}:1: header column {position} is `{found}`, expected `{expected}` (the schema's columns are: {all})"
    )]
    Header {
        path: PathBuf,
        position: usize,
        expected: String,
        found: String,
        all: String,
    },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: not a valid daa table ({message}); delete it and it will be rebuilt")]
    Corrupt { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<crate::whole_file::FileError> for DataError {
    fn from(e: crate::whole_file::FileError) -> Self {
        DataError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl DataError {
    /// The user's input is at fault (exit code 2), not the environment (a failed read or
    /// write, exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DataError::Io { .. })
    }

    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + use<> {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    }
}
