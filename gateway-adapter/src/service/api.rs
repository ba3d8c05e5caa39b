//! The CRM-facing API under `/v1`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use salvage_domain::customer::CardDetails;
use salvage_domain::order::{OrderCommand, OrderError};
use salvage_domain::ports::FlexFactorError;
use salvage_domain::{GatewayId, OrderId};
use secrecy::{ExposeSecret, SecretString};

use super::convert;
use super::dto::*;
use super::error::{ApiError, ApiJson, ErrorBody};
use super::state::AppState;
use crate::engine::rebill::{RebillError, RebillReport};
use crate::engine::ToDrive;
use crate::feed::FeedPage;
use crate::store::{event_log, read_model, ExecuteError};

/// The metadata key of an order's request fingerprint.
const FINGERPRINT: &str = "request_sha256";

type Shared = State<Arc<AppState>>;

/// The order as `GET` shows it, from the read side.
async fn order_out(state: &AppState, id: &str) -> Result<Option<OrderOut>, ApiError> {
    Ok(read_model::order(&state.store, id)
        .await?
        .map(|r| convert::order_view(&r.state, &r.history)))
}

async fn existing_fingerprint(state: &AppState, id: &str) -> Result<Option<String>, ApiError> {
    let events = state.store.orders.load_events(id).await?;
    Ok(events
        .first()
        .map(|e| e.metadata.get(FINGERPRINT).cloned().unwrap_or_default()))
}

/// The same order posted again: its current state; another body under the same id: 409.
async fn repeat(state: &AppState, body: &OrderIn, fp: &str) -> Result<Option<OrderOut>, ApiError> {
    match existing_fingerprint(state, &body.order_id).await? {
        None => Ok(None),
        Some(existing) if existing == fp => order_out(state, &body.order_id).await,
        Some(_) => Err(ApiError::conflict(format!(
            "order {} was already reported with a different body",
            body.order_id
        ))),
    }
}

/// Report an order and the result of its first attempt.
///
/// A soft-declined new sale cascades before the answer: the answer carries the final
/// status. The same `order_id` with the same body is answered again without a second effect;
/// with a different body it is a 409.
#[utoipa::path(post, path = "/v1/orders", request_body = OrderIn,
    responses((status = 201, body = OrderOut, description = "Accepted; the order as GET shows it"),
              (status = 200, body = OrderOut, description = "Already reported with the same body"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_order(
    State(state): Shared,
    ApiJson(body): ApiJson<OrderIn>,
) -> Result<(StatusCode, Json<OrderOut>), ApiError> {
    let checked = convert::check_order(&body)?;
    let fp = convert::fingerprint(&body);
    if let Some(out) = repeat(&state, &body, &fp).await? {
        return Ok((StatusCode::OK, Json(out)));
    }
    let card = match convert::token_card(&body.card) {
        Some(c) => c,
        None => tokenize(&state, &body.card).await?,
    };
    let cmd = convert::place_order(&body, checked, card);
    let metadata = HashMap::from([(FINGERPRINT.to_string(), fp.clone())]);
    let id = OrderId::new(body.order_id.clone());
    // `repeat` found no order: decide on that (a concurrent twin makes the commit conflict).
    let none_yet = Some((salvage_domain::order::Order::default(), 0));
    let placed = match state
        .engine
        .order_inline(
            &id,
            OrderCommand::Place(Box::new(cmd)),
            metadata,
            &[],
            none_yet,
        )
        .await
    {
        Ok(placed) => placed,
        Err(ExecuteError::Refused(OrderError::AlreadyPlaced(_))) => {
            // A concurrent identical request won the race.
            if let Some(out) = repeat(&state, &body, &fp).await? {
                return Ok((StatusCode::OK, Json(out)));
            }
            ToDrive::nothing()
        }
        Err(e) => return Err(e.into()),
    };
    let out = settled_order(&state, &id, placed).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Drives an order's follow-ups in the request, then answers with the order as `GET` shows it
/// (from what the request committed when that is the whole of it; read again otherwise).
async fn settled_order(
    state: &AppState,
    id: &OrderId,
    start: ToDrive,
) -> Result<OrderOut, ApiError> {
    match state.drive_order(id, start).await {
        Ok(Some((order, events))) => return Ok(convert::order_view(&order, &events)),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the order is stored; its follow-ups continue in the background");
        }
    }
    order_out(state, id.as_str())
        .await?
        .ok_or_else(|| ApiError::internal("the order vanished"))
}

async fn tokenize(
    state: &AppState,
    card: &CardIn,
) -> Result<salvage_domain::customer::CardToken, ApiError> {
    let Some(tokenizer) = &state.tokenizer else {
        return Err(ApiError::invalid(
            "no FlexFactor gateway is configured to tokenize card numbers: send card.token",
        ));
    };
    let number: String = card
        .number
        .clone()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let details = CardDetails {
        number: SecretString::from(number),
        cvv: card.cvv.clone().map(SecretString::from),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        holder: card.holder.clone(),
    };
    let mut token = tokenizer.tokenize(&details).await.map_err(|e| match e {
        FlexFactorError::Invalid(m) => {
            ApiError::invalid(format!("FlexFactor refused the card: {m}"))
        }
        other => ApiError::unavailable(format!("the card could not be tokenized: {other}")),
    })?;
    // The CRM's own fingerprint of the card when it sends one, else Salvage's (N8).
    token.fingerprint = card
        .fingerprint
        .clone()
        .filter(|f| !f.trim().is_empty())
        .or_else(|| {
            state
                .fingerprinter
                .as_ref()
                .map(|f| f.fingerprint(details.number.expose_secret()))
        });
    Ok(token)
}

/// An order, its salvage and its history.
#[utoipa::path(get, path = "/v1/orders/{order_id}",
    params(("order_id" = String, Path, description = "The CRM's order id")),
    responses((status = 200, body = OrderOut), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_order(
    State(state): Shared,
    Path(order_id): Path<String>,
) -> Result<Json<OrderOut>, ApiError> {
    order_out(&state, &order_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} is not known")))
}

/// Rerun a declined sale on the FlexFactor gateway: asynchronous; the result comes later.
#[utoipa::path(post, path = "/v1/orders/{order_id}/rerun", request_body = RerunIn,
    params(("order_id" = String, Path, description = "The CRM's order id")),
    responses((status = 200, body = OrderOut), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "hard_decline, rerun_on_gateway_profile, not_declined, salvage_pending...")),
    security(("api_key" = [])))]
