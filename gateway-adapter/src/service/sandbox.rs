//! Sandboxes and test clocks (test mode only): isolated services inside a deployed one, for the
//! conformance suite and a CRM's own tests, as Stripe's test clocks are.
//!
//! `POST /v1/test/sandboxes` with a setup (TOML text or its JSON form, validated by the same
//! code as `check-config`, rules S1-S8) creates a sandbox: its own setup, its own store (a
//! PostgreSQL schema beside the deployment's, or an in-memory SQLite database), its own clock
//! starting at a given instant, and its own fake FlexFactor on that clock. Every `/v1` call and
//! webhook delivery that carries `x-salvage-sandbox: ID` is served by the sandbox and sees only
//! its orders, subscriptions, events and notifications. `POST .../advance {"to"}` moves its
//! clock: the work that falls due on the way (recycle re-attempts, expiries, reconciliation,
//! notification retries, FlexFactor's delayed results) runs in time order, each at its own
//! instant, and the call answers once it has settled. `DELETE` removes the sandbox and its data.
//!
//! Without test mode none of this exists: the routes are absent (404) and a request carrying
//! the sandbox header is refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use salvage_domain::{Clock, ManualClock};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tower::ServiceExt;

use super::config::ServiceConfig;
use super::error::ApiError;
use super::server::{self, RunningService, ServeOptions};
use super::state::AppState;
use crate::store::{outbox, Backend};

/// The header that names the sandbox a request is for.
pub const SANDBOX_HEADER: &str = "x-salvage-sandbox";

/// How many due instants one advance steps through at most (then it jumps to the target).
const MAX_STEPS: usize = 10_000;
/// Rounds of "FlexFactor delivers what is due, the service runs what is due" per instant.
const SETTLE_ROUNDS: usize = 5;

/// A future the sandbox traits return (they are implemented outside this crate).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A fake FlexFactor for one sandbox, on the sandbox's clock.
pub trait SandboxFlexFactor: Send + Sync {
    /// Its API base URL (`http://host:port/v1`).
    fn base_url(&self) -> String;
    /// Its root (admin endpoints under `/admin`).
    fn root_url(&self) -> String;
    /// Where it delivers webhooks.
    fn set_webhook_url(&self, url: &str) -> Result<(), String>;
    /// Delivers what is due at the clock's now.
    fn deliver_due(&self) -> Pending<'_, ()>;
    fn shutdown(self: Box<Self>) -> Pending<'static, ()>;
}

/// Starts a sandbox's fake FlexFactor (the binary provides it: the fake lives in `salvage-sim`).
pub trait SandboxFlexFactorStarter: Send + Sync {
    fn start(
        &self,
        clock: Arc<ManualClock>,
    ) -> Pending<'_, Result<Box<dyn SandboxFlexFactor>, String>>;
}

/// One sandbox.
pub struct Sandbox {
    pub id: String,
    pub clock: Arc<ManualClock>,
    state: Arc<AppState>,
    router: Router,
    running: Mutex<Option<RunningService>>,
    fake: Mutex<Option<Box<dyn SandboxFlexFactor>>>,
    fake_root: String,
    schema: Option<String>,
    /// One advance at a time.
    advancing: Mutex<()>,
}

