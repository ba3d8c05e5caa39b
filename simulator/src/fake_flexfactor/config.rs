//! The fake's configuration ([`FakeConfig`]) and its scenario file ([`FakeScenario`], TOML).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::Duration;
use salvage_domain::setup::FlexFactorCredentials;
use secrecy::SecretString;
use serde::Deserialize;

use super::clock::ClockMode;
use super::error::FakeError;
use super::faults::FaultRule;
use super::redelivery::RedeliveryPolicy;
use super::rules::{Outcome, Rule, RuleSet};

/// The sandbox credentials of the sample setup (`examples/salvage.toml`): what `salvage serve`'s
/// embedded default and the fake share.
pub mod sandbox {
    /// `app_key`.
    pub const APP_KEY: &str = "sandbox-app-key";
    /// `app_secret`.
    pub const APP_SECRET: &str = "sandbox-app-secret";
    /// `mid`.
    pub const MID: &str = "d9d0b5fd-9433-44d3-8051-63fee28768e8";
    /// `site_id`.
    pub const SITE_ID: &str = "ffae80fd-2b8e-487a-94c3-87503a0c71bb";
    /// `environment_key` (FlexFactor's Tokenization Key).
    pub const ENVIRONMENT_KEY: &str = "sandbox-tokenization-key";
    /// `hmac_signing_key` (base64; the key of FlexFactor's published sample delivery).
    pub const HMAC_SIGNING_KEY: &str =
        "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";
    /// The seed of the sandbox defaults.
    pub const SEED: u64 = 20_240_404;
}

/// Everything the fake needs to start. `Debug` shows no credential (the domain's
/// [`FlexFactorCredentials`] redacts them).
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where webhooks go; deliveries wait in the outbox while it is `None`.
    pub webhook_url: Option<String>,
    /// The credentials the fake accepts (app_key, app_secret; mid and environment_key for
    /// `/tokenize` without a bearer token) and the HMAC key it signs webhooks with.
    pub credentials: FlexFactorCredentials,
    /// Real or driven time.
    pub clock: ClockMode,
    /// How outcomes are chosen.
    pub rules: RuleSet,
    /// Faults in force from the start.
    pub faults: Vec<FaultRule>,
    /// Seeds the probability draws and the ids.
    pub seed: u64,
    /// Access-token lifetime (FlexFactor: 10 minutes).
    pub token_lifetime: Duration,
    /// How long an idempotency key replays its answer (FlexFactor: 24 hours).
    pub idempotency_window: Duration,
    /// How long a CAPTUREREQUIRED order waits for `/capture` before it is voided.
    pub capture_window: Duration,
    /// Redelivery of unacknowledged webhooks.
    pub redelivery: RedeliveryPolicy,
    /// Time allowed to one webhook delivery.
    pub delivery_timeout: StdDuration,
    /// Deliver due webhooks in the background every so often; `None`: only on
    /// `deliver_due()`, `advance_and_deliver()` and the admin endpoints.
    pub auto_deliver: Option<StdDuration>,
    /// Also send webhooks for the results `/evaluate` answers at once (a CIT's `APPROVED` or
    /// `CAPTUREREQUIRED`). **[inference]**: FlexFactor documents its events per order, not per
    /// flow.
    pub webhooks_for_sync_answers: bool,
    /// `IsTestMode` of deliveries.
    pub test_mode: bool,
}

impl FakeConfig {
    /// The sandbox defaults: the sample setup's credentials, a real clock, the sandbox test-card
    /// rules, background deliveries every 250 ms, listening on `127.0.0.1:0`, no webhook URL yet.
    pub fn sandbox_defaults() -> Self {
        let mut credentials = FlexFactorCredentials::default();
        for (name, value) in [
            ("app_key", sandbox::APP_KEY),
            ("app_secret", sandbox::APP_SECRET),
            ("mid", sandbox::MID),
            ("site_id", sandbox::SITE_ID),
            ("environment_key", sandbox::ENVIRONMENT_KEY),
            ("hmac_signing_key", sandbox::HMAC_SIGNING_KEY),
        ] {
            credentials.set(name, SecretString::from(value));
        }
        FakeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url: None,
            credentials,
            clock: ClockMode::Real,
            rules: RuleSet::sandbox(),
            faults: Vec::new(),
            seed: sandbox::SEED,
            token_lifetime: Duration::minutes(10),
            idempotency_window: Duration::hours(24),
            capture_window: Duration::days(7),
            redelivery: RedeliveryPolicy::default(),
            delivery_timeout: StdDuration::from_secs(10),
            auto_deliver: Some(StdDuration::from_millis(250)),
            webhooks_for_sync_answers: true,
            test_mode: true,
        }
    }

    /// The sandbox defaults on a driven clock starting at `start`, without background
    /// deliveries: for tests.
    pub fn driven(start: chrono::DateTime<chrono::Utc>) -> Self {
        FakeConfig {
            clock: ClockMode::Driven { start },
            auto_deliver: None,
            ..Self::sandbox_defaults()
        }
    }

    /// Sets the webhook URL.
    pub fn with_webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Applies a scenario (its seed, rules, faults, credentials and settings).
    pub fn with_scenario(mut self, scenario: FakeScenario) -> Result<Self, FakeError> {
        scenario.apply(&mut self)?;
        Ok(self)
    }
}

