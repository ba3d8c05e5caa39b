//! The service configuration: one TOML file holding the setup (gateways, campaigns, profiles,
//! decline mappings: see `docs/configuration.md`) plus the service's own tables `[service]`,
//! `[flexfactor]`, `[charge_hook]` and `[notifications]`. Every secret can also come from the
//! environment, which wins over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use salvage_domain::setup::{Gateway, SetupViolation};
use salvage_domain::Setup;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The embedded default store: a SQLite file in the working directory.
pub const DEFAULT_STORE_URL: &str = "sqlite://salvage.db";
/// Largest accepted request body.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// `[service]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`; env `SALVAGE_STORE_URL`.
    #[serde(default = "default_store")]
    pub store_url: SecretString,
    /// API keys accepted as `Authorization: Bearer <key>`; env `SALVAGE_API_KEYS`
    /// (comma-separated).
    #[serde(default)]
    pub api_keys: Vec<SecretString>,
    /// Read-only API keys (support staff): they read the API and the console but change
    /// nothing (a POST answers 403); env `SALVAGE_READ_ONLY_API_KEYS` (comma-separated).
    #[serde(default)]
    pub read_only_api_keys: Vec<SecretString>,
    /// How long a console sign-in lasts, in minutes. 5 to 10,080 (a week); default 480.
    #[serde(default = "default_console_session")]
    pub console_session_minutes: u64,
    #[serde(default = "default_body_limit")]
    pub request_body_limit: usize,
    /// Seconds to finish in-flight work at shutdown.
    #[serde(default = "default_shutdown")]
    pub shutdown_grace_seconds: u64,
    /// How long a process holds a claimed piece of work; after a crash another process takes it
    /// over once this has passed.
    #[serde(default = "default_lease")]
    pub work_lease_seconds: u64,
    /// How often, in milliseconds, each process looks for work that has fallen due (recycle
    /// re-attempts, scheduled rebills, expiries and reconciliation, notification retries) when
    /// nothing woke it sooner. 10 to 60,000; default 250.
    #[serde(default = "default_scheduler_poll")]
    pub scheduler_poll_ms: u64,
    /// How long, in milliseconds, the background worker (projections, notifications, due work)
    /// may hold off while webhook deliveries keep arriving, so that a burst's commits have the
    /// database and the cores; once this has passed it runs until it has caught up, then may
    /// hold off again. 0 to 60,000; 0 never holds off; default 1,000.
    #[serde(default = "default_worker_yield")]
    pub worker_yield_ms: u64,
}

/// `[flexfactor]`: how to reach FlexFactor and accept its webhooks.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlexFactorSection {
    /// Base URL with the version; env `SALVAGE_FLEXFACTOR_BASE_URL`.
    #[serde(default = "default_ff_url")]
    pub base_url: String,
    /// How far a webhook's `x-fc-date` may be from now, in seconds.
    #[serde(default = "default_tolerance")]
    pub webhook_tolerance_seconds: u64,
    /// Time allowed for one FlexFactor call, in milliseconds.
    #[serde(default = "default_ff_timeout")]
    pub request_timeout_ms: u64,
    /// `transaction.dynamicDescriptor`, when set.
    #[serde(default)]
    pub dynamic_descriptor: Option<String>,
}

/// `[charge_hook]`: the CRM endpoint that charges regular gateways (cascade steps, recycle
/// re-attempts, scheduled rebills).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeHookSection {
    pub url: String,
    /// HMAC-SHA256 key of the `x-salvage-signature` header; env `SALVAGE_CHARGE_HOOK_SECRET`.
    #[serde(default = "empty")]
    pub secret: SecretString,
    #[serde(default = "default_hook_timeout")]
    pub timeout_ms: u64,
}