impl Sandbox {
    /// Lets what is due now run: FlexFactor's deliveries, then the service's due work.
    async fn settle(&self) -> Result<(), String> {
        for _ in 0..SETTLE_ROUNDS {
            if let Some(f) = self.fake.lock().await.as_ref() {
                f.deliver_due().await;
            }
            self.state.drive().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Moves the clock to `to`, stopping at every instant work falls due on the way.
    async fn advance_to(&self, to: DateTime<Utc>) -> Result<usize, String> {
        let _one = self.advancing.lock().await;
        let mut steps = 0;
        self.settle().await?;
        while steps < MAX_STEPS {
            let now = self.clock.now();
            let next = outbox::next_due(&self.state.store.backend)
                .await
                .map_err(|e| e.to_string())?
                .and_then(DateTime::<Utc>::from_timestamp_millis);
            match next {
                Some(due) if due > now && due <= to => {
                    self.clock.set(due);
                    self.settle().await?;
                    steps += 1;
                }
                _ => break,
            }
        }
        if self.clock.now() < to {
            self.clock.set(to);
        }
        self.settle().await?;
        Ok(steps)
    }

    fn out(&self) -> SandboxOut {
        SandboxOut {
            id: self.id.clone(),
            now: self.clock.now(),
            flexfactor: format!("/v1/test/sandboxes/{}/flexfactor", self.id),
        }
    }
}

/// What the deployment gives its sandboxes.
pub struct Sandboxes {
    starter: Option<Arc<dyn SandboxFlexFactorStarter>>,
    store_url: SecretString,
    api_keys: Vec<SecretString>,
    read_only_keys: Vec<SecretString>,
    body_limit: usize,
    /// The deployment's store (to drop a sandbox's PostgreSQL schema).
    backend: Backend,
    /// The deployment's clock (a sandbox starts at its now unless told otherwise).
    clock: Arc<dyn Clock>,
    /// A sandbox's PostgreSQL schema is `{prefix}_{id}` (the deployment's schema, or `salvage`).
    schema_prefix: String,
    map: RwLock<BTreeMap<String, Arc<Sandbox>>>,
    counter: AtomicU64,
}

impl Sandboxes {
    /// The sandboxes of a deployment with configuration `config` on `backend` (its PostgreSQL
    /// schema, if any, prefixes theirs).
    pub fn new(
        starter: Option<Arc<dyn SandboxFlexFactorStarter>>,
        config: &ServiceConfig,
        backend: Backend,
        clock: Arc<dyn Clock>,
        schema_prefix: Option<&str>,
    ) -> Self {
        Sandboxes {
            starter,
            store_url: config.service.store_url.clone(),
            api_keys: config.service.api_keys.clone(),
            read_only_keys: config.service.read_only_api_keys.clone(),
            body_limit: config.service.request_body_limit,
            backend,
            clock,
            schema_prefix: schema_prefix.unwrap_or("salvage").to_string(),
            map: RwLock::new(BTreeMap::new()),
            counter: AtomicU64::new(0),
        }
    }

    pub async fn get(&self, id: &str) -> Option<Arc<Sandbox>> {
        self.map.read().await.get(id).cloned()
    }

    /// A new id: `sbx-<unix ms>-<n>` (letters, digits and dashes only).
    fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "sbx-{}-{n}",
            chrono::Utc::now().timestamp_millis().unsigned_abs()
        )
    }

