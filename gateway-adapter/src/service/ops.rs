//! Operations: `/healthz`, `/readyz`, `/metrics` (the OpenAPI document is `openapi.rs`'s).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::store::outbox;

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Up")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The store answers and its schema is migrated.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ready().await {
        Ok(()) if state.test_mode => (StatusCode::OK, "ready (test mode)").into_response(),
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => ApiError::unavailable(format!("not ready: {e}")).into_response(),
    }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let now = state.clock.now().timestamp_millis();
    if let Ok(stats) = outbox::stats(&state.store.backend, now).await {
        state.metrics.notification_backlog.set(stats.pending);
        state.metrics.outbox_failed.set(stats.failed);
    }
    let lag = match crate::on_pool!(&state.store.backend, pool => {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(due_at) FROM salvage_outbox WHERE state = 'pending' AND due_at <= $1")
            .bind(now)
            .fetch_one(pool)
            .await
    }) {
        Ok(Some(oldest)) => (now - oldest) as f64 / 1000.0,
        _ => 0.0,
    };
    state.metrics.scheduler_lag_seconds.set(lag);
    state
        .metrics
        .sqlite_lock_retries
        .set(i64::try_from(crate::store::sqlite_busy::retries()).unwrap_or(i64::MAX));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
