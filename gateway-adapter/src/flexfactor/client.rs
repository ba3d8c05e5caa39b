//! The FlexFactor HTTP client: the domain's [`FlexFactor`] port over reqwest (rustls).
//!
//! Policy, per call:
//!
//! | call | replay class | retried on |
//! |---|---|---|
//! | `/oauth2/token`, `/tokenize`, `GET /orders/{id}` | safe (no effect, or a harmless one) | connect errors, 5xx, timeouts, cut connections |
//! | `/evaluate`, `/capture` (idempotency key), `/orders/{id}/cancel`, `/external-cancel` (idempotent by nature) | keyed | connect errors, 5xx, cut connections — **not** timeouts: a timeout after sending makes the outcome unknown (F3) |
//! | `/orders/{id}/refund` | once | connect errors only (the request was never sent) |
//!
//! A 401 fetches a new token once and repeats the call (F1); a second 401 is
//! [`FlexFactorClientError::Unauthorized`]. Retries wait `base_delay * 2^(n-1)`, capped at
//! `max_delay` ([`RetryConfig`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use salvage_domain::customer::{CardDetails, CardToken};
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::money::Money;
use salvage_domain::ports::{
    EvaluateAnswer, FlexFactor, FlexFactorError, FlexFactorOrderStatus, RefundAnswer,
    SalvageRequest, SubmissionMode,
};
use salvage_domain::setup::FlexFactorCredentials;
use salvage_domain::Clock;
use secrecy::{ExposeSecret, SecretString};

use super::auth::{AccessToken, TokenCache};
use super::error::{snippet, FlexFactorClientError, ValidationErrors};
use super::transformers::{
    from_wire, to_body, CaptureRequest, EvaluateContext, EvaluateRequest, EvaluateResponse,
    OrderResponse, RefundRequest, StatusResponse, TokenRequest, TokenResponse, TokenizeRequest,
    TokenizeResponse, WireError,
};

/// FlexFactor's sandbox (newer host; `https://api-sandbox.flex-charge.com/v1/` is the older one).
pub const SANDBOX_BASE_URL: &str = "https://api-sandbox.flexfactor.io/v1/";
/// FlexFactor's production API.
pub const PRODUCTION_BASE_URL: &str = "https://api.flexfactor.io/v1/";

/// Retries with exponential back-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// How many times a request may be sent in all (1 = no retry).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay_before(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// The client's configuration (the credentials come separately, as the domain's
/// [`FlexFactorCredentials`]).
#[derive(Debug, Clone)]
pub struct FlexFactorConfig {
    /// Base URL including the version, e.g. [`SANDBOX_BASE_URL`].
    pub base_url: String,
    /// Time allowed for a whole request, answer included. Past it, a sent `/evaluate` has an
    /// unknown outcome.
    pub request_timeout: Duration,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// A token is replaced this long before its `expires` (F1).
    pub token_refresh_margin: Duration,
    /// The lifetime assumed when `/oauth2/token` gives no `expires` (FlexFactor documents 10
    /// minutes).
    pub default_token_lifetime: Duration,
    /// Retries and back-off.
    pub retry: RetryConfig,
    /// `transaction.dynamicDescriptor` of every submission, when set.
    pub dynamic_descriptor: Option<String>,
    /// `transaction.timezoneUtcOffset` in hours (the CRM does not know the shopper's zone).
    pub timezone_utc_offset: i32,
    /// `transaction.responseCodeSource` per declining gateway id (e.g. `"nmi-main" → "nmi"`);
    /// a gateway not listed is named by its id.
    pub response_code_sources: BTreeMap<String, String>,
}

impl FlexFactorConfig {
    /// Defaults for the given base URL.
    pub fn new(base_url: impl Into<String>) -> Self {
        FlexFactorConfig {
            base_url: base_url.into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            token_refresh_margin: Duration::from_secs(60),
            default_token_lifetime: Duration::from_secs(600),
            retry: RetryConfig::default(),
            dynamic_descriptor: None,
            timezone_utc_offset: 0,
            response_code_sources: BTreeMap::new(),
        }
    }

    /// Defaults for FlexFactor's sandbox.
    pub fn sandbox() -> Self {
        Self::new(SANDBOX_BASE_URL)
    }

