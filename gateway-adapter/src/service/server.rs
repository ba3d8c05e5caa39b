//! `salvage serve`: builds the service from its configuration, serves the API, runs the
//! background worker (projections, dispatcher, scheduler), and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header::AUTHORIZATION, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use secrecy::ExposeSecret;
use tokio::sync::{oneshot, watch, Notify};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::{info, warn};

use salvage_domain::clock::Clock;
use salvage_domain::ports::Charge;
use salvage_domain::DomainServices;

use super::config::{ConfigError, ServiceConfig};
use super::error::ApiError;
use super::state::{AppState, Role};
use super::{api, console, openapi, ops, preflight, sandbox, summary, webhooks};
use crate::card_fingerprint::CardFingerprinter;
use crate::crm::SandboxProcessor;
use crate::engine::effects::ServiceEffects;
use crate::engine::intake_queue::IntakeQueue;
use crate::engine::{Engine, EngineConfig};
use crate::flexfactor::metered::Metered;
use crate::metrics::Metrics;
use crate::store::{webhook_book, Store};

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The configuration cannot be served (the same problems `check-config` reports).
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("FlexFactor gateway {gateway}: {reason}")]
    FlexFactor { gateway: String, reason: String },
    #[error("charge hook: {0}")]
    ChargeHook(String),
    #[error("notifications: {0}")]
    Notifications(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("the server stopped: {0}")]
    Serve(String),
}

/// How to run beyond the configuration file.
pub struct ServeOptions {
    pub clock: Arc<dyn Clock>,
    /// Without a charge hook, charge regular gateways with the sandbox processor (embedded
    /// default) instead of refusing such charges.
    pub sandbox_charges: bool,
    /// Put every PostgreSQL connection in this schema (tests share one database this way).
    pub pg_schema: Option<String>,
    /// How often the idle background worker looks for due work; `None`: the configuration's
    /// `[service] scheduler_poll_ms`.
    pub poll_interval: Option<Duration>,
    /// How long the worker, woken by a request, lets other requests arrive before it runs:
    /// it then handles them in one batch, and a burst of requests is not slowed by background
    /// work between each (notifications and projections come this much later).
    pub worker_settle: Duration,
    /// In test mode, what starts each sandbox's fake FlexFactor (the binary gives it).
    pub sandbox_flexfactor: Option<Arc<dyn sandbox::SandboxFlexFactorStarter>>,
}

impl ServeOptions {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ServeOptions {
            clock,
            sandbox_charges: false,
            pg_schema: None,
            poll_interval: None,
            worker_settle: Duration::from_millis(25),
            sandbox_flexfactor: None,
        }
    }
}

/// A started service.
pub struct RunningService {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl RunningService {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests and the worker's current round.
    pub async fn shutdown(mut self) -> Result<(), ServiceError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle
            .await
            .map_err(|e| ServiceError::Serve(e.to_string()))?
    }

    /// Runs until `signal` completes, then shuts down gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        signal.await;
        self.shutdown().await
    }
}

#[derive(Clone, Default)]
struct Ids(Arc<AtomicU64>);

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("req-{n:08x}"))
            .ok()
            .map(RequestId::new)
    }
}

async fn require_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header.and_then(|v| v.strip_prefix("Bearer ")) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send your API key as Authorization: Bearer <api key>",
        )
        .into_response(),
        Some(key) => match state.role_of(key.trim()) {
            Some(Role::Operator) => next.run(req).await,
            Some(Role::ReadOnly) if req.method() == Method::GET || req.method() == Method::HEAD => {
                next.run(req).await
            }
            Some(Role::ReadOnly) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key is read-only: it cannot change anything",
            )
            .into_response(),
            None => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")
                .into_response(),
        },
    }
}

async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    state.metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The header every answer of a service in test mode carries.
pub const TEST_MODE_HEADER: &str = "x-salvage-test-mode";

