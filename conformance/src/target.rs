//! What scenarios run against: the service's HTTP API plus the fake FlexFactor's admin
//! endpoints, either in-process (a service and a fake on one manual clock, started here) or a
//! deployment given by URLs.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeZone, Utc};
use salvage_domain::{Clock, ManualClock};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use salvage_gateway::store::Store;
use salvage_sim::fake_flexfactor::{ClockMode, FakeConfig, FakeFlexFactor, RunningFake};
use serde_json::Value;

use crate::crm::{CrmReceiver, Inbox};
use crate::setup;

/// The API key of in-process services.
pub const IN_PROCESS_API_KEY: &str = "conformance-api-key-0123456789";
/// The API key of `salvage serve`'s embedded sandbox (the default for `--target`).
pub const SANDBOX_API_KEY: &str = "sandbox-key-0123456789";
/// The FlexFactor request timeout of in-process services (short, so that timeout faults are
/// quick).
pub const IN_PROCESS_FLEXFACTOR_TIMEOUT_MS: u64 = 1000;

/// The first `now` of an in-process world's clock.
pub fn world_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The service configuration text of an in-process world for `setup`.
pub fn in_process_config(
    setup: &toml::Table,
    fake_base_url: &str,
    notify_url: &str,
) -> Result<String, String> {
    let setup_text =
        toml::to_string(setup).map_err(|e| format!("the setup cannot be written as TOML: {e}"))?;
    Ok(format!(
        "{setup_text}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"sqlite::memory:\"\napi_keys = [\"{IN_PROCESS_API_KEY}\"]\n\n\
         [flexfactor]\nbase_url = \"{fake_base_url}\"\nrequest_timeout_ms = {IN_PROCESS_FLEXFACTOR_TIMEOUT_MS}\n\n\
         [notifications]\nurl = \"{notify_url}\"\nsecret = \"conformance-notify-secret\"\n"
    ))
}

/// An in-process service and fake FlexFactor sharing one manual clock.
pub struct World {
    svc: RunningService,
    fake: RunningFake,
    clock: Arc<ManualClock>,
    _crm: CrmReceiver,
}

/// A sandbox of a deployment in test mode: its clock moves on request.
pub struct SandboxWorld {
    pub id: String,
    now: std::sync::Mutex<DateTime<Utc>>,
    /// Leave the sandbox at the end (for a look).
    keep: bool,
    _crm: CrmReceiver,
}

/// How time and background work are driven.
pub enum Driver {
    InProcess(Box<World>),
    /// A deployment: its own clock; background work runs on its own.
    Remote,
    /// A sandbox of a deployment in test mode (`/v1/test/sandboxes`).
    Sandbox(Box<SandboxWorld>),
}

/// The header that names a sandbox (the service's `SANDBOX_HEADER`).
pub const SANDBOX_HEADER: &str = salvage_gateway::service::sandbox::SANDBOX_HEADER;

