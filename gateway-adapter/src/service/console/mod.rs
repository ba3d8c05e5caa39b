//! The operator console at `/console`: server-rendered HTML (maud, which escapes everything it
//! interpolates), plain links and forms, no JavaScript. Every page reads projections (see
//! `store::console`), never folds event history.
//!
//! - [`session`]: sign-in with an API key, a signed `HttpOnly`, `SameSite=Strict` session
//!   cookie (`Secure` behind TLS), the read-only role, CSRF tokens on every form that changes
//!   something.
//! - [`layout`]: the page shell, the stylesheet and the formatting of money and time.
//! - [`overview`] (with [`chart`]), [`orders`], [`detail`], [`inbox`], [`outbox`], [`health`]:
//!   the pages.
//!
//! See `docs/console.md`.

pub mod chart;
pub mod detail;
pub mod health;
pub mod inbox;
pub mod layout;
pub mod orders;
pub mod outbox;
pub mod overview;
pub mod session;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::state::AppState;
use crate::store::StoreError;

/// The console's settings, built once at start.
pub struct ConsoleSettings {
    /// Signs session cookies and CSRF tokens; derived from every API key, so adding, removing
    /// or changing a key ends every session.
    pub session_key: SecretSlice<u8>,
    /// How long a sign-in lasts.
    pub session_minutes: i64,
}

impl ConsoleSettings {
    pub fn new(
        operator_keys: &[SecretString],
        read_only_keys: &[SecretString],
        session_minutes: u64,
    ) -> Self {
        ConsoleSettings {
            session_key: session::derive_key(operator_keys, read_only_keys),
            session_minutes: i64::try_from(session_minutes).unwrap_or(480),
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        self.session_key.expose_secret()
    }
}

/// The Content-Security-Policy of every console answer: nothing but this origin's stylesheet;
/// no script at all, no frames, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        layout::STYLESHEET,
    )
        .into_response()
}

/// The console's routes, under `/console`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page))
        .route(
            "/console/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/orders", get(orders::page))
        .route("/console/orders.csv", get(orders::csv))
        .route("/console/orders/{order_id}", get(detail::order_page))
        .route(
            "/console/subscriptions/{subscription_id}",
            get(detail::subscription_page),
        )
        .route("/console/inbox", get(inbox::page))
        .route("/console/outbox", get(outbox::page))
        .route("/console/outbox/retry", post(outbox::retry))
        .route("/console/health", get(health::page))
        .route("/console/static/console.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
}

/// A page that could not be built: the store failed. Shown as a page, logged.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "console page failed");
        let body = layout::bare(
            "Something failed",
            maud::html! {
                h1 { "Something failed" }
                p { "The store did not answer: " (self.to_string()) ". Try again; if it lasts, see the runbook (docs/operations.md)." }
            },
        );
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
