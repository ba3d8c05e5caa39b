//! The fake's errors (library side: `thiserror`; the CLI wraps them with `anyhow`).

use std::net::SocketAddr;
use std::path::PathBuf;

use salvage_gateway::flexfactor::WebhookKeyError;

/// Why the fake could not start, or a configuration change was refused. Messages never contain a
/// credential or the HMAC key.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The webhook URL is not an absolute http(s) URL with a host.
    #[error("invalid webhook URL {url:?}: {reason}")]
    WebhookUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The HMAC signing key is empty or not base64 (the key itself is never shown).
    #[error("the HMAC signing key is unusable: {0}")]
    HmacKey(#[from] WebhookKeyError),
    /// A credential the fake checks (app_key, app_secret) is empty.
    #[error("missing credential: {0}")]
    MissingCredential(&'static str),
    /// A scenario file could not be read.
    #[error("cannot read the scenario file {path}: {source}")]
    ScenarioRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A scenario (file or value) is invalid.
    #[error("invalid scenario {origin}: {message}")]
    Scenario {
        /// The file, or `<inline>`.
        origin: String,
        /// What is wrong, naming the entry.
        message: String,
    },
    /// A fault rule is invalid (e.g. a webhook fault aimed at an API endpoint).
    #[error("invalid fault: {0}")]
    Fault(String),
    /// A clock setting is invalid.
    #[error("invalid clock: {0}")]
    Clock(String),
    /// The HTTP client used for webhook deliveries could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Http(String),
}
