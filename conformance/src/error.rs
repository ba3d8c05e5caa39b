//! Errors of the conformance library.

use std::path::PathBuf;

/// A scenario file that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("{file}: not valid TOML: {reason}")]
    Toml { file: PathBuf, reason: String },
    #[error("{file}: {reason}")]
    File { file: PathBuf, reason: String },
    #[error("{file}: scenario {scenario:?}: {field}: {reason}")]
    Scenario {
        file: PathBuf,
        scenario: String,
        field: String,
        reason: String,
    },
}

/// Why a suite could not run at all (a scenario that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot start the in-process service or fake FlexFactor: {0}")]
    Start(String),
    #[error("target: {0}")]
    Target(String),
    #[error("cannot write the report {file}: {reason}")]
    Report { file: PathBuf, reason: String },
}
