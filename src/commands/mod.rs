//! Implementations of the CLI's subcommands.

pub mod data;
pub mod predict;
pub mod run;

/// Marks an error as the user's to fix (bad input, unknown name, not yet available):
/// exit code 2 rather than 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
