//! Starting and driving the fake: [`FakeFlexFactor::start`] binds the listener, builds the router
//! (`/v1` API and `/admin`) and returns a [`RunningFake`], the library handle tests and
//! `salvage serve` use to read its URL, move its clock, flush deliveries, inject faults and stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use salvage_domain::setup::FlexFactorCredentials;
use salvage_domain::Clock;
use salvage_gateway::flexfactor::WebhookKey;
use secrecy::ExposeSecret;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::admin::{self, StateView};
use super::api;
use super::app::{App, Settings};
use super::clock::FakeClock;
use super::config::FakeConfig;
use super::deliveries::DeliveryReport;
use super::error::FakeError;
use super::faults::{FaultBook, FaultRule};
use super::rules::RuleSet;
use super::state::{CallLog, Delivery, DeliveryAttempt, Order, State};
use super::webhook_target::WebhookTarget;

/// The fake FlexFactor server.
pub struct FakeFlexFactor;

impl FakeFlexFactor {
    /// Starts the fake on `config.listen` (`127.0.0.1:0` picks a free port) in the current tokio
    /// runtime. Fails on an invalid rule or fault, an unusable HMAC key, an empty app key or
    /// secret, a bad webhook URL, or an address that cannot be bound.
    pub async fn start(config: FakeConfig) -> Result<RunningFake, FakeError> {
        config
            .rules
            .validate()
            .map_err(|message| FakeError::Scenario {
                origin: "<config>".into(),
                message,
            })?;
        for f in &config.faults {
            f.validate().map_err(FakeError::Fault)?;
        }
        let c = &config.credentials;
        for (name, value) in [("app_key", &c.app_key), ("app_secret", &c.app_secret)] {
            if value.expose_secret().trim().is_empty() {
                return Err(FakeError::MissingCredential(name));
            }
        }
        let key = WebhookKey::from_base64(&c.hmac_signing_key)?;
        let webhook = config
            .webhook_url
            .as_deref()
            .map(WebhookTarget::parse)
            .transpose()?;
        let http = reqwest::Client::builder()
            .timeout(config.delivery_timeout)
            .connect_timeout(config.delivery_timeout.min(StdDuration::from_secs(5)))
            .user_agent("FlexFactor-Webhooks (salvage fake)")
            .build()
            .map_err(|e| FakeError::Http(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| FakeError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| FakeError::Bind {
            addr: config.listen,
            source,
        })?;
        let settings = Settings {
            credentials: c.clone(),
            app_key: c.app_key.clone(),
            app_secret: c.app_secret.clone(),
            mid: c.mid.clone(),
            environment_key: c.environment_key.clone(),
            seed: config.seed,
            token_lifetime: config.token_lifetime,
            idempotency_window: config.idempotency_window,
            capture_window: config.capture_window,
            redelivery: config.redelivery.clone(),
            webhooks_for_sync_answers: config.webhooks_for_sync_answers,
            test_mode: config.test_mode,
        };
        let app = Arc::new(App::new(
            Arc::new(FakeClock::new(&config.clock)),
            settings,
            key,
            http,
            State::new(
                config.seed,
                FaultBook::new(config.faults.clone()),
                config.rules.clone(),
            ),
            webhook,
        ));
        let router = api::routes().merge(admin::routes()).with_state(app.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "fake FlexFactor server stopped");
            }
        });
        let ticker = config.auto_deliver.map(|every| {
            let weak = Arc::downgrade(&app);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(app) = weak.upgrade() else { break };
                    app.deliver_due().await;
                }
            })
        });
        tracing::info!(%addr, "fake FlexFactor listening");
        Ok(RunningFake {
            app,
            addr,
            stop: Some(stop),
            server: Some(server),
            ticker,
        })
    }
}

/// A running fake. Dropping it stops it at once; [`shutdown`](Self::shutdown) lets in-flight
/// requests finish first (for up to a second).
pub struct RunningFake {
    app: Arc<App>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningFake")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningFake {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234/v1` (give it, with or without a trailing
    /// slash, to `FlexFactorConfig::new`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The admin base URL, e.g. `http://127.0.0.1:41234/admin`.
    pub fn admin_url(&self) -> String {
        format!("http://{}/admin", self.addr)
    }

    /// The fake's clock (give it to a client and a webhook verifier to share its time).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.app.clock.clone()
    }

    /// The fake's `now`.
    pub fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    /// True when the clock moves only when advanced.
    pub fn is_clock_driven(&self) -> bool {
        self.app.clock.is_driven()
    }

    /// The credentials it accepts (and signs webhooks with).
    pub fn credentials(&self) -> FlexFactorCredentials {
        self.app.settings.credentials.clone()
    }

    /// Moves the clock forward (a real clock gets an offset) and applies the order transitions
    /// that became due; their webhooks are sent by the next delivery pass.
    pub fn advance(&self, by: Duration) {
        self.app.advance(by);
    }

    /// [`advance`](Self::advance), then [`deliver_due`](Self::deliver_due).
    pub async fn advance_and_deliver(&self, by: Duration) -> DeliveryReport {
        self.app.advance(by);
        self.app.deliver_due().await
    }

    /// Sends every webhook due now (and redeliveries whose back-off has passed).
    pub async fn deliver_due(&self) -> DeliveryReport {
        self.app.deliver_due().await
    }

    /// Calls received per endpoint, and the `/evaluate` bodies.
    pub fn calls(&self) -> CallLog {
        self.app.lock().calls.clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Vec<FaultRule>) -> Result<(), FakeError> {
        self.app.set_faults(faults)
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: FaultRule) -> Result<(), FakeError> {
        self.app.add_fault(fault)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let _ = self.app.set_faults(Vec::new());
    }

    /// Replaces the outcome rules.
    pub fn set_rules(&self, rules: RuleSet) -> Result<(), FakeError> {
        self.app.set_rules(rules)
    }

    /// Points deliveries at a URL (`None`: keep them in the outbox).
    pub fn set_webhook_url(&self, url: Option<&str>) -> Result<(), FakeError> {
        self.app.set_webhook_url(url)
    }

    /// Where deliveries go.
    pub fn webhook_url(&self) -> Option<String> {
        self.app.webhook_target().map(|t| t.url.to_string())
    }

    /// One order by FlexFactor id.
    pub fn order(&self, id: &str) -> Option<Order> {
        self.state().orders.into_iter().find(|o| o.id == id)
    }

    /// The webhook outbox (acknowledged deliveries included).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.app.lock().outbox.clone()
    }

    /// Every HTTP send of a webhook so far.
    pub fn delivery_attempts(&self) -> Vec<DeliveryAttempt> {
        self.app.lock().attempts.clone()
    }

    /// Everything, as `GET /admin/state` shows it.
    pub fn state(&self) -> StateView {
        self.app.state_view()
    }

    /// Stops accepting requests, lets in-flight ones finish (up to a second), and stops the
    /// background deliveries.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(StdDuration::from_secs(1), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}
