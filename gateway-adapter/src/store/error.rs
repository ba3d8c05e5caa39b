//! Errors of the persistence layer.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store URL {0:?} is not understood: use sqlite://PATH, sqlite::memory: or postgres://..."
    )]
    BadUrl(String),
    #[error("cannot connect to the store: {0}")]
    Connect(String),
    #[error("migration {version} ({name}) failed: {reason}")]
    Migration {
        version: i64,
        name: &'static str,
        reason: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("the event store failed: {0}")]
    Events(String),
    #[error("the in-memory store does not support {0}")]
    Unsupported(&'static str),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