    async fn create(&self, input: SandboxIn) -> Result<Arc<Sandbox>, ApiError> {
        let Some(starter) = &self.starter else {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "no_fake_flexfactor",
                "this build gives sandboxes no fake FlexFactor; run `salvage serve`",
            ));
        };
        let mut setup = setup_table(&input.setup)?;
        for t in ["service", "flexfactor", "test_mode"] {
            setup.remove(t);
        }
        if let Some(url) = &input.notifications_url {
            let mut n = toml::Table::new();
            n.insert("url".into(), toml::Value::String(url.clone()));
            n.insert(
                "secret".into(),
                toml::Value::String(
                    input
                        .notifications_secret
                        .clone()
                        .unwrap_or_else(|| "sandbox-notify-secret".into()),
                ),
            );
            setup.insert("notifications".into(), toml::Value::Table(n));
        }
        let id = self.new_id();
        let postgres = matches!(self.backend, Backend::Postgres(_));
        let schema = postgres.then(|| format!("{}_{}", self.schema_prefix, id.replace('-', "_")));
        let start = input.start.unwrap_or_else(|| self.clock.now());
        let clock = Arc::new(ManualClock::new(start));
        let fake = starter
            .start(clock.clone())
            .await
            .map_err(|e| ApiError::unavailable(format!("the sandbox's fake FlexFactor: {e}")))?;
        let setup_text = toml::to_string(&setup).map_err(|e| invalid(e.to_string()))?;
        let store_url = if postgres {
            self.store_url.expose_secret().to_string()
        } else {
            "sqlite::memory:".to_string()
        };
        let text = format!(
            "{setup_text}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{}\"\n\
             api_keys = [\"sandbox-placeholder-key-0000\"]\n\n[flexfactor]\nbase_url = \"{}\"\n\
             request_timeout_ms = 1000\n\n[test_mode]\nenabled = true\n",
            store_url.replace('\\', "\\\\").replace('"', "\\\""),
            fake.base_url()
        );
        let mut config = match ServiceConfig::from_str(
            &text,
            std::path::Path::new("sandbox setup"),
            &|_| None,
        ) {
            Ok(c) => c,
            Err(e) => {
                fake.shutdown().await;
                return Err(invalid(e.to_string()));
            }
        };
        config.service.api_keys = self.api_keys.clone();
        config.service.read_only_api_keys = self.read_only_keys.clone();
        config.service.request_body_limit = self.body_limit;
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        options.pg_schema = schema.clone();
        let running = match server::start(config, options).await {
            Ok(r) => r,
            Err(e) => {
                fake.shutdown().await;
                return Err(ApiError::unavailable(format!(
                    "the sandbox could not start: {e}"
                )));
            }
        };
        if let Err(e) = fake.set_webhook_url(&format!("{}/webhooks/flexfactor", running.url())) {
            fake.shutdown().await;
            let _ = running.shutdown().await;
            return Err(ApiError::unavailable(format!(
                "the sandbox's fake FlexFactor: {e}"
            )));
        }
        let state = running.state.clone();
        let sandbox = Arc::new(Sandbox {
            id: id.clone(),
            clock,
            router: server::router(state.clone(), self.body_limit),
            state,
            running: Mutex::new(Some(running)),
            fake_root: fake.root_url(),
            fake: Mutex::new(Some(fake)),
            schema,
            advancing: Mutex::new(()),
        });
        self.map.write().await.insert(id, sandbox.clone());
        Ok(sandbox)
    }

    async fn remove(&self, id: &str) -> Option<()> {
        let sandbox = self.map.write().await.remove(id)?;
        let _one = sandbox.advancing.lock().await;
        if let Some(r) = sandbox.running.lock().await.take() {
            if let Err(e) = r.shutdown().await {
                tracing::warn!(sandbox = %id, error = %e, "a sandbox did not stop cleanly");
            }
        }
        if let Some(f) = sandbox.fake.lock().await.take() {
            f.shutdown().await;
        }
        if let (Some(schema), Backend::Postgres(pool)) = (&sandbox.schema, &self.backend) {
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            if let Err(e) = sqlx::raw_sql(&sql).execute(pool).await {
                tracing::warn!(sandbox = %id, error = %e, "could not drop a sandbox's schema");
            }
        }
        Some(())
    }

    /// Removes every sandbox (at shutdown).
    pub async fn remove_all(&self) {
        let ids: Vec<String> = self.map.read().await.keys().cloned().collect();
        for id in ids {
            self.remove(&id).await;
        }
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_setup", message)
}

/// The setup of a request: TOML text, or its JSON form.
fn setup_table(v: &Value) -> Result<toml::Table, ApiError> {
    match v {
        Value::String(text) => {
            toml::from_str(text).map_err(|e| invalid(format!("the setup is not valid TOML: {e}")))
        }
        Value::Object(_) => toml::Table::try_from(v)
            .map_err(|e| invalid(format!("the setup cannot be read as a setup: {e}"))),
        _ => Err(invalid(
            "give the setup as TOML text or as a JSON object".into(),
        )),
    }
}

/// `POST /v1/test/sandboxes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SandboxIn {
    /// The setup: TOML text (as `salvage serve --config` reads it) or the same as JSON.
    #[schema(value_type = Object)]
    pub setup: Value,
    /// Where the sandbox's clock starts (default: the deployment's now).
    pub start: Option<DateTime<Utc>>,
    /// Where the sandbox sends CRM notifications (default: nowhere, logged only).
    pub notifications_url: Option<String>,
    /// The key the notifications are signed with (default `sandbox-notify-secret`).
    pub notifications_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SandboxOut {
    pub id: String,
    /// The sandbox's clock.
    pub now: DateTime<Utc>,
    /// The sandbox's fake FlexFactor, relative to the service (its admin endpoints under
    /// `/admin`, with the API key).
    pub flexfactor: String,
}

/// `POST /v1/test/sandboxes/{id}/advance`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AdvanceIn {
    /// The instant to move the clock to (not before its now).
    pub to: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdvanceOut {
    pub id: String,
    pub now: DateTime<Utc>,
    /// The instants on the way at which work fell due and ran.
    pub steps: usize,
}

fn sandboxes(state: &AppState) -> Result<&Arc<Sandboxes>, ApiError> {
    state
        .sandboxes
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such endpoint; see /openapi.json"))
}

async fn find(state: &AppState, id: &str) -> Result<Arc<Sandbox>, ApiError> {
    sandboxes(state)?
        .get(id)
        .await
        .ok_or_else(|| ApiError::not_found(format!("no sandbox {id}")))
}