/// Whether the deployment at `api` runs in test mode (its answers say so).
pub async fn in_test_mode(api: &str) -> Result<bool, String> {
    let http = http_client()?;
    let r = http
        .get(format!("{}/readyz", api.trim().trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| format!("cannot reach the service at {api}: {}", e.without_url()))?;
    Ok(r.headers()
        .get(salvage_gateway::service::server::TEST_MODE_HEADER)
        .is_some())
}

/// Everything a scenario talks to.
pub struct Env {
    /// The service's base URL (`http://host:port`).
    pub api: String,
    pub api_key: String,
    /// The fake FlexFactor's root URL (its admin endpoints are under `/admin`).
    pub fake: String,
    /// The HMACSigningKey (base64) webhooks are signed with.
    pub hmac_key: String,
    /// The host FlexFactor signs (`host[:port]` of the webhook URL).
    pub webhook_host: String,
    /// FlexFactor secrets that must never be shown (S1).
    pub secrets: Vec<String>,
    /// Notifications the service sent, when they can be seen.
    pub crm: Option<Arc<Inbox>>,
    pub http: reqwest::Client,
    pub driver: Driver,
}

fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(StdDuration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// `host[:port]` as an HTTP client sends it in `Host` for `url`.
pub fn host_of(url: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = u.host_str().ok_or_else(|| format!("{url}: no host"))?;
    Ok(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// The fake's root URL from its API base (`http://h:p/v1` → `http://h:p`).
pub fn fake_root(url: &str) -> String {
    let t = url.trim().trim_end_matches('/');
    t.strip_suffix("/v1").unwrap_or(t).to_string()
}

impl Env {
    /// Starts an in-process world for `setup` (the sample setup with a scenario's edits).
    pub async fn in_process(setup: &toml::Table) -> Result<Env, String> {
        let clock = Arc::new(ManualClock::new(world_start()));
        let mut fake_config = FakeConfig::sandbox_defaults();
        fake_config.clock = ClockMode::Shared(clock.clone());
        fake_config.auto_deliver = None;
        let fake = FakeFlexFactor::start(fake_config)
            .await
            .map_err(|e| format!("fake FlexFactor: {e}"))?;
        let crm = CrmReceiver::start(([127, 0, 0, 1], 0).into()).await?;
        let text = in_process_config(setup, &fake.base_url(), &crm.url())?;
        let config =
            ServiceConfig::from_str(&text, std::path::Path::new("scenario setup"), &|_| None)
                .map_err(|e| e.to_string())?;
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        let svc = start(config, options)
            .await
            .map_err(|e| format!("service: {e}"))?;
        fake.set_webhook_url(Some(&format!("{}/webhooks/flexfactor", svc.url())))
            .map_err(|e| format!("fake FlexFactor: {e}"))?;
        let api = svc.url();
        Ok(Env {
            webhook_host: host_of(&api)?,
            api,
            api_key: IN_PROCESS_API_KEY.to_string(),
            fake: fake_root(&fake.base_url()),
            hmac_key: setup::hmac_key(setup).unwrap_or_default(),
            secrets: setup::secrets(setup),
            crm: Some(crm.inbox.clone()),
            http: http_client()?,
            driver: Driver::InProcess(Box::new(World {
                svc,
                fake,
                clock,
                _crm: crm,
            })),
        })
    }

    /// A deployment at `api` with the fake FlexFactor at `flexfactor`.
    pub fn remote(
        api: &str,
        flexfactor: &str,
        api_key: &str,
        hmac_key: &str,
        secrets: Vec<String>,
        crm: Option<Arc<Inbox>>,
    ) -> Result<Env, String> {
        let api = api.trim().trim_end_matches('/').to_string();
        Ok(Env {
            webhook_host: host_of(&api)?,
            api,
            api_key: api_key.to_string(),
            fake: fake_root(flexfactor),
            hmac_key: hmac_key.to_string(),
            secrets,
            crm,
            http: http_client()?,
            driver: Driver::Remote,
        })
    }

    /// A new sandbox of the deployment at `api` (in test mode) for `setup`, its clock at the
    /// in-process worlds' start, its notifications received here.
    pub async fn sandbox(
        api: &str,
        api_key: &str,
        setup: &toml::Table,
        keep: bool,
    ) -> Result<Env, String> {
        let api = api.trim().trim_end_matches('/').to_string();
        let crm = CrmReceiver::start(([127, 0, 0, 1], 0).into()).await?;
        let setup_text = toml::to_string(setup)
            .map_err(|e| format!("the setup cannot be written as TOML: {e}"))?;
        let create = http_client()?
            .post(format!("{api}/v1/test/sandboxes"))
            .bearer_auth(api_key)
            .json(&serde_json::json!({
                "setup": setup_text,
                "start": world_start(),
                "notifications_url": crm.url(),
            }))
            .send()
            .await
            .map_err(|e| format!("creating a sandbox: {}", e.without_url()))?;
        let status = create.status();
        let body: Value = create
            .json()
            .await
            .map_err(|e| format!("creating a sandbox: {}", e.without_url()))?;
        if !status.is_success() {
            return Err(format!("creating a sandbox: {status}: {body}"));
        }
        let id = body["id"]
            .as_str()
            .ok_or_else(|| format!("creating a sandbox: no id in {body}"))?
            .to_string();
        let now = body["now"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(world_start);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            SANDBOX_HEADER,
            reqwest::header::HeaderValue::from_str(&id)
                .map_err(|e| format!("sandbox id {id}: {e}"))?,
        );
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(30))
            .default_headers(headers)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Env {
            webhook_host: host_of(&api)?,
            fake: format!("{api}/v1/test/sandboxes/{id}/flexfactor"),
            api,
            api_key: api_key.to_string(),
            hmac_key: setup::hmac_key(setup).unwrap_or_default(),
            secrets: setup::secrets(setup),
            crm: Some(crm.inbox.clone()),
            http,
            driver: Driver::Sandbox(Box::new(SandboxWorld {
                id,
                now: std::sync::Mutex::new(now),
                keep,
                _crm: crm,
            })),
        })
    }

    /// Moves a sandbox's clock to `to` (the service runs what falls due on the way).
    async fn sandbox_advance(&self, w: &SandboxWorld, to: DateTime<Utc>) -> Result<(), String> {
        let r = self
            .http
            .post(format!("{}/v1/test/sandboxes/{}/advance", self.api, w.id))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "to": to }))
            .send()
            .await
            .map_err(|e| format!("advancing the sandbox: {}", e.without_url()))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("advancing the sandbox: {status}: {body}"));
        }
        let now = body["now"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(to);
        match w.now.lock() {
            Ok(mut g) => *g = now,
            Err(p) => *p.into_inner() = now,
        }
        Ok(())
    }

    /// True when background work runs when the runner settles it (in-process or a sandbox),
    /// not on the deployment's own time.
    pub fn settles_on_request(&self) -> bool {
        matches!(self.driver, Driver::InProcess(_) | Driver::Sandbox(_))
    }

    /// True for an in-process world.
    pub fn is_in_process(&self) -> bool {
        matches!(self.driver, Driver::InProcess(_))
    }

    /// The in-process service's store (`None` for a deployment).
    pub fn store(&self) -> Option<&Arc<Store>> {
        match &self.driver {
            Driver::InProcess(w) => Some(&w.svc.state.store),
            Driver::Remote | Driver::Sandbox(_) => None,
        }
    }

    /// The service's time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.driver {
            Driver::InProcess(w) => w.clock.now(),
            Driver::Remote => Utc::now(),
            Driver::Sandbox(w) => w.now.lock().map(|g| *g).unwrap_or_else(|p| *p.into_inner()),
        }
    }

    /// Moves the shared clock and lets what became due run.
    pub async fn advance(&self, by: chrono::Duration) -> Result<(), String> {
        match &self.driver {
            Driver::InProcess(w) => {
                w.clock.advance(by);
                self.settle().await
            }
            Driver::Remote => Err("the deployment's clock cannot be moved from here".into()),
            Driver::Sandbox(w) => self.sandbox_advance(w, self.now() + by).await,
        }
    }

    /// Lets due work run: FlexFactor's due deliveries, the service's timers, outbox and
    /// notifications.
    pub async fn settle(&self) -> Result<(), String> {
        match &self.driver {
            Driver::InProcess(w) => {
                // FlexFactor's due deliveries first: they were due at or before now, while the
                // service's timers (e.g. reconciliation polls) may be due exactly now.
                for _ in 0..5 {
                    w.fake.deliver_due().await;
                    w.svc.state.drive().await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Driver::Sandbox(w) => self.sandbox_advance(w, self.now()).await,
            Driver::Remote => {
                for _ in 0..3 {
                    self.admin("POST", "/admin/deliver", None).await?;
                    tokio::time::sleep(StdDuration::from_millis(400)).await;
                }
                Ok(())
            }
        }
    }

    /// A request to the fake's admin endpoints; the JSON answer.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.fake);
        let build = || {
            let req = match method {
                "GET" => self.http.get(&url),
                "POST" => self.http.post(&url),
                "DELETE" => self.http.delete(&url),
                "PUT" => self.http.put(&url),
                other => return Err(format!("method {other}")),
            };
            // A sandbox's fake is reached through the service, with the API key.
            let req = match &self.driver {
                Driver::Sandbox(_) => req.bearer_auth(&self.api_key),
                _ => req,
            };
            Ok(match body {
                Some(b) => req.json(b),
                None => req,
            })
        };
        // A GET is idempotent: a send error (a kept-alive connection the server closed) is
        // tried again, at most three times in all.
        let tries = if method == "GET" { 3 } else { 1 };
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            match build()?.send().await {
                Ok(r) => break r,
                Err(_) if attempt < tries => {
                    tokio::time::sleep(StdDuration::from_millis(50)).await;
                }
                Err(e) => return Err(format!("fake FlexFactor {path}: {}", e.without_url())),
            }
        };
        let status = r.status();
        let text = r
            .text()
            .await
            .map_err(|e| format!("fake FlexFactor {path}: {}", e.without_url()))?;
        if !status.is_success() {
            return Err(format!("fake FlexFactor {method} {path}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Stops what was started here.
    pub async fn shutdown(self) {
        match self.driver {
            Driver::InProcess(w) => {
                let w = *w;
                let _ = w.svc.shutdown().await;
                w.fake.shutdown().await;
            }
            Driver::Sandbox(w) if !w.keep => {
                let _ = self
                    .http
                    .delete(format!("{}/v1/test/sandboxes/{}", self.api, w.id))
                    .bearer_auth(&self.api_key)
                    .send()
                    .await;
            }
            Driver::Sandbox(_) | Driver::Remote => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_fake_roots() {
        assert_eq!(host_of("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(host_of("http://example.com/x").unwrap(), "example.com");
        assert_eq!(fake_root("http://127.0.0.1:9/v1/"), "http://127.0.0.1:9");
        assert_eq!(fake_root("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}