    /// Defaults for FlexFactor's production API.
    pub fn production() -> Self {
        Self::new(PRODUCTION_BASE_URL)
    }
}

/// How a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// No effect, or a harmless one: repeat on anything transient.
    Safe,
    /// Idempotent by key or by nature: repeat unless a timeout left the outcome unknown.
    Keyed,
    /// Repeat only when the request was never sent.
    Once,
}

/// One request to FlexFactor.
struct Call<'a> {
    name: &'static str,
    method: Method,
    segments: &'a [&'a str],
    query: &'a [(&'static str, &'a str)],
    body: Option<&'a [u8]>,
    replay: Replay,
}

/// An HTTP answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Why one send produced no answer.
enum SendFailure {
    /// The request could not be built: a bug or a bad configuration.
    Build(String),
    /// The request was never sent (no connection).
    NotSent(String),
    /// Sent, and no answer in time.
    TimedOut(String),
    /// Sent, and the connection failed before the answer was complete.
    Cut(String),
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    snippet(&text)
}

fn classify(e: reqwest::Error) -> SendFailure {
    // Never let the URL (its query can hold the MID and the EnvironmentKey) into a message.
    let e = e.without_url();
    let text = describe(&e);
    if e.is_builder() {
        SendFailure::Build(text)
    } else if e.is_connect() {
        SendFailure::NotSent(text)
    } else if e.is_timeout() {
        SendFailure::TimedOut(text)
    } else {
        SendFailure::Cut(text)
    }
}

fn wire(e: WireError) -> FlexFactorClientError {
    match e {
        WireError::Request(s) => FlexFactorClientError::Request(s),
        other => FlexFactorClientError::Protocol(other.to_string()),
    }
}

/// The error of a non-2xx answer.
fn status_error(answer: &Answer) -> FlexFactorClientError {
    match answer.status {
        400 | 422 => FlexFactorClientError::Validation(ValidationErrors::from_body(
            Some(answer.status),
            &answer.body,
        )),
        401 => FlexFactorClientError::Unauthorized,
        403 => FlexFactorClientError::Forbidden,
        404 => FlexFactorClientError::NotFound,
        409 => FlexFactorClientError::IdempotencyConflict,
        status => FlexFactorClientError::UnexpectedStatus { status },
    }
}

/// A failure to get a token means the call itself was never sent: whatever went wrong at
/// `/oauth2/token` (5xx, no connection) must not read as an unknown outcome of the call.
fn token_error(e: FlexFactorClientError) -> FlexFactorClientError {
    match e {
        FlexFactorClientError::Server { .. }
        | FlexFactorClientError::OutcomeUnknown(_)
        | FlexFactorClientError::Connect(_) => {
            FlexFactorClientError::Connect(format!("no access token: {e}"))
        }
        other => other,
    }
}

fn expect_success(answer: Answer) -> Result<Vec<u8>, FlexFactorClientError> {
    if (200..300).contains(&answer.status) {
        Ok(answer.body)
    } else {
        Err(status_error(&answer))
    }
}

/// The FlexFactor client. Cheap to share behind an `Arc`; all calls may run concurrently and
/// share one access token.
pub struct FlexFactorClient {
    http: reqwest::Client,
    base: Url,
    config: FlexFactorConfig,
    credentials: FlexFactorCredentials,
    clock: Arc<dyn Clock>,
    tokens: TokenCache,
}

