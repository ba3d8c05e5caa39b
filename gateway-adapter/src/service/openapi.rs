//! The OpenAPI document (utoipa), generated from the handlers' annotations, and the handler
//! of `/openapi.json` that serves it.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::dto::*;
use super::error::{ErrorBody, ErrorDetail};
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
        super::webhooks::flexfactor_webhook,
        super::ops::healthz,
        super::ops::readyz,
    ),
    components(schemas(
        OrderIn, AttemptIn, CardIn, CustomerIn, AddressIn, ItemIn, RerunIn, RebillIn,
        OrderOut, SalvageOut, HistoryEntry, SubscriptionOut, RecycleOut, FeedPage, FeedEvent,
        ErrorBody, ErrorDetail
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

/// The OpenAPI document, generated from the handlers.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