/// A scenario file (TOML): rules, faults and settings. See `docs/fake-flexfactor.md`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeScenario {
    /// Seeds the draws (the CLI's `--seed` wins).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Keep the sandbox test-card rules after the scenario's own rules (default true).
    #[serde(default)]
    pub sandbox_cards: Option<bool>,
    /// Outcomes when no rule applies.
    #[serde(default)]
    pub defaults: Option<ScenarioDefaults>,
    /// Rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Faults in force from the start.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
    /// Credentials the fake accepts (each optional; the sandbox ones otherwise).
    #[serde(default)]
    pub credentials: Option<ScenarioCredentials>,
    /// Webhook settings.
    #[serde(default)]
    pub webhooks: Option<ScenarioWebhooks>,
    /// Access-token lifetime in seconds (default 600).
    #[serde(default)]
    pub token_lifetime_secs: Option<i64>,
    /// Idempotency window in seconds (default 86 400).
    #[serde(default)]
    pub idempotency_window_secs: Option<i64>,
    /// Capture window in seconds (default 7 days).
    #[serde(default)]
    pub capture_window_secs: Option<i64>,
}

/// `[defaults]` of a scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDefaults {
    /// A CIT no rule took (default `declined`).
    #[serde(default)]
    pub cit: Option<Outcome>,
    /// A managed MIT no rule took (default `expired`).
    #[serde(default)]
    pub mit: Option<Outcome>,
    /// Delay of MIT results when a rule gives none, seconds (default 3600).
    #[serde(default)]
    pub mit_delay_secs: Option<i64>,
}

/// `[credentials]` of a scenario.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCredentials {
    app_key: Option<String>,
    app_secret: Option<String>,
    mid: Option<String>,
    site_id: Option<String>,
    environment_key: Option<String>,
    hmac_signing_key: Option<String>,
}

impl std::fmt::Debug for ScenarioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScenarioCredentials([REDACTED])")
    }
}

/// `[webhooks]` of a scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioWebhooks {
    /// First redelivery after this many seconds (default 60), doubling.
    #[serde(default)]
    pub first_retry_secs: Option<i64>,
    /// Longest wait between redeliveries, seconds (default 3600).
    #[serde(default)]
    pub max_interval_secs: Option<i64>,
    /// Sends before giving up (default 20).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Time allowed to one delivery, milliseconds (default 10 000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Webhooks for results answered at once (default true).
    #[serde(default)]
    pub sync_answers: Option<bool>,
    /// `IsTestMode` (default true).
    #[serde(default)]
    pub test_mode: Option<bool>,
}

impl FakeScenario {
    /// Reads a scenario from TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, FakeError> {
        let scenario: FakeScenario = toml::from_str(text).map_err(|e| FakeError::Scenario {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    /// Reads a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, FakeError> {
        let text = std::fs::read_to_string(path).map_err(|source| FakeError::ScenarioRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<(), FakeError> {
        let err = |message: String| FakeError::Scenario {
            origin: origin.to_string(),
            message,
        };
        let probe = RuleSet {
            rules: self.rules.clone(),
            ..RuleSet::empty()
        };
        probe.validate().map_err(err)?;
        for (i, f) in self.faults.iter().enumerate() {
            f.validate()
                .map_err(|m| err(format!("faults[{}]: {m}", i + 1)))?;
        }
        for (what, v) in [
            ("token_lifetime_secs", self.token_lifetime_secs),
            ("idempotency_window_secs", self.idempotency_window_secs),
            ("capture_window_secs", self.capture_window_secs),
            (
                "defaults.mit_delay_secs",
                self.defaults.as_ref().and_then(|d| d.mit_delay_secs),
            ),
            (
                "webhooks.first_retry_secs",
                self.webhooks.as_ref().and_then(|w| w.first_retry_secs),
            ),
            (
                "webhooks.max_interval_secs",
                self.webhooks.as_ref().and_then(|w| w.max_interval_secs),
            ),
        ] {
            if matches!(v, Some(s) if s < 0) {
                return Err(err(format!("{what} must not be negative")));
            }
        }
        Ok(())
    }

    /// Applies the scenario to a configuration.
    pub fn apply(self, config: &mut FakeConfig) -> Result<(), FakeError> {
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        let mut rules = self.rules;
        if self.sandbox_cards.unwrap_or(true) {
            rules.extend(RuleSet::sandbox_rules());
        }
        config.rules.rules = rules;
        if let Some(d) = self.defaults {
            if let Some(o) = d.cit {
                config.rules.default_cit = o;
            }
            if let Some(o) = d.mit {
                config.rules.default_mit = o;
            }
            if let Some(s) = d.mit_delay_secs {
                config.rules.mit_delay_secs = s;
            }
        }
        config.faults.extend(self.faults);
        if let Some(c) = self.credentials {
            for (name, value) in [
                ("app_key", c.app_key),
                ("app_secret", c.app_secret),
                ("mid", c.mid),
                ("site_id", c.site_id),
                ("environment_key", c.environment_key),
                ("hmac_signing_key", c.hmac_signing_key),
            ] {
                if let Some(v) = value {
                    config.credentials.set(name, SecretString::from(v));
                }
            }
        }
        if let Some(w) = self.webhooks {
            if let Some(s) = w.first_retry_secs {
                config.redelivery.first_retry = Duration::seconds(s);
            }
            if let Some(s) = w.max_interval_secs {
                config.redelivery.max_interval = Duration::seconds(s);
            }
            if let Some(n) = w.max_attempts {
                config.redelivery.max_attempts = n;
            }
            if let Some(ms) = w.timeout_ms {
                config.delivery_timeout = StdDuration::from_millis(ms);
            }
            if let Some(b) = w.sync_answers {
                config.webhooks_for_sync_answers = b;
            }
            if let Some(b) = w.test_mode {
                config.test_mode = b;
            }
        }
        if let Some(s) = self.token_lifetime_secs {
            config.token_lifetime = Duration::seconds(s);
        }
        if let Some(s) = self.idempotency_window_secs {
            config.idempotency_window = Duration::seconds(s);
        }
        if let Some(s) = self.capture_window_secs {
            config.capture_window = Duration::seconds(s);
        }
        Ok(())
    }
}