impl std::fmt::Debug for FlexFactorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlexFactorClient")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl FlexFactorClient {
    /// A client for one FlexFactor gateway. Fails when the base URL is not http(s), when one of
    /// the five credentials the client uses (app_key, app_secret, mid, site_id, environment_key)
    /// is empty (S1; named, never shown), or when the HTTP client cannot be built.
    pub fn new(
        config: FlexFactorConfig,
        credentials: FlexFactorCredentials,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, FlexFactorClientError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| FlexFactorClientError::Config(format!("base_url: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(FlexFactorClientError::Config(
                "base_url must be an http(s) URL".into(),
            ));
        }
        let missing: Vec<&str> = credentials
            .missing()
            .into_iter()
            .filter(|name| *name != "hmac_signing_key")
            .collect();
        if !missing.is_empty() {
            return Err(FlexFactorClientError::Config(format!(
                "missing credentials: {}",
                missing.join(", ")
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("salvage-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FlexFactorClientError::Config(describe(&e.without_url())))?;
        let margin = chrono::Duration::from_std(config.token_refresh_margin)
            .map_err(|_| FlexFactorClientError::Config("token_refresh_margin too large".into()))?;
        Ok(FlexFactorClient {
            http,
            base,
            tokens: TokenCache::new(clock.clone(), margin),
            config,
            credentials,
            clock,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &FlexFactorConfig {
        &self.config
    }

    /// How many access tokens were fetched so far (F1 diagnostics).
    pub fn token_fetch_count(&self) -> u64 {
        self.tokens.fetch_count()
    }

    /// Forgets the cached access token; the next call fetches a new one.
    pub async fn forget_token(&self) {
        self.tokens.clear().await;
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        bearer: Option<&AccessToken>,
        attempt: u32,
    ) -> Result<Answer, SendFailure> {
        let started = Instant::now();
        let mut request = self
            .http
            .request(call.method.clone(), self.url(call.segments))
            .header(ACCEPT, "application/json");
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(classify)?;
        tracing::debug!(
            call = call.name,
            attempt,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "FlexFactor answered"
        );
        Ok(Answer {
            status,
            body: body.to_vec(),
        })
    }

    async fn back_off(&self, call: &Call<'_>, attempt: u32, reason: &str) {
        let delay = self.config.retry.delay_before(attempt);
        tracing::warn!(
            call = call.name,
            attempt,
            delay_ms = delay.as_millis() as u64,
            reason,
            "FlexFactor call failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }

    /// Sends a call, retrying as its replay class allows. Returns any HTTP answer that is not
    /// a retried 5xx.
    async fn send_with_retries(
        &self,
        call: &Call<'_>,
        bearer: Option<&AccessToken>,
    ) -> Result<Answer, FlexFactorClientError> {
        let max = self.config.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let more = attempt < max;
            match self.send_once(call, bearer, attempt).await {
                Ok(answer) if (500..600).contains(&answer.status) => {
                    if more && call.replay != Replay::Once {
                        self.back_off(call, attempt, &format!("HTTP {}", answer.status))
                            .await;
                    } else {
                        return Err(FlexFactorClientError::Server {
                            status: answer.status,
                            attempts: attempt,
                        });
                    }
                }
                Ok(answer) => return Ok(answer),
                Err(SendFailure::Build(text)) => return Err(FlexFactorClientError::Config(text)),
                Err(SendFailure::NotSent(text)) => {
                    if more {
                        self.back_off(call, attempt, "not connected").await;
                    } else {
                        return Err(FlexFactorClientError::Connect(text));
                    }
                }
                Err(SendFailure::TimedOut(text)) => match call.replay {
                    Replay::Safe if more => self.back_off(call, attempt, "timeout").await,
                    Replay::Safe => {
                        return Err(FlexFactorClientError::Connect(format!(
                            "no answer after {attempt} attempts: {text}"
                        )))
                    }
                    Replay::Keyed | Replay::Once => {
                        tracing::warn!(
                            call = call.name,
                            attempt,
                            "FlexFactor call timed out after sending: outcome unknown"
                        );
                        return Err(FlexFactorClientError::OutcomeUnknown(format!(
                            "timed out after sending: {text}"
                        )));
                    }
                },
                Err(SendFailure::Cut(text)) => match call.replay {
                    Replay::Safe | Replay::Keyed if more => {
                        self.back_off(call, attempt, "connection cut").await
                    }
                    Replay::Safe => {
                        return Err(FlexFactorClientError::Connect(format!(
                            "no answer after {attempt} attempts: {text}"
                        )))
                    }
                    Replay::Keyed | Replay::Once => {
                        return Err(FlexFactorClientError::OutcomeUnknown(format!(
                            "connection failed after sending: {text}"
                        )))
                    }
                },
            }
            attempt += 1;
        }
    }

    /// `POST /oauth2/token` (F1).
    async fn fetch_token(&self) -> Result<AccessToken, FlexFactorClientError> {
        let body = to_body(&TokenRequest {
            app_key: self.credentials.app_key.expose_secret(),
            app_secret: self.credentials.app_secret.expose_secret(),
        })
        .map_err(wire)?;
        let call = Call {
            name: "oauth2/token",
            method: Method::POST,
            segments: &["oauth2", "token"],
            query: &[],
            body: Some(&body),
            replay: Replay::Safe,
        };
        let answer = self.send_with_retries(&call, None).await?;
        drop(body);
        match answer.status {
            200..=299 => {}
            // AM's remote test: bad AppKey/AppSecret is a 400.
            400 | 401 | 403 => return Err(FlexFactorClientError::Unauthorized),
            _ => return Err(status_error(&answer)),
        }
        let parsed: TokenResponse = from_wire(&answer.body).map_err(wire)?;
        let value = parsed
            .access_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_string()))
            .ok_or_else(|| {
                FlexFactorClientError::Protocol("no accessToken in the answer".into())
            })?;
        let expires_at = parsed.expires_at().unwrap_or_else(|| {
            self.clock.now()
                + chrono::Duration::from_std(self.config.default_token_lifetime)
                    .unwrap_or_else(|_| chrono::Duration::minutes(10))
        });
        Ok(AccessToken::new(value, expires_at))
    }

    /// Sends an authenticated call: cached token, one refresh and repeat on 401 (F1).
    async fn execute(&self, call: &Call<'_>) -> Result<Answer, FlexFactorClientError> {
        let token = self
            .tokens
            .get(|| self.fetch_token())
            .await
            .map_err(token_error)?;
        let answer = self.send_with_retries(call, Some(&token)).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        tracing::info!(
            call = call.name,
            "FlexFactor answered 401: fetching a new token once and repeating"
        );
        let fresh = self
            .tokens
            .refresh_after_rejection(&token, || self.fetch_token())
            .await
            .map_err(token_error)?;
        let answer = self.send_with_retries(call, Some(&fresh)).await?;
        if answer.status == 401 {
            return Err(FlexFactorClientError::Unauthorized);
        }
        Ok(answer)
    }

    /// F2: `POST /tokenize?mid=...&environment=...` with the card; keeps only token, BIN, last
    /// four, expiry and holder. The number and CVV are exposed only to build the body and are
    /// never logged.
    pub async fn tokenize_detailed(
        &self,
        card: &CardDetails,
        email: Option<&str>,
    ) -> Result<CardToken, FlexFactorClientError> {
        let body = to_body(&TokenizeRequest::from_card(card, email)).map_err(wire)?;
        let query = [
            ("mid", self.credentials.mid.expose_secret()),
            (
                "environment",
                self.credentials.environment_key.expose_secret(),
            ),
        ];
        let call = Call {
            name: "tokenize",
            method: Method::POST,
            segments: &["tokenize"],
            query: &query,
            body: Some(&body),
            replay: Replay::Safe,
        };
        let answer = self.execute(&call).await;
        drop(body);
        let body = expect_success(answer?)?;
        let parsed: TokenizeResponse = from_wire(&body).map_err(wire)?;
        let token = parsed.into_card_token(card).map_err(|e| match e {
            WireError::Shape(s) if s.starts_with("tokenization failed") => {
                FlexFactorClientError::Validation(ValidationErrors {
                    title: Some(s),
                    ..ValidationErrors::default()
                })
            }
            other => wire(other),
        })?;
        tracing::info!(bin = %token.bin, last4 = %token.last4, "card tokenized at FlexFactor");
        Ok(token)
    }

    /// The `/evaluate` body this client would send for a submission (no I/O).
    pub fn evaluate_body(
        &self,
        request: &SalvageRequest,
    ) -> Result<EvaluateRequest, FlexFactorClientError> {
        let gateway = request.decline.gateway.as_str();
        let source = self
            .config
            .response_code_sources
            .get(gateway)
            .map(String::as_str)
            .unwrap_or(gateway);
        let ctx = EvaluateContext {
            mid: self.credentials.mid.expose_secret(),
            site_id: self.credentials.site_id.expose_secret(),
            dynamic_descriptor: self.config.dynamic_descriptor.as_deref(),
            timezone_utc_offset: self.config.timezone_utc_offset,
            response_code_source: source,
        };
        EvaluateRequest::from_salvage(request, &ctx).map_err(wire)
    }

    /// `POST /evaluate`, with the typed errors: a 400 is `Validation`, a timeout after sending
    /// (or 5xx past the retries, or an unreadable 2xx) is `OutcomeUnknown` or `Server`.
    /// Retries replay the same body and idempotency key (F3).
    pub async fn evaluate_detailed(
        &self,
        request: &SalvageRequest,
    ) -> Result<EvaluateAnswer, FlexFactorClientError> {
        let body = to_body(&self.evaluate_body(request)?).map_err(wire)?;
        let mode = match request.mode {
            SubmissionMode::Cit { .. } => "cit",
            SubmissionMode::Mit {
                recurring: true, ..
            } => "mit-recurring",
            SubmissionMode::Mit { .. } => "mit",
        };
        tracing::info!(
            order_id = %request.order_id,
            idempotency_key = %request.idempotency_key,
            mode,
            "submitting a decline to FlexFactor"
        );
        let call = Call {
            name: "evaluate",
            method: Method::POST,
            segments: &["evaluate"],
            query: &[],
            body: Some(&body),
            replay: Replay::Keyed,
        };
        let body = expect_success(self.execute(&call).await?)?;
        let parsed: EvaluateResponse = from_wire(&body).map_err(|e| {
            FlexFactorClientError::OutcomeUnknown(format!("2xx answer unreadable: {e}"))
        })?;
        let answer = parsed.into_answer();
        tracing::info!(order_id = %request.order_id, answer = ?answer, "FlexFactor evaluated");
        Ok(answer)
    }

    /// `GET /orders/{id}` (O8).
    pub async fn order_status_detailed(
        &self,
        id: &FlexFactorOrderId,
    ) -> Result<FlexFactorOrderStatus, FlexFactorClientError> {
        let call = Call {
            name: "orders/{id}",
            method: Method::GET,
            segments: &["orders", id.as_str()],
            query: &[],
            body: None,
            replay: Replay::Safe,
        };
        let body = expect_success(self.execute(&call).await?)?;
        let parsed: OrderResponse = from_wire(&body).map_err(wire)?;
        Ok(parsed.into_status())
    }

    async fn post_cancel(
        &self,
        name: &'static str,
        segments: &[&str],
    ) -> Result<(), FlexFactorClientError> {
        let call = Call {
            name,
            method: Method::POST,
            segments,
            query: &[],
            body: Some(b"{}"),
            replay: Replay::Keyed,
        };
        let body = expect_success(self.execute(&call).await?)?;
        // 200 with an empty body or `{}` is success; a body saying `success: false` is not.
        if let Ok(parsed) = from_wire::<StatusResponse>(&body) {
            if parsed.success == Some(false) {
                return Err(FlexFactorClientError::Validation(
                    ValidationErrors::from_body(Some(200), &body),
                ));
            }
        }
        Ok(())
    }

    /// `POST /orders/{id}/cancel` (a void; C5, R2).
    pub async fn cancel_detailed(
        &self,
        id: &FlexFactorOrderId,
    ) -> Result<(), FlexFactorClientError> {
        self.post_cancel("orders/{id}/cancel", &["orders", id.as_str(), "cancel"])
            .await
    }

    /// `POST /orders/{orderId}/external-cancel`: cancel by the CRM's order id, when FlexFactor's
    /// id is not known (C5, after a timed-out cascade).
    pub async fn external_cancel_detailed(
        &self,
        order: &OrderId,
    ) -> Result<(), FlexFactorClientError> {
        self.post_cancel(
            "orders/{orderId}/external-cancel",
            &["orders", order.as_str(), "external-cancel"],
        )
        .await
    }

    /// `POST /orders/{id}/refund` with `amountToRefund` in decimal dollars (F4).
    pub async fn refund_detailed(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<RefundAnswer, FlexFactorClientError> {
        let body = to_body(&RefundRequest::new(amount, None).map_err(wire)?).map_err(wire)?;
        let call = Call {
            name: "orders/{id}/refund",
            method: Method::POST,
            segments: &["orders", id.as_str(), "refund"],
            query: &[],
            body: Some(&body),
            replay: Replay::Once,
        };
        let answer = self.execute(&call).await?;
        let success = (200..300).contains(&answer.status);
        if success || matches!(answer.status, 400 | 422) {
            if let Ok(parsed) = from_wire::<StatusResponse>(&answer.body) {
                if parsed.status.is_some() || parsed.success.is_some() {
                    match parsed.into_refund_answer() {
                        Ok(refund) => return Ok(refund),
                        Err(raw) if success => {
                            return Err(FlexFactorClientError::Protocol(format!(
                                "unrecognized refund status {:?}",
                                snippet(&raw)
                            )))
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        if success {
            // A 2xx without a status: FlexFactor took the refund.
            return Ok(RefundAnswer::Refunded);
        }
        Err(status_error(&answer))
    }

    /// `POST /capture` with the amount in integer cents (F4) and a key fixed by order and
    /// amount; a timeout after sending is `OutcomeUnknown`.
    pub async fn capture_detailed(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<EvaluateAnswer, FlexFactorClientError> {
        let body = to_body(&CaptureRequest::new(id, amount)).map_err(wire)?;
        let call = Call {
            name: "capture",
            method: Method::POST,
            segments: &["capture"],
            query: &[],
            body: Some(&body),
            replay: Replay::Keyed,
        };
        let body = expect_success(self.execute(&call).await?)?;
        let parsed: StatusResponse = from_wire(&body).map_err(|e| {
            FlexFactorClientError::OutcomeUnknown(format!("2xx answer unreadable: {e}"))
        })?;
        Ok(parsed.into_capture_answer(id))
    }
}

/// Maps the typed result of a submission (evaluate, capture) onto the port: a 400 is
/// `Rejected`, anything that may have been applied without an answer is `Unknown` (F3).
fn submission_answer(
    result: Result<EvaluateAnswer, FlexFactorClientError>,
) -> Result<EvaluateAnswer, FlexFactorError> {
    match result {
        Ok(answer) => Ok(answer),
        Err(FlexFactorClientError::Validation(v)) => Ok(EvaluateAnswer::Rejected {
            reason: v.to_string(),
        }),
        Err(FlexFactorClientError::OutcomeUnknown(detail)) => {
            Ok(EvaluateAnswer::Unknown { detail })
        }
        Err(e @ FlexFactorClientError::Server { .. }) => Ok(EvaluateAnswer::Unknown {
            detail: e.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl FlexFactor for FlexFactorClient {
    async fn tokenize(&self, card: &CardDetails) -> Result<CardToken, FlexFactorError> {
        Ok(self.tokenize_detailed(card, None).await?)
    }

    async fn evaluate(&self, request: &SalvageRequest) -> Result<EvaluateAnswer, FlexFactorError> {
        submission_answer(self.evaluate_detailed(request).await)
    }

    async fn order_status(
        &self,
        id: &FlexFactorOrderId,
    ) -> Result<FlexFactorOrderStatus, FlexFactorError> {
        Ok(self.order_status_detailed(id).await?)
    }

    async fn cancel(&self, id: &FlexFactorOrderId) -> Result<(), FlexFactorError> {
        Ok(self.cancel_detailed(id).await?)
    }

    async fn external_cancel(&self, order: &OrderId) -> Result<(), FlexFactorError> {
        Ok(self.external_cancel_detailed(order).await?)
    }

    async fn refund(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<RefundAnswer, FlexFactorError> {
        Ok(self.refund_detailed(id, amount).await?)
    }

    async fn capture(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<EvaluateAnswer, FlexFactorError> {
        submission_answer(self.capture_detailed(id, amount).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let r = RetryConfig {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(r.delay_before(1), Duration::from_millis(100));
        assert_eq!(r.delay_before(2), Duration::from_millis(200));
        assert_eq!(r.delay_before(3), Duration::from_millis(350));
        assert_eq!(r.delay_before(40), Duration::from_millis(350));
    }

    #[test]
    fn submissions_map_errors_to_answers() {
        assert!(matches!(
            submission_answer(Err(FlexFactorClientError::OutcomeUnknown("t".into()))),
            Ok(EvaluateAnswer::Unknown { .. })
        ));
        assert!(matches!(
            submission_answer(Err(FlexFactorClientError::Validation(
                ValidationErrors::default()
            ))),
            Ok(EvaluateAnswer::Rejected { .. })
        ));
        assert_eq!(
            submission_answer(Err(FlexFactorClientError::IdempotencyConflict)),
            Err(FlexFactorError::IdempotencyConflict)
        );
        assert!(matches!(
            submission_answer(Err(FlexFactorClientError::Connect("x".into()))),
            Err(FlexFactorError::Unavailable(_))
        ));
    }
}
