//! `POST /webhooks/flexfactor`: FlexFactor's deliveries (W1-W5, O7).
//!
//! Order of work: verify (W1 signature, W2 date; refused → 401 and nothing applied); then, in
//! one transaction, the nonce (W2: a nonce seen before refuses the delivery, 401), the result
//! applied to the order, and the delivery's record (O7); only then 2xx (W3). A delivery already
//! recorded is acknowledged with nothing applied (O7; the record's key refuses the second one). A failure answers 5xx with nothing stored, the nonce
//! neither, so that FlexFactor delivers again. A verified delivery for an order Salvage does
//! not know is acknowledged and kept for reconciliation (W4).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header::HOST, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use salvage_domain::order::{
    FlexFactorResult as DomainResult, OrderCommand, OrderError, ResultSource,
};

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::flexfactor::{FlexFactorResult, VerifiedDelivery, WebhookError, WebhookVerifier};
use crate::store::guarded_commit::{self, CommitError, Write};
use crate::store::webhook_book::{self, UnmatchedDelivery};
use crate::store::ExecuteError;

fn refused(state: &AppState, e: &WebhookError) -> Response {
    let reason = match e {
        WebhookError::MissingHeader(_) => "missing_header",
        WebhookError::MalformedHeader { .. } => "malformed_header",
        WebhookError::BadContentHash => "bad_content_hash",
        WebhookError::BadSignature | WebhookError::BadBodySignature => "bad_signature",
        WebhookError::StaleDate { .. } => "stale_date",
        WebhookError::ReplayedNonce => "replayed_nonce",
        WebhookError::BodyTooLarge { .. } => "body_too_large",
        WebhookError::MalformedBody(_) => "malformed_body",
        WebhookError::NonceStore(_) => "nonce_store",
    };
    state.metrics.webhook_refused(reason);
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let code = match status.as_u16() {
        401 => "unauthorized",
        413 => "payload_too_large",
        503 => "unavailable",
        _ => "invalid_request",
    };
    ApiError::new(status, code, format!("delivery refused: {e}")).into_response()
}

/// The verifier whose key signed the delivery (one per FlexFactor gateway).
fn pick<'a>(
    verifiers: &'a [(salvage_domain::GatewayId, WebhookVerifier)],
    headers: &HeaderMap,
    body: &[u8],
    host: Option<&str>,
) -> Option<&'a WebhookVerifier> {
    if verifiers.len() == 1 {
        return verifiers.first().map(|(_, v)| v);
    }
    verifiers
        .iter()
        .find(|(_, v)| {
            !matches!(
                v.check_signature(headers, body, host),
                Err(WebhookError::BadSignature)
            )
        })
        .or_else(|| verifiers.first())
        .map(|(_, v)| v)
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
            state.metrics.webhook_refused("body_too_large");
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
    let Some(verifier) = pick(&state.verifiers, &headers, &body, host.as_deref()) else {
        return ApiError::unavailable("no FlexFactor gateway is configured").into_response();
    };
    let delivery = match verifier.verify_signed(&headers, &body, host.as_deref()) {
        Ok(d) => d,
        Err(e) => return refused(&state, &e),
    };
    match apply(&state, &delivery, &body).await {
        Ok(outcome) => ack(outcome),
        // W2: another delivery with this nonce was stored first.
        Err(Applied::Replayed) => {
            tracing::warn!(event = %delivery.outcome.event, "FlexFactor webhook refused: nonce replayed");
            refused(&state, &WebhookError::ReplayedNonce)
        }
        // W3: nothing was stored (the nonce neither); FlexFactor delivers again.
        Err(Applied::Failed(e)) => e.into_response(),
    }
}

/// Why a delivery was not stored.
enum Applied {
    Replayed,
    Failed(ApiError),
}

impl<E: Into<ApiError>> From<E> for Applied {
    fn from(e: E) -> Self {
        Applied::Failed(e.into())
    }
}

