//! The webhook inbox: deliveries refused (bad signature, stale, replayed, malformed, too large,
//! unknown key; the newest few thousand, with a masked excerpt of the body) and verified
//! deliveries for orders Salvage does not know, parked for reconciliation (W4).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{self, dash, time_el, Section};
use super::session::{self, encode};
use super::PageError;
use crate::service::state::AppState;
use crate::store::console as reads;

/// Rows shown of each table.
const SHOWN: i64 = 200;

/// `GET /console/inbox`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    let refused = reads::refusals(&state.store.backend, SHOWN).await?;
    let parked = reads::unmatched(&state.store.backend, SHOWN).await?;
    let body = html! {
        h1 { "Webhook inbox" }
        section aria-labelledby="refused-h" {
            h2 id="refused-h" { "Refused deliveries" }
            p class="hint" { "Not stored; FlexFactor was answered 4xx. A genuine delivery refused here (a clock off by minutes, a rotated key) is delivered again by FlexFactor once the cause is fixed. Newest first, at most " (SHOWN) "." }
            @if refused.is_empty() {
                p class="muted" { "No delivery was refused." }
            } @else {
                div class="scroll" { table id="refused" {
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "Reason" } th scope="col" { "Detail" }
                        th scope="col" class="hide-narrow" { "Nonce" } th scope="col" { "Event" } th scope="col" { "Body (first 512 characters)" }
                    } }
                    tbody { @for r in &refused { tr data-reason=(r.reason) {
                        td { (time_el(r.received_at)) }
                        td { (layout::badge("bad", &r.reason)) }
                        td { (r.detail) }
                        td class="hide-narrow" { code { (r.nonce) } }
                        td { @if r.event.is_empty() { (dash()) } @else { (r.event) } }
                        td { pre class="excerpt" { (r.body_excerpt) } }
                    } } }
                } }
            }
        }
        section aria-labelledby="parked-h" {
            h2 id="parked-h" { "Verified, for unknown orders (W4)" }
            p class="hint" { "Signed correctly but naming an order Salvage has no record of; kept for reconciliation, applied if the order arrives." }
            @if parked.is_empty() {
                p class="muted" { "None parked." }
            } @else {
                div class="scroll" { table id="parked" {
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "Event" } th scope="col" { "Order" }
                        th scope="col" { "FlexFactor order" } th scope="col" { "Resolved" }
                    } }
                    tbody { @for p in &parked { tr {
                        td { (time_el(p.received_at)) }
                        td { (p.event) }
                        td { @if let Some(o) = &p.order_id { a href={ "/console/orders/" (encode(o)) } { (o) } } @else { (dash()) } }
                        td { (p.flexfactor_order_id.as_deref().unwrap_or("")) }
                        td { @if let Some(t) = p.resolved_at { (time_el(t)) } @else { (layout::badge("pending", "open")) } }
                    } } }
                } }
            }
        }
    };
    Ok(layout::page("Webhook inbox", Section::Inbox, &session, &csrf, body).into_response())
}