async fn say_test_mode(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(TEST_MODE_HEADER, HeaderValue::from_static("true"));
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// The router over a state.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    let v1 = Router::new()
        .route("/v1/orders", post(api::post_order))
        .route("/v1/orders/{order_id}", get(api::get_order))
        .route("/v1/orders/{order_id}/rerun", post(api::rerun))
        .route(
            "/v1/subscriptions/{subscription_id}",
            get(api::get_subscription),
        )
        .route(
            "/v1/subscriptions/{subscription_id}/rebills",
            post(api::post_rebill),
        )
        .route("/v1/events", get(api::events))
        .route("/v1/salvage/summary", get(summary::get_summary))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    let v1 = if state.sandboxes.is_some() {
        v1.merge(
            Router::new()
                .route("/v1/test/sandboxes", post(sandbox::create))
                .route(
                    "/v1/test/sandboxes/{id}",
                    get(sandbox::show).delete(sandbox::delete),
                )
                .route("/v1/test/sandboxes/{id}/advance", post(sandbox::advance))
                .route(
                    "/v1/test/sandboxes/{id}/flexfactor/{*path}",
                    any(sandbox::flexfactor),
                )
                // The same keys as the rest of /v1: read-only ones may look, not change.
                .route_layer(middleware::from_fn_with_state(state.clone(), require_key)),
        )
    } else {
        v1
    };
    let test_mode = state.test_mode;
    let app = Router::new()
        .merge(v1)
        .merge(console::router())
        .route("/webhooks/flexfactor", post(webhooks::flexfactor_webhook))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(Ids::default()))
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state, sandbox::dispatch));
    if test_mode {
        app.layer(middleware::from_fn(say_test_mode))
    } else {
        app
    }
}

/// Builds everything and starts serving.
pub async fn start(
    config: ServiceConfig,
    options: ServeOptions,
) -> Result<RunningService, ServiceError> {
    let clock = options.clock.clone();
    let store = Arc::new(
        Store::open_in_schema(
            config.service.store_url.expose_secret(),
            options.pg_schema.as_deref(),
        )
        .await?,
    );
    let setup = Arc::new(config.setup.clone());
    let services = DomainServices::new(setup.clone(), clock.clone());
    let metrics = Arc::new(Metrics::new().map_err(|e| ServiceError::Metrics(e.to_string()))?);
    metrics.test_mode.set(i64::from(config.test_mode.enabled));

    // The same parts `check-config` builds (one validation path).
    let parts = preflight::build(&config, clock.clone()).map_err(ServiceError::Config)?;
    // Every FlexFactor call is counted and timed (metrics, the console's health page).
    let clients: std::collections::BTreeMap<_, Arc<dyn salvage_domain::ports::FlexFactor>> = parts
        .clients
        .into_iter()
        .map(|(id, c)| {
            let metered: Arc<dyn salvage_domain::ports::FlexFactor> =
                Arc::new(Metered::new(c, metrics.clone()));
            (id, metered)
        })
        .collect();
    let verifiers = parts.verifiers;
    let tokenizer = setup
        .cascade_all_gateway()
        .map(|g| g.id.clone())
        .or_else(|| clients.keys().next().cloned())
        .and_then(|id| clients.get(&id).cloned());
    let charge: Option<Arc<dyn Charge>> = match parts.charge_hook {
        Some(hook) => Some(Arc::new(hook)),
        None if options.sandbox_charges => Some(Arc::new(SandboxProcessor)),
        None => None,
    };
    let notifier = parts.notifier;
    let effects = Arc::new(ServiceEffects {
        store: store.clone(),
        flexfactor: clients,
        charge,
        notifier,
        clock: clock.clone(),
        metrics: metrics.clone(),
    });
    let engine = Arc::new(
        Engine::new(store.clone(), services, effects, EngineConfig::default())
            .with_metrics(metrics.clone()),
    );
    let fingerprinter = CardFingerprinter::from_setup(&setup).map(Arc::new);
    // The committer stops once the state (and so the queue) is dropped, after the service has
    // answered every request in flight.
    let (intake, _committer) = IntakeQueue::start(engine.clone());
    let state = Arc::new(AppState {
        engine,
        intake,
        store: store.clone(),
        setup,
        clock: clock.clone(),
        api_keys: config.service.api_keys.clone(),
        test_mode: config.test_mode.enabled,
        sandboxes: config.test_mode.enabled.then(|| {
            Arc::new(sandbox::Sandboxes::new(
                options.sandbox_flexfactor.clone(),
                &config,
                store.backend.clone(),
                clock.clone(),
                options.pg_schema.as_deref(),
            ))
        }),
        read_only_keys: config.service.read_only_api_keys.clone(),
        console: console::ConsoleSettings::new(
            &config.service.api_keys,
            &config.service.read_only_api_keys,
            config.service.console_session_minutes,
        ),
        tokenizer,
        fingerprinter,
        verifiers,
        metrics,
        wake: Arc::new(Notify::new()),
    });

    let listener = tokio::net::TcpListener::bind(config.service.listen)
        .await
        .map_err(|e| ServiceError::Listen {
            addr: config.service.listen,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| ServiceError::Listen {
        addr: config.service.listen,
        reason: e.to_string(),
    })?;
    let app = router(state.clone(), config.service.request_body_limit);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(worker(
        state.clone(),
        stop_rx,
        options
            .poll_interval
            .unwrap_or(Duration::from_millis(config.service.scheduler_poll_ms)),
        options.worker_settle,
        Duration::from_millis(config.service.worker_yield_ms),
        config.flexfactor.webhook_tolerance_seconds as i64,
    ));
    let grace = Duration::from_secs(config.service.shutdown_grace_seconds);
    let sandboxes = state.sandboxes.clone();
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
                info!("shutting down: finishing in-flight requests");
            })
            .await;
        let _ = stop_tx.send(true);
        if let Some(s) = &sandboxes {
            s.remove_all().await;
        }
        if tokio::time::timeout(grace, worker).await.is_err() {
            warn!("the background worker did not finish within the grace period");
        }
        info!("stopped");
        served.map_err(|e| ServiceError::Serve(e.to_string()))
    });
    info!(%addr, "listening");
    Ok(RunningService {
        addr,
        state,
        shutdown: Some(shutdown_tx),
        handle,
    })
}