pub async fn rerun(
    State(state): Shared,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<RerunIn>,
) -> Result<Json<OrderOut>, ApiError> {
    let id = OrderId::new(order_id.clone());
    let rerun = state
        .engine
        .order_inline(
            &id,
            OrderCommand::RequestRerun {
                gateway: GatewayId::new(body.gateway_id),
            },
            HashMap::new(),
            &[],
            None,
        )
        .await?;
    Ok(Json(settled_order(&state, &id, rerun).await?))
}

/// The subscription as `GET` shows it, from the read side.
async fn subscription_out(state: &AppState, id: &str) -> Result<Option<SubscriptionOut>, ApiError> {
    Ok(read_model::subscription(&state.store, id)
        .await?
        .map(|r| convert::subscription_view(id, &r.state, &r.history)))
}

/// A subscription: status, billing gateway, cycle, credential, recycle position and history.
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}",
    params(("subscription_id" = String, Path, description = "The CRM's subscription id")),
    responses((status = 200, body = SubscriptionOut), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_subscription(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    subscription_out(&state, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("subscription {id} is not known")))
}

/// Report a rebill from the CRM's own billing. A soft decline enters recycle billing.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/rebills", request_body = RebillIn,
    params(("subscription_id" = String, Path, description = "The CRM's subscription id")),
    responses((status = 200, body = SubscriptionOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_rebill(
    State(state): Shared,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RebillIn>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    let report = RebillReport {
        order_id: body.order_id.clone().map(OrderId::new),
        amount_minor: body.amount_minor,
        gateway: body.attempt.gateway_id.as_str().into(),
        result: convert::attempt(&body.attempt)?,
    };
    let (rebill_id, placed) = state
        .engine
        .report_rebill(&id.as_str().into(), report)
        .await
        .map_err(|e| match e {
            RebillError::UnknownSubscription(_) => ApiError::not_found(e.to_string()),
            RebillError::NoOrigin | RebillError::OriginMissing => ApiError::internal(e.to_string()),
            RebillError::Amount => ApiError::invalid(e.to_string()),
            RebillError::Subscription(e) => e.into(),
            RebillError::Order(e) => e.into(),
        })?;
    if let Err(e) = state.drive_order(&rebill_id, placed).await {
        tracing::warn!(error = %e, "the rebill is stored; its follow-ups continue in the background");
    }
    get_subscription(State(state), Path(id)).await
}

/// Paging of the feed.
#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedQuery {
    /// Position after which to read (0: from the start).
    #[serde(default)]
    pub after: i64,
    /// At most this many events (1..=1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// The ordered feed of everything that happened, for CRM sync.
#[utoipa::path(get, path = "/v1/events", params(FeedQuery),
    responses((status = 200, body = FeedPage), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn events(
    State(state): Shared,
    Query(q): Query<FeedQuery>,
) -> Result<Json<FeedPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) || q.after < 0 {
        return Err(ApiError::invalid(
            "limit must be 1..=1000 and after not negative",
        ));
    }
    let entries = event_log::read_after(&state.store.backend, q.after, limit).await?;
    let next_after = entries.last().map(|e| e.event.position).unwrap_or(q.after);
    Ok(Json(FeedPage {
        events: entries.into_iter().map(|e| e.event).collect(),
        next_after,
    }))
}
