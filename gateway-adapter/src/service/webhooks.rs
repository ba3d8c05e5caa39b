//! `POST /webhooks/flexfactor`: FlexFactor's deliveries over HTTP. The body is read within the
//! request limit (W5: too large is 413), the verifier of the gateway whose key signed it checks
//! it (refused: 401 or 400, nothing stored), the engine's intake stores it
//! ([`crate::engine::webhook_intake`]), and the answer says what became of it: 2xx only once it
//! is stored; 5xx when it could not be, so that FlexFactor delivers again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header::HOST, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::engine::webhook_intake::{Intake, IntakeError};
use crate::flexfactor::signer::HEADER_NONCE;
use crate::flexfactor::{WebhookError, WebhookVerifier};
use crate::store::webhook_book;
use tracing::warn;

/// Why a delivery was refused, as the log line and `salvage_webhooks_refused_total{reason}`
/// name it.
fn reason(e: &WebhookError) -> &'static str {
    match e {
        WebhookError::MissingHeader(_) => "missing_header",
        WebhookError::MalformedHeader { .. } | WebhookError::MalformedBody(_) => "malformed",
        WebhookError::BadContentHash => "bad_content_hash",
        WebhookError::BadSignature | WebhookError::BadBodySignature => "bad_signature",
        WebhookError::StaleDate { date, now } if date > now => "future_timestamp",
        WebhookError::StaleDate { .. } => "stale_timestamp",
        WebhookError::ReplayedNonce => "replayed_nonce",
        WebhookError::BodyTooLarge { .. } => "body_too_large",
    }
}

/// The delivery's nonce, as far as it can be read, for the log (never the body or a secret).
fn nonce_of(headers: &HeaderMap) -> String {
    headers
        .get(HEADER_NONCE)
        .and_then(|v| v.to_str().ok())
        .map(|n| n.chars().take(64).collect())
        .unwrap_or_default()
}

/// How much of a refused delivery's body the console's inbox keeps.
const EXCERPT_CHARS: usize = 512;

/// Answers a refused delivery; it is logged with its reason, its nonce and (once verified) its
/// event, counted, and kept for the console's inbox (the newest few thousand).
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    reason: &'static str,
    e: &WebhookError,
    event: Option<&str>,
) -> Response {
    let nonce = nonce_of(headers);
    warn!(reason, nonce = %nonce, event = event.unwrap_or(""), error = %e,
          "FlexFactor webhook refused");
    state.metrics.webhook_refused(reason);
    let detail = e.to_string();
    let refusal = webhook_book::Refusal {
        received_at: state.clock.now().timestamp_millis(),
        reason,
        detail: &detail,
        nonce: &nonce,
        event: event.unwrap_or(""),
        body_excerpt: webhook_book::excerpt(body, EXCERPT_CHARS),
    };
    if let Err(err) = webhook_book::record_refusal(&state.store.backend, &refusal).await {
        warn!(error = %err, "could not keep the refused delivery for the console");
    }
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let code = match status.as_u16() {
        401 => "unauthorized",
        413 => "payload_too_large",
        503 => "unavailable",
        _ => "invalid_request",
    };
    ApiError::new(status, code, format!("delivery refused: {e}")).into_response()
}

/// The verifier whose key signed the delivery (one per FlexFactor gateway), and whether any key
/// did: with several gateways, a signature no key verifies is from an unknown key.
fn pick<'a>(
    verifiers: &'a [(salvage_domain::GatewayId, WebhookVerifier)],
    headers: &HeaderMap,
    body: &[u8],
    host: Option<&str>,
) -> Option<(&'a WebhookVerifier, bool)> {
    if verifiers.len() == 1 {
        return verifiers.first().map(|(_, v)| (v, true));
    }
    verifiers
        .iter()
        .find(|(_, v)| {
            !matches!(
                v.check_signature(headers, body, host),
                Err(WebhookError::BadSignature)
            )
        })
        .map(|(_, v)| (v, true))
        .or_else(|| verifiers.first().map(|(_, v)| (v, false)))
}

fn ack(outcome: &str) -> Response {
    (StatusCode::OK, Json(json!({ "status": outcome }))).into_response()
}

/// Receive a FlexFactor delivery.
#[utoipa::path(post, path = "/webhooks/flexfactor", request_body(content = String, description = "FlexFactor's JSON delivery, signed with the x-fc-* headers"),
    responses((status = 200, description = "Stored (or already stored, or kept for reconciliation)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "Not stored: deliver again")))]
pub async fn flexfactor_webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let nonce = nonce_of(&headers);
            warn!(reason = "body_too_large", nonce = %nonce, "FlexFactor webhook refused");
            state.metrics.webhook_refused("body_too_large");
            let detail = e.body_text();
            let refusal = webhook_book::Refusal {
                received_at: state.clock.now().timestamp_millis(),
                reason: "body_too_large",
                detail: &detail,
                nonce: &nonce,
                event: "",
                body_excerpt: String::new(),
            };
            if let Err(err) = webhook_book::record_refusal(&state.store.backend, &refusal).await {
                warn!(error = %err, "could not keep the refused delivery for the console");
            }
            return ApiError::new(
                e.status(),
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "invalid_request"
                },
                format!(
                    "W5: the delivery's body could not be read: {}",
                    e.body_text()
                ),
            )
            .into_response();
        }
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some((verifier, known_key)) = pick(&state.verifiers, &headers, &body, host.as_deref())
    else {
        return ApiError::unavailable("no FlexFactor gateway is configured").into_response();
    };
    let delivery = match verifier.verify(&headers, &body, host.as_deref()) {
        Ok(d) => d,
        Err(e @ (WebhookError::BadSignature | WebhookError::BadBodySignature)) if !known_key => {
            return refused(&state, &headers, &body, "unknown_key", &e, None).await
        }
        Err(e) => return refused(&state, &headers, &body, reason(&e), &e, None).await,
    };
    match state.intake.take(&delivery, &body).await {
        Ok(outcome) => {
            if outcome == Intake::Applied {
                // What follows (subscription, notifications) runs in the background.
                state.wake();
            }
            ack(outcome.as_str())
        }
        Err(IntakeError::Replayed) => {
            let e = WebhookError::ReplayedNonce;
            let event = delivery.outcome.event.to_string();
            refused(&state, &headers, &body, reason(&e), &e, Some(&event)).await
        }
        // Nothing was stored (the nonce neither): FlexFactor delivers again.
        Err(IntakeError::Command(e)) => ApiError::from(e).into_response(),
        Err(IntakeError::Store(e)) => ApiError::from(e).into_response(),
        Err(IntakeError::NotStored(m)) => ApiError::unavailable(m).into_response(),
    }
}