/// `[notifications]`: where the CRM hears of each state change it must act on.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSection {
    pub url: String,
    /// HMAC-SHA256 key of the `x-salvage-signature` header; env `SALVAGE_NOTIFY_SECRET`.
    #[serde(default = "empty")]
    pub secret: SecretString,
    #[serde(default = "default_hook_timeout")]
    pub timeout_ms: u64,
    /// How long a notification is retried before it is given up (at least 24 hours).
    #[serde(default = "default_retry_hours")]
    pub retry_for_hours: u64,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
}
fn default_store() -> SecretString {
    SecretString::from(DEFAULT_STORE_URL)
}
fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}
fn default_shutdown() -> u64 {
    20
}
fn default_lease() -> u64 {
    60
}
/// `[service] scheduler_poll_ms`: the default and the bounds.
pub const DEFAULT_SCHEDULER_POLL_MS: u64 = 250;
pub const MIN_SCHEDULER_POLL_MS: u64 = 10;
pub const MAX_SCHEDULER_POLL_MS: u64 = 60_000;
fn default_scheduler_poll() -> u64 {
    DEFAULT_SCHEDULER_POLL_MS
}
/// `[service] worker_yield_ms`: the default and the bound.
pub const DEFAULT_WORKER_YIELD_MS: u64 = 1_000;
pub const MAX_WORKER_YIELD_MS: u64 = 60_000;
fn default_worker_yield() -> u64 {
    DEFAULT_WORKER_YIELD_MS
}
fn default_console_session() -> u64 {
    480
}
fn default_ff_url() -> String {
    crate::flexfactor::SANDBOX_BASE_URL.to_string()
}
fn default_tolerance() -> u64 {
    300
}
fn default_ff_timeout() -> u64 {
    15_000
}
fn default_hook_timeout() -> u64 {
    10_000
}
fn default_retry_hours() -> u64 {
    48
}
fn empty() -> SecretString {
    SecretString::from("")
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection {
            listen: default_listen(),
            store_url: default_store(),
            api_keys: Vec::new(),
            read_only_api_keys: Vec::new(),
            console_session_minutes: default_console_session(),
            request_body_limit: DEFAULT_BODY_LIMIT,
            shutdown_grace_seconds: default_shutdown(),
            work_lease_seconds: default_lease(),
            scheduler_poll_ms: default_scheduler_poll(),
            worker_yield_ms: default_worker_yield(),
        }
    }
}

