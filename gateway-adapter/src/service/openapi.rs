//! The OpenAPI document (utoipa), generated from the handlers' annotations, and the handler
//! of `/openapi.json` that serves it. Beside the API it takes, it publishes the calls Salvage
//! makes to the CRM as OpenAPI 3.1 `webhooks`: the charge hook (`chargeHook`) and one entry per
//! notification kind (`notification.<kind>`), their bodies the schemas of the types the charge
//! hook and the notifier serialize (`crm::wire`).

use axum::Json;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::dto::*;
use super::error::{ErrorBody, ErrorDetail};
use crate::crm::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::crm::wire::{self, ChargeHookAnswer, ChargeHookRequest, Notification};
use crate::feed::{FeedEvent, FeedPage};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Salvage",
        description = "Decline salvage through FlexFactor: report orders and declines, rerun declined sales, report rebills, read orders, subscriptions and the ordered event feed. FlexFactor delivers its results to /webhooks/flexfactor."
    ),
    paths(
        super::api::post_order,
        super::api::get_order,
        super::api::rerun,
        super::api::get_subscription,
        super::api::post_rebill,
        super::api::events,
        super::summary::get_summary,
        super::sandbox::create,
        super::sandbox::show,
        super::sandbox::advance,
        super::sandbox::delete,
        super::webhooks::flexfactor_webhook,
        super::ops::healthz,
        super::ops::readyz,
    ),
    components(schemas(
        OrderIn, AttemptIn, CardIn, CustomerIn, AddressIn, ItemIn, RerunIn, RebillIn,
        OrderOut, SalvageOut, HistoryEntry, SubscriptionOut, RecycleOut, FeedPage, FeedEvent,
        ErrorBody, ErrorDetail, super::summary::SummaryOut, super::summary::RouteSummary,
        super::summary::Revenue, super::sandbox::SandboxIn, super::sandbox::SandboxOut,
        super::sandbox::AdvanceIn, super::sandbox::AdvanceOut, ChargeHookRequest, ChargeHookAnswer, Notification
    )),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The headers Salvage signs every call to the CRM with.
fn signed_headers(extra: (&str, &str)) -> Value {
    json!([
        {"name": TIMESTAMP_HEADER, "in": "header", "required": true,
         "description": "Unix seconds when the call was signed.",
         "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        {"name": SIGNATURE_HEADER, "in": "header", "required": true,
         "description": "v1=<hex HMAC-SHA256(secret, timestamp + \".\" + raw body)>; verify before trusting the call (docs/integration.md).",
         "schema": {"type": "string", "pattern": "^v1=[0-9a-f]{64}$"}},
        {"name": extra.0, "in": "header", "required": true, "description": extra.1,
         "schema": {"type": "string"}},
    ])
}

/// The OpenAPI 3.1 `webhooks`: every call Salvage makes to the CRM.
pub fn webhooks() -> Value {
    let mut out = Map::new();
    out.insert(
        "chargeHook".into(),
        json!({"post": {
            "operationId": "chargeHook",
            "summary": "Charge a card on a regular gateway (cascade step, recycle re-attempt, rebill)",
            "description": "POSTed to [charge_hook] url. Answer 2xx with a ChargeHookAnswer. A non-2xx, a timeout or an unreadable answer is an unknown outcome: the charge may have happened, so Salvage never charges again under another key; it reconciles (see docs/integration.md).",
            "parameters": signed_headers(("idempotency-key", "The same as the body's idempotency_key, on every retry of one attempt: never charge twice under one key.")),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChargeHookRequest"}}}},
            "responses": {
                "200": {"description": "The charge's result", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChargeHookAnswer"}}}},
                "default": {"description": "Any other status: an unknown outcome"}
            }
        }}),
    );
    for n in wire::samples::notifications() {
        let n = Notification::from(&n);
        let name = n.kind.name();
        out.insert(
            format!("notification.{name}"),
            json!({"post": {
                "operationId": format!("notification_{name}"),
                "summary": format!("Notification of kind {name}"),
                "description": "POSTed to [notifications] url, retried with back-off until a 2xx answer (for retry_for_hours). Deduplicate by event_id: the same event may arrive more than once.",
                "parameters": signed_headers(("x-salvage-event-id", "The notification's event_id: stable across retries and restarts.")),
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Notification"},
                    "example": serde_json::to_value(&n).unwrap_or(Value::Null)
                }}},
                "responses": {
                    "200": {"description": "Acknowledged: Salvage stops retrying"},
                    "default": {"description": "Not acknowledged: Salvage retries"}
                }
            }}),
        );
    }
    Value::Object(out)
}

/// The whole document: the API and the webhooks.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut doc {
        map.insert("webhooks".into(), webhooks());
    }
    doc
}

/// The OpenAPI document, generated from the handlers and the CRM-facing wire types.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