/// Create a sandbox: its own setup, store, clock and fake FlexFactor (test mode only: the
/// `/v1/test` routes do not exist otherwise).
#[utoipa::path(post, path = "/v1/test/sandboxes", request_body = SandboxIn,
    responses((status = 201, body = SandboxOut), (status = 422, body = super::error::ErrorBody, description = "The setup breaks a rule (S1-S8) or cannot be read")),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Json(input): Json<SandboxIn>,
) -> Result<Response, ApiError> {
    let sandbox = sandboxes(&state)?.create(input).await?;
    Ok((StatusCode::CREATED, Json(sandbox.out())).into_response())
}

/// A sandbox's clock.
#[utoipa::path(get, path = "/v1/test/sandboxes/{id}",
    params(("id" = String, Path, description = "The sandbox")),
    responses((status = 200, body = SandboxOut), (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<SandboxOut>, ApiError> {
    Ok(Json(find(&state, &id).await?.out()))
}

/// Move a sandbox's clock; answers once what fell due has run.
#[utoipa::path(post, path = "/v1/test/sandboxes/{id}/advance", request_body = AdvanceIn,
    params(("id" = String, Path, description = "The sandbox")),
    responses((status = 200, body = AdvanceOut), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn advance(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Json(input): Json<AdvanceIn>,
) -> Result<Json<AdvanceOut>, ApiError> {
    let sandbox = find(&state, &id).await?;
    let now = sandbox.clock.now();
    if input.to < now {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "clock_backwards",
            format!("the sandbox's clock is at {now}; it only moves forward"),
        ));
    }
    let steps = sandbox
        .advance_to(input.to)
        .await
        .map_err(|e| ApiError::unavailable(format!("advancing the sandbox: {e}")))?;
    Ok(Json(AdvanceOut {
        id,
        now: sandbox.clock.now(),
        steps,
    }))
}

/// Remove a sandbox and all its data.
#[utoipa::path(delete, path = "/v1/test/sandboxes/{id}",
    params(("id" = String, Path, description = "The sandbox")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    sandboxes(&state)?
        .remove(&id)
        .await
        .ok_or_else(|| ApiError::not_found(format!("no sandbox {id}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ANY /v1/test/sandboxes/{id}/flexfactor/{*path}`: the sandbox's fake FlexFactor (its admin
/// endpoints), through the service, so that a test needs only the service's URL.
pub async fn flexfactor(
    State(state): State<Arc<AppState>>,
    Path((id, path)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let sandbox = find(&state, &id).await?;
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!(
        "{}/{}{query}",
        sandbox.fake_root,
        path.trim_start_matches('/')
    );
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).cloned();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    let client = reqwest::Client::new();
    let mut out = client.request(method, &url).body(body.to_vec());
    if let Some(ct) = content_type.as_ref().and_then(|v| v.to_str().ok()) {
        out = out.header("content-type", ct);
    }
    let answer = out
        .send()
        .await
        .map_err(|e| ApiError::unavailable(format!("the sandbox's fake FlexFactor: {e}")))?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| ApiError::unavailable(format!("the sandbox's fake FlexFactor: {e}")))?;
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    if let Some(ct) = ct.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct);
    }
    Ok(res)
}

/// Sends a request that names a sandbox to it. Without test mode such a request is refused
/// (a test must never reach production believing it is in a sandbox). The sandbox routes
/// themselves (`/v1/test/...`) are the deployment's.
pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(id) = req
        .headers()
        .get(SANDBOX_HEADER)
        .map(|v| v.to_str().map(str::to_string))
    else {
        return next.run(req).await;
    };
    if req.uri().path().starts_with("/v1/test/") {
        return next.run(req).await;
    }
    let Some(sandboxes) = &state.sandboxes else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_test_mode",
            "this service is not in test mode: it has no sandboxes",
        )
        .into_response();
    };
    let Ok(id) = id else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable sandbox id",
        )
        .into_response();
    };
    let mut req = req;
    req.headers_mut().remove(SANDBOX_HEADER);
    // The deployment's router has matched the request already (its path parameters are in the
    // extensions): the sandbox's router matches it afresh.
    *req.extensions_mut() = axum::http::Extensions::new();
    match sandboxes.get(&id).await {
        Some(sandbox) => match sandbox.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => ApiError::not_found(format!("no sandbox {id}")).into_response(),
    }
}