/// While yielding to deliveries, the worker looks this often whether they have stopped; they
/// have when none was in flight for this long.
const INTAKE_QUIET: Duration = Duration::from_millis(10);

/// The background worker: projections, dispatcher and due outbox rows, woken by requests and
/// polling for timers; prunes old webhook nonces. While webhook deliveries keep arriving it
/// holds off, at most `yield_max` after it was last caught up (see `[service] worker_yield_ms`).
async fn worker(
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    poll: Duration,
    settle: Duration,
    yield_max: Duration,
    tolerance_s: i64,
) {
    let mut last_prune = Instant::now();
    // Since when the worker has held off without catching up.
    let mut holding_since: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let held = tokio::time::Instant::now();
        while !yield_max.is_zero() && state.intake.busy(INTAKE_QUIET) {
            if holding_since
                .get_or_insert_with(tokio::time::Instant::now)
                .elapsed()
                >= yield_max
            {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(INTAKE_QUIET) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Some(m) = &state.engine.metrics {
            let seconds = held.elapsed().as_secs_f64();
            if seconds >= INTAKE_QUIET.as_secs_f64() {
                m.worker_yielded(seconds);
            }
        }
        let round = state.engine.background_round().await;
        if !matches!(&round, Ok(s) if state.engine.saturated(s)) {
            // Caught up with what was there: it may hold off again.
            holding_since = None;
        }
        let worked = match round {
            // A full batch: more is waiting now.
            Ok(s) if state.engine.saturated(&s) => continue,
            Ok(s) => !s.is_idle(),
            Err(e) => {
                warn!(error = %e, "background round failed; retrying");
                false
            }
        };
        if last_prune.elapsed() > Duration::from_secs(60) {
            let before = state.clock.now().timestamp_millis() - 2 * tolerance_s * 1000;
            if let Err(e) = webhook_book::prune_nonces(&state.store.backend, before).await {
                warn!(error = %e, "could not prune webhook nonces");
            }
            last_prune = Instant::now();
        }
        if worked {
            // Work came in since the last round: let more gather, so that rounds are few and
            // each takes the write lock (SQLite has one) briefly, between requests.
            tokio::select! {
                _ = tokio::time::sleep(settle) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        tokio::select! {
            _ = state.wake.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(settle) => {}
                    _ = stop.changed() => {}
                }
            }
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}