impl Default for FlexFactorSection {
    fn default() -> Self {
        FlexFactorSection {
            base_url: default_ff_url(),
            webhook_tolerance_seconds: default_tolerance(),
            request_timeout_ms: default_ff_timeout(),
            dynamic_descriptor: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServiceTables {
    #[serde(default)]
    service: Option<ServiceSection>,
    #[serde(default)]
    flexfactor: Option<FlexFactorSection>,
    #[serde(default)]
    charge_hook: Option<ChargeHookSection>,
    #[serde(default)]
    notifications: Option<NotificationsSection>,
    #[serde(default)]
    test_mode: Option<TestModeSection>,
}

/// `[test_mode]`: a service for tests (the embedded default runs in it). It is said in every
/// answer's `x-salvage-test-mode` header, in `/readyz`, in the metrics and in the banner, and
/// refused against FlexFactor's production API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestModeSection {
    #[serde(default)]
    pub enabled: bool,
}

/// Whether `url` is FlexFactor's production API (any path, any case, with or without a port).
pub fn is_flexfactor_production(url: &str) -> bool {
    let rest = url.trim().to_ascii_lowercase();
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .unwrap_or(&rest)
        .to_string();
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
    host.trim_end_matches('.') == "api.flexfactor.io"
}

/// The whole configuration.
#[derive(Clone)]
pub struct ServiceConfig {
    pub setup: Setup,
    pub service: ServiceSection,
    pub flexfactor: FlexFactorSection,
    pub charge_hook: Option<ChargeHookSection>,
    pub notifications: Option<NotificationsSection>,
    pub test_mode: TestModeSection,
    /// Where it was read from (for messages).
    pub source: PathBuf,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("source", &self.source)
            .field("listen", &self.service.listen)
            .finish_non_exhaustive()
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: not valid TOML for Salvage: {reason}")]
    Parse { file: String, reason: String },
    #[error("{file}: the configuration has {} problem(s):\n{}", .problems.len(), render(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<SetupViolation>,
    },
}

fn render(file: &str, v: &[SetupViolation]) -> String {
    v.iter()
        .map(|x| format!("  {file}: {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const SERVICE_TABLES: [&str; 5] = [
    "service",
    "flexfactor",
    "charge_hook",
    "notifications",
    "test_mode",
];

/// Reads environment variables through a function, so tests need not touch the process env.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment variable of a FlexFactor gateway's credential:
/// `SALVAGE_FLEXFACTOR_<GATEWAY ID>_<CREDENTIAL>`, upper-cased, other characters as `_`
/// (gateway `flexfactor`, credential `app_secret` → `SALVAGE_FLEXFACTOR_FLEXFACTOR_APP_SECRET`).
pub fn credential_env_name(gateway: &str, credential: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!(
        "SALVAGE_FLEXFACTOR_{}_{}",
        clean(gateway),
        clean(credential)
    )
}

const CREDENTIALS: [&str; 6] = [
    "app_key",
    "app_secret",
    "mid",
    "site_id",
    "environment_key",
    "hmac_signing_key",
];

impl ServiceConfig {
    /// Reads and validates the file at `path`, with the environment applied.
    pub fn load(path: &Path, env: Env<'_>) -> Result<ServiceConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::from_str(&text, path, env)
    }

    /// Parses and validates `text` (named `source` in messages).
    pub fn from_str(text: &str, source: &Path, env: Env<'_>) -> Result<ServiceConfig, ConfigError> {
        let file = source.display().to_string();
        let parse = |reason: String| ConfigError::Parse {
            file: file.clone(),
            reason,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        let mut service_part = toml::Table::new();
        for t in SERVICE_TABLES {
            if let Some(v) = table.remove(t) {
                service_part.insert(t.to_string(), v);
            }
        }
        let tables: ServiceTables = service_part
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        let setup: Setup = table
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        let mut config = ServiceConfig {
            setup,
            service: tables.service.unwrap_or_default(),
            flexfactor: tables.flexfactor.unwrap_or_default(),
            charge_hook: tables.charge_hook,
            notifications: tables.notifications,
            test_mode: tables.test_mode.unwrap_or_default(),
            source: source.to_path_buf(),
        };
        config.apply_env(env);
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { file, problems })
        }
    }

    fn apply_env(&mut self, env: Env<'_>) {
        if let Some(url) = env("SALVAGE_STORE_URL") {
            self.service.store_url = SecretString::from(url);
        }
        if let Some(keys) = env("SALVAGE_API_KEYS") {
            self.service.api_keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(SecretString::from)
                .collect();
        }
        if let Some(keys) = env("SALVAGE_READ_ONLY_API_KEYS") {
            self.service.read_only_api_keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(SecretString::from)
                .collect();
        }
        if let Some(url) = env("SALVAGE_FLEXFACTOR_BASE_URL") {
            self.flexfactor.base_url = url;
        }
        if let (Some(hook), Some(s)) = (&mut self.charge_hook, env("SALVAGE_CHARGE_HOOK_SECRET")) {
            hook.secret = SecretString::from(s);
        }
        if let (Some(n), Some(s)) = (&mut self.notifications, env("SALVAGE_NOTIFY_SECRET")) {
            n.secret = SecretString::from(s);
        }
        for g in &mut self.setup.gateways {
            if let Gateway::FlexFactor(ff) = g {
                for c in CREDENTIALS {
                    if let Some(v) = env(&credential_env_name(ff.id.as_str(), c)) {
                        ff.credentials.set(c, SecretString::from(v));
                    }
                }
            }
        }
    }

    /// Every problem: the setup's (its rules) and the service's.
    pub fn problems(&self) -> Vec<SetupViolation> {
        let mut v = self.setup.validate().err().unwrap_or_default();
        let mut add = |entry: &str, message: String| {
            v.push(SetupViolation {
                rule: "config",
                entry: entry.to_string(),
                message,
            })
        };
        if self.service.api_keys.is_empty() {
            add(
                "[service]",
                "no API key: set api_keys or SALVAGE_API_KEYS".to_string(),
            );
        }
        for (i, k) in self.service.api_keys.iter().enumerate() {
            if k.expose_secret().len() < 16 {
                add(
                    "[service]",
                    format!("api_keys[{i}] is shorter than 16 characters"),
                );
            }
        }
        if self.test_mode.enabled && is_flexfactor_production(&self.flexfactor.base_url) {
            add(
                "[test_mode]",
                format!(
                    "test mode is refused against FlexFactor's production API ({}): point \
                     [flexfactor] base_url at the sandbox or a fake, or turn test mode off",
                    self.flexfactor.base_url
                ),
            );
        }
        for (i, k) in self.service.read_only_api_keys.iter().enumerate() {
            if k.expose_secret().len() < 16 {
                add(
                    "[service]",
                    format!("read_only_api_keys[{i}] is shorter than 16 characters"),
                );
            }
            if self
                .service
                .api_keys
                .iter()
                .any(|a| a.expose_secret() == k.expose_secret())
            {
                add(
                    "[service]",
                    format!("read_only_api_keys[{i}] is also in api_keys: a key has one role"),
                );
            }
        }
        if !(5..=10_080).contains(&self.service.console_session_minutes) {
            add(
                "[service]",
                format!(
                    "console_session_minutes = {}: give 5 to 10080 (a week)",
                    self.service.console_session_minutes
                ),
            );
        }
        let store = self.service.store_url.expose_secret();
        if !(store.starts_with("sqlite:")
            || store.starts_with("postgres://")
            || store.starts_with("postgresql://"))
        {
            add(
                "[service]",
                "store_url must be sqlite://PATH or postgres://...".to_string(),
            );
        }
        if !(MIN_SCHEDULER_POLL_MS..=MAX_SCHEDULER_POLL_MS)
            .contains(&self.service.scheduler_poll_ms)
        {
            add(
                "[service]",
                format!(
                    "scheduler_poll_ms must be {MIN_SCHEDULER_POLL_MS} to {MAX_SCHEDULER_POLL_MS}"
                ),
            );
        }
        if self.service.worker_yield_ms > MAX_WORKER_YIELD_MS {
            add(
                "[service]",
                format!("worker_yield_ms must be 0 to {MAX_WORKER_YIELD_MS}"),
            );
        }
        if self.service.work_lease_seconds == 0 {
            add(
                "[service]",
                "work_lease_seconds must be at least 1".to_string(),
            );
        }
        if self.service.request_body_limit < 1024 {
            add(
                "[service]",
                "request_body_limit is below 1024 bytes".to_string(),
            );
        }
        if !(self.flexfactor.base_url.starts_with("http://")
            || self.flexfactor.base_url.starts_with("https://"))
        {
            add(
                "[flexfactor]",
                "base_url must be an http(s) URL".to_string(),
            );
        }
        if self.flexfactor.webhook_tolerance_seconds == 0 {
            add(
                "[flexfactor]",
                "webhook_tolerance_seconds must be at least 1".to_string(),
            );
        }
        if let Some(h) = &self.charge_hook {
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                add("[charge_hook]", "url must be an http(s) URL".to_string());
            }
            if h.secret.expose_secret().is_empty() {
                add(
                    "[charge_hook]",
                    "secret is empty: set it or SALVAGE_CHARGE_HOOK_SECRET".to_string(),
                );
            }
        }
        if let Some(n) = &self.notifications {
            if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
                add("[notifications]", "url must be an http(s) URL".to_string());
            }
            if n.secret.expose_secret().is_empty() {
                add(
                    "[notifications]",
                    "secret is empty: set it or SALVAGE_NOTIFY_SECRET".to_string(),
                );
            }
            if n.retry_for_hours < 24 {
                add(
                    "[notifications]",
                    "retry_for_hours must be at least 24".to_string(),
                );
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../examples/salvage.toml");

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn test_mode_is_refused_against_production_flexfactor() {
        for url in [
            "https://api.flexfactor.io/v1/",
            "https://API.FlexFactor.io:443/v1",
            "http://api.flexfactor.io./",
        ] {
            assert!(is_flexfactor_production(url), "{url}");
        }
        for url in [
            "https://api-sandbox.flexfactor.io/v1/",
            "http://127.0.0.1:9/v1",
            "https://api.flexfactor.io.example.com/",
        ] {
            assert!(!is_flexfactor_production(url), "{url}");
        }
        let base = format!("{SAMPLE}\n[service]\napi_keys = [\"0123456789abcdef0123\"]\n");
        let prod = format!("{base}[flexfactor]\nbase_url = \"https://api.flexfactor.io/v1/\"\n");
        let on = format!("{prod}[test_mode]\nenabled = true\n");
        let err = ServiceConfig::from_str(&on, Path::new("t.toml"), &|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("[test_mode]") && err.contains("production"),
            "{err}"
        );
        let off = ServiceConfig::from_str(&prod, Path::new("t.toml"), &|_| None);
        assert!(off.is_ok_and(|c| !c.test_mode.enabled));
        let sandbox = format!("{base}[test_mode]\nenabled = true\n");
        let c = ServiceConfig::from_str(&sandbox, Path::new("t.toml"), &|_| None);
        assert!(c.is_ok_and(|c| c.test_mode.enabled));
    }

    #[test]
    fn the_sample_setup_with_a_service_table_loads() {
        let text = format!("{SAMPLE}\n[service]\napi_keys = [\"0123456789abcdef0123\"]\n");
        let c = ServiceConfig::from_str(&text, Path::new("s.toml"), &|_| None).unwrap();
        assert_eq!(c.service.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.service.store_url.expose_secret(), DEFAULT_STORE_URL);
        assert!(c.charge_hook.is_none());
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let env = env_of(&[
            (
                "SALVAGE_API_KEYS",
                "k1-0123456789abcdef, k2-0123456789abcdef",
            ),
            (
                "SALVAGE_FLEXFACTOR_FLEXFACTOR_APP_SECRET",
                "from-env-secret",
            ),
            ("SALVAGE_STORE_URL", "postgres://u:p@h/db"),
        ]);
        let c = ServiceConfig::from_str(SAMPLE, Path::new("s.toml"), &env).unwrap();
        assert_eq!(c.service.api_keys.len(), 2);
        assert_eq!(c.service.store_url.expose_secret(), "postgres://u:p@h/db");
        let ff = c.setup.flexfactor(&"flexfactor".into()).unwrap();
        assert_eq!(ff.credentials.app_secret.expose_secret(), "from-env-secret");
        assert_eq!(
            credential_env_name("ff-eu.1", "hmac_signing_key"),
            "SALVAGE_FLEXFACTOR_FF_EU_1_HMAC_SIGNING_KEY"
        );
    }

    #[test]
    fn problems_name_the_file_entry_and_rule() {
        let text = SAMPLE.replace("expiry_days = 21", "expiry_days = 40")
            + "\n[notifications]\nurl = \"ftp://x\"\nretry_for_hours = 2\n";
        let err = ServiceConfig::from_str(&text, Path::new("prod.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        for needle in [
            "prod.toml: [S2] gateway \"flexfactor\"",
            "prod.toml: [config] [service]: no API key",
            "[notifications]: url must be",
            "retry_for_hours must be at least 24",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn unknown_service_fields_are_refused() {
        let text = format!("{SAMPLE}\n[service]\nlisten_port = 3\n");
        let err = ServiceConfig::from_str(&text, Path::new("s.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_port"), "{err}");
    }
}