/// Stores a verified delivery: its nonce (W2), its effect on the order, and its record (O7) in
/// one transaction, so that a delivery is either wholly stored or not at all (W3).
async fn apply(
    state: &AppState,
    delivery: &VerifiedDelivery,
    body: &[u8],
) -> Result<&'static str, Applied> {
    let o = &delivery.outcome;
    let backend = &state.store.backend;
    let now = state.clock.now().timestamp_millis();
    let key = format!(
        "{}:{}:{}",
        o.event.trim().to_ascii_lowercase(),
        o.flexfactor_order_id
            .as_ref()
            .map(|f| f.as_str())
            .unwrap_or("-"),
        o.external_order_id
            .as_ref()
            .map(|f| f.as_str())
            .unwrap_or("-"),
    );
    let nonce = webhook_book::nonce_write(&delivery.nonce, now);
    let order_id = o.external_order_id.as_ref().map(|x| x.to_string());
    let ff_id = o.flexfactor_order_id.as_ref().map(|x| x.to_string());
    let record = |outcome: &'static str| {
        webhook_book::delivery_write(
            &key,
            &o.event,
            order_id.as_deref(),
            ff_id.as_deref(),
            now,
            outcome,
        )
    };
    let store_only = |writes: Vec<Write>, outcome: &'static str| {
        let nonce = nonce.clone();
        async move { store_writes(backend, nonce, writes, outcome).await }
    };
    let result = match &o.result {
        FlexFactorResult::NotRelevant { .. } => {
            return store_only(vec![record("not_relevant")], "not_relevant").await
        }
        FlexFactorResult::Unknown { .. } => {
            return store_only(vec![record("unknown_event")], "unknown_event").await
        }
        FlexFactorResult::Completed { confirmation_id } => DomainResult::Completed {
            flexfactor_order_id: o.flexfactor_order_id.clone(),
            confirmation_id: confirmation_id.clone().or(o.confirmation_id.clone()),
        },
        FlexFactorResult::Expired => DomainResult::Expired,
        FlexFactorResult::Cancelled => DomainResult::Cancelled,
        FlexFactorResult::Refunded => DomainResult::Refunded,
        FlexFactorResult::Chargeback => DomainResult::Chargeback,
        FlexFactorResult::CaptureRequired => DomainResult::CaptureRequired,
    };
    // W4: kept for reconciliation.
    let park = webhook_book::unmatched_write(&UnmatchedDelivery {
        delivery_key: key.clone(),
        event: o.event.clone(),
        order_id: order_id.clone(),
        flexfactor_order_id: ff_id.clone(),
        body: String::from_utf8_lossy(body).into_owned(),
        received_at: now,
    });
    let Some(order) = order_id.clone() else {
        return store_only(vec![park, record("unmatched")], "unmatched").await;
    };
    let command = OrderCommand::ApplyFlexFactorResult {
        result,
        source: ResultSource::Webhook {
            delivery_id: key.clone(),
            resent: o.is_resent,
        },
    };
    let writes = [nonce.clone(), record("applied")];
    match state
        .engine
        .order_with(&order.as_str().into(), command, &writes)
        .await
    {
        Ok(_) => {}
        Err(ExecuteError::Refused(OrderError::NotPlaced)) => {
            return store_only(vec![park, record("unmatched")], "unmatched").await;
        }
        Err(ExecuteError::Guard(webhook_book::REPLAYED_NONCE)) => return Err(Applied::Replayed),
        // O7: the delivery was stored before (a redelivery, or a concurrent request): keep its
        // nonce only, and acknowledge.
        Err(ExecuteError::Guard(_)) => return store_only(Vec::new(), "duplicate").await,
        Err(e @ ExecuteError::Refused(_)) => {
            // A result the order refuses may be a redelivery of one it already has.
            if webhook_book::delivery_seen(backend, &key).await? {
                return store_only(Vec::new(), "duplicate").await;
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    // Stored (W3); what follows (subscription, notifications) runs in the background.
    state.wake();
    Ok("applied")
}

/// Commits a delivery's nonce and `writes` (no command) in one transaction. A delivery already
/// recorded keeps its nonce only and is acknowledged as a duplicate (O7); a nonce seen before
/// refuses it (W2).
async fn store_writes(
    backend: &crate::store::Backend,
    nonce: Write,
    writes: Vec<Write>,
    outcome: &'static str,
) -> Result<&'static str, Applied> {
    let unavailable = |e: CommitError| {
        Applied::Failed(ApiError::unavailable(format!(
            "the delivery could not be stored: {e}"
        )))
    };
    let mut all = vec![nonce.clone()];
    all.extend(writes);
    match guarded_commit::commit(backend, &[], &all).await {
        Ok(()) => Ok(outcome),
        Err(CommitError::Guard(webhook_book::REPLAYED_NONCE)) => Err(Applied::Replayed),
        Err(CommitError::Guard(_)) => match guarded_commit::commit(backend, &[], &[nonce]).await {
            Ok(()) => Ok("duplicate"),
            Err(CommitError::Guard(_)) => Err(Applied::Replayed),
            Err(e) => Err(unavailable(e)),
        },
        Err(e) => Err(unavailable(e)),
    }
}
