//! The shared core of a running fake ([`App`]): its settings, clock, webhook key and target,
//! and its state behind one lock. The endpoints (`api`, `admin`) and the deliveries work on it;
//! `server` builds it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Duration;
use salvage_domain::setup::FlexFactorCredentials;
use salvage_domain::Clock;
use salvage_gateway::flexfactor::WebhookKey;
use secrecy::SecretString;

use super::clock::FakeClock;
use super::error::FakeError;
use super::faults::{FaultBook, FaultRule};
use super::redelivery::RedeliveryPolicy;
use super::rules::RuleSet;
use super::state::State;
use super::webhook_target::WebhookTarget;

/// What does not change while the fake runs.
#[derive(Debug)]
pub(crate) struct Settings {
    pub credentials: FlexFactorCredentials,
    pub app_key: SecretString,
    pub app_secret: SecretString,
    pub mid: SecretString,
    pub environment_key: SecretString,
    pub seed: u64,
    pub token_lifetime: Duration,
    pub idempotency_window: Duration,
    pub capture_window: Duration,
    pub redelivery: RedeliveryPolicy,
    pub webhooks_for_sync_answers: bool,
    pub test_mode: bool,
}

/// The shared core of a running fake.
pub(crate) struct App {
    pub(crate) clock: Arc<FakeClock>,
    pub(crate) settings: Settings,
    pub(crate) key: WebhookKey,
    pub(crate) http: reqwest::Client,
    pub(crate) delivery_gate: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    webhook: Mutex<Option<WebhookTarget>>,
    entropy: RandomState,
    counter: AtomicU64,
}

impl App {
    /// The core of a fake that starts with `state` and delivers to `webhook`.
    pub(crate) fn new(
        clock: Arc<FakeClock>,
        settings: Settings,
        key: WebhookKey,
        http: reqwest::Client,
        state: State,
        webhook: Option<WebhookTarget>,
    ) -> App {
        App {
            clock,
            settings,
            key,
            http,
            delivery_gate: tokio::sync::Mutex::new(()),
            state: Mutex::new(state),
            webhook: Mutex::new(webhook),
            entropy: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// The state (a poisoned lock is taken over: the state stays usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unpredictable bits (access tokens, nonces, trace ids).
    pub(crate) fn random_u64(&self) -> u64 {
        let mut h = self.entropy.build_hasher();
        h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }

    /// A W3C trace id like ASP.NET's (`00-<32 hex>-<16 hex>-01`).
    pub(crate) fn trace_id(&self) -> String {
        format!(
            "00-{:016x}{:016x}-{:016x}-01",
            self.random_u64(),
            self.random_u64(),
            self.random_u64()
        )
    }

    pub(crate) fn webhook_target(&self) -> Option<WebhookTarget> {
        self.webhook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_webhook_target(&self, target: Option<WebhookTarget>) {
        *self.webhook.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// Moves the clock and applies what became due.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
        let now = self.clock.now();
        self.lock().settle(now, self.settings.capture_window);
    }

    pub(crate) fn set_faults(&self, faults: Vec<FaultRule>) -> Result<(), FakeError> {
        for f in &faults {
            f.validate().map_err(FakeError::Fault)?;
        }
        self.lock().faults = FaultBook::new(faults);
        Ok(())
    }

    pub(crate) fn add_fault(&self, fault: FaultRule) -> Result<(), FakeError> {
        fault.validate().map_err(FakeError::Fault)?;
        let mut st = self.lock();
        let mut rules = st.faults.rules();
        rules.push(fault);
        // Keep what the existing rules already fired.
        let fired: Vec<u32> = st.faults.fired().into_iter().map(|(_, n)| n).collect();
        let mut book = FaultBook::new(rules);
        book.restore_counts(&fired);
        st.faults = book;
        Ok(())
    }

    pub(crate) fn set_rules(&self, rules: RuleSet) -> Result<(), FakeError> {
        rules.validate().map_err(|message| FakeError::Scenario {
            origin: "<rules>".into(),
            message,
        })?;
        self.lock().rules = rules;
        Ok(())
    }

    pub(crate) fn set_webhook_url(&self, url: Option<&str>) -> Result<(), FakeError> {
        let target = url.map(WebhookTarget::parse).transpose()?;
        self.set_webhook_target(target);
        Ok(())
    }
}
