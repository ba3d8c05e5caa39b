//! An order's page and a subscription's page: the current state (from the view), and the whole
//! history as one timeline: every event (each attempt with its decline facts, each FlexFactor
//! submission and answer), each verified webhook delivery, and each follow-up in the outbox
//! (FlexFactor calls, charges, CRM notifications) with its attempts and last error.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{self, card, dash, money, outcome_label, relative, time_el, Section};
use super::outbox::describe;
use super::session::{self, encode};
use super::PageError;
use crate::service::state::AppState;
use crate::store::console::{self as reads, DeliveryRow, OrderFilter, OutboxRow, StoredEvent};
use crate::store::console_view;
use crate::store::projection;

/// Keys never shown from an event's payload: card tokens and fingerprints (the console shows a
/// card as its BIN and last four only), and the card's expiry and holder.
const HIDDEN_KEYS: [&str; 6] = [
    "token",
    "fingerprint",
    "exp_month",
    "exp_year",
    "holder",
    "card_token",
];

/// How many facts of one event are shown.
const MAX_FACTS: usize = 24;

/// The scalar facts of an event's payload as `path = value`, money written as money.
pub fn facts(payload: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>, depth: usize) {
        if out.len() >= MAX_FACTS {
            return;
        }
        match v {
            Value::Object(map) => {
                if let (Some(Value::Number(m)), Some(Value::String(c))) =
                    (map.get("amount_minor"), map.get("currency"))
                {
                    if let Some(m) = m.as_i64() {
                        out.push((prefix.to_string(), money(m, c)));
                        return;
                    }
                }
                if depth > 3 {
                    return;
                }
                for (k, v) in map {
                    if HIDDEN_KEYS.contains(&k.as_str())
                        || (prefix.is_empty() && (k == "type" || k == "at"))
                    {
                        continue;
                    }
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out, depth + 1);
                }
            }
            Value::Array(items) => {
                if items.iter().all(|i| !i.is_object() && !i.is_array()) {
                    let joined: Vec<String> = items.iter().map(scalar).collect();
                    if !joined.is_empty() {
                        out.push((prefix.to_string(), joined.join(", ")));
                    }
                } else {
                    out.push((prefix.to_string(), format!("{} entries", items.len())));
                }
            }
            Value::Null => {}
            other => out.push((prefix.to_string(), scalar(other))),
        }
    }
    let mut out = Vec::new();
    walk("", payload, &mut out, 0);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn at_of(payload: &Value) -> Option<i64> {
    payload
        .get("at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
}

/// One line of a timeline.
enum Entry<'a> {
    Event(&'a StoredEvent),
    Webhook(&'a DeliveryRow),
    Outbox(&'a OutboxRow),
}

impl Entry<'_> {
    fn at(&self) -> i64 {
        match self {
            Entry::Event(e) => at_of(&e.payload).unwrap_or(0),
            Entry::Webhook(w) => w.received_at,
            Entry::Outbox(o) => o.created_at,
        }
    }
}

fn fact_list(facts: &[(String, String)]) -> Markup {
    html! {
        @if !facts.is_empty() {
            div class="facts" {
                @for (i, (k, v)) in facts.iter().enumerate() {
                    @if i > 0 { " \u{00b7} " }
                    span { (k) " " strong { (v) } }
                }
            }
        }
    }
}

fn timeline(
    events: &[StoredEvent],
    webhooks: &[DeliveryRow],
    outbox: &[OutboxRow],
    now: DateTime<Utc>,
) -> Markup {
    let mut entries: Vec<Entry> = events.iter().map(Entry::Event).collect();
    entries.extend(webhooks.iter().map(Entry::Webhook));
    entries.extend(outbox.iter().map(Entry::Outbox));
    // Stable: events keep their order among themselves at one instant.
    entries.sort_by_key(|e| e.at());
    html! {
        ol class="timeline" id="timeline" {
            @for e in &entries {
                @match e {
                    Entry::Event(ev) => {
                        li class="event" data-kind="event" data-type=(ev.event_type) {
                            @if let Some(t) = at_of(&ev.payload) { (time_el(t)) " " }
                            span class="what" { (ev.event_type) }
                            " " span class="muted" { "#" (ev.sequence) }
                            (fact_list(&facts(&ev.payload)))
                        }
                    }
                    Entry::Webhook(w) => {
                        li class="webhook" data-kind="webhook" {
                            (time_el(w.received_at)) " "
                            span class="what" { "FlexFactor webhook " (w.event) }
                            " " (layout::badge(&w.outcome, &w.outcome))
                            div class="facts" { "delivery " (w.delivery_key)
                                @if let Some(f) = &w.flexfactor_order_id { " \u{00b7} FlexFactor order " (f) } }
                        }
                    }
                    Entry::Outbox(o) => {
                        li class="outbox" data-kind="outbox" {
                            (time_el(o.created_at)) " "
                            span class="what" { (describe(o)) }
                            " " (layout::badge(&o.state, &o.state))
                            div class="facts" {
                                (o.attempts) " attempt" @if o.attempts != 1 { "s" }
                                @if o.state == "pending" { " \u{00b7} due " (relative(o.due_at, now)) }
                                @if let Some(d) = o.done_at { " \u{00b7} settled " (layout::time(d)) }
                                @if let Some(err) = &o.last_error { " \u{00b7} last error: " strong { (err) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn not_found(session: &session::Session, csrf: &str, what: &str, id: &str) -> Response {
    let body = html! {
        h1 { (what) " not found" }
        p { "No " (what.to_lowercase()) " " code { (id) } " is in Salvage (or the views have not caught up yet). "
            a href="/console/orders" { "Search the orders" } }
    };
    (
        StatusCode::NOT_FOUND,
        layout::page(what, Section::Orders, session, csrf, body),
    )
        .into_response()
}

/// `GET /console/orders/{order_id}`.
pub async fn order_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(order_id): Path<String>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    let backend = &state.store.backend;
    let Some(view) = projection::order(backend, &order_id).await? else {
        return Ok(not_found(&session, &csrf, "Order", &order_id));
    };
    let events = reads::aggregate_events(backend, "order", &order_id).await?;
    let webhooks = reads::deliveries_for_order(backend, &order_id).await?;
    let outbox = reads::outbox_for(backend, "order", &order_id).await?;
    let now = state.clock.now();
    let o = &view.state;
    let outcome = console_view::outcome(o).map(|x| x.as_str()).unwrap_or("");
    let body = html! {
        p class="muted" { a href="/console/orders" { "\u{2190} Orders" } }
        h1 { "Order " (order_id) }
        dl class="facts-grid" id="order-state" {
            dt { "Status" } dd { (view.status) @if !outcome.is_empty() { " \u{00b7} salvage " (layout::badge(outcome, outcome_label(outcome))) } }
            dt { "Type" } dd { (view.order_type) }
            @if let Some(d) = &o.details {
                dt { "Amount" } dd data-minor=(d.amount.amount_minor) { (money(d.amount.amount_minor, d.amount.currency.as_str())) }
                dt { "Customer" } dd {
                    (d.customer.first_name) " " (d.customer.last_name)
                    @if let Some(e) = &d.customer.email { " \u{00b7} " (e) }
                }
                dt { "Card" } dd { (card(Some(&d.card.bin), Some(&d.card.last4))) }
                dt { "First gateway" } dd { (d.gateway) }
                @if let Some(s) = &d.subscription_id {
                    dt { "Subscription" } dd { a href={ "/console/subscriptions/" (encode(s.as_str())) } { (s) } }
                }
            }
            @if let Some(t) = o.placed_at { dt { "Placed" } dd { (time_el(t.timestamp_millis())) } }
            @if let Some(f) = &o.first_decline {
                dt { "First decline" } dd { (f.gateway) ": " (f.response_code) " " (f.response_message) }
            }
            @if let Some(g) = &o.paid_by { dt { "Paid by" } dd { (g) } }
            @if let Some(s) = &o.salvage {
                dt { "Salvage" } dd {
                    (s.route.name()) ", submission " (s.attempt) " on " (s.flexfactor_gateway) ": "
                    (format!("{:?}", s.state).to_lowercase())
                    @if let Some(f) = &s.flexfactor_order_id { " \u{00b7} FlexFactor order " (f) }
                    @if let Some(f) = &s.failure { " \u{00b7} " (format!("{f:?}").to_lowercase()) }
                }
                dt { "Sent" } dd { (money(s.amount.amount_minor, s.amount.currency.as_str())) " at " (time_el(s.submitted_at.timestamp_millis())) }
                @if let (Some(e), true) = (s.expires_at(), s.state.is_open()) {
                    dt { "Expires" } dd { (time_el(e.timestamp_millis())) " (" (relative(e.timestamp_millis(), now)) ")" }
                }
            }
        }
        h2 { "History" }
        p class="hint" { "Events, FlexFactor's webhook deliveries and the follow-ups (FlexFactor calls, charges, CRM notifications), by time." }
        (timeline(&events, &webhooks, &outbox, now))
    };
    Ok(layout::page(
        &format!("Order {order_id}"),
        Section::Orders,
        &session,
        &csrf,
        body,
    )
    .into_response())
}

/// `GET /console/subscriptions/{subscription_id}`.
pub async fn subscription_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(subscription_id): Path<String>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    let backend = &state.store.backend;
    let Some(view) = projection::subscription(backend, &subscription_id).await? else {
        return Ok(not_found(&session, &csrf, "Subscription", &subscription_id));
    };
    let events = reads::aggregate_events(backend, "subscription", &subscription_id).await?;
    let outbox = reads::outbox_for(backend, "subscription", &subscription_id).await?;
    let filter = OrderFilter {
        search: Some(subscription_id.clone()),
        ..OrderFilter::default()
    };
    let (orders, more) = reads::orders_page(backend, &filter, None, 50).await?;
    let now = state.clock.now();
    let s = &view.state;
    let recycle = s
        .recycle
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok())
        .map(|v| facts(&v))
        .unwrap_or_default();
    let body = html! {
        p class="muted" { a href="/console/orders" { "\u{2190} Orders" } }
        h1 { "Subscription " (subscription_id) }
        dl class="facts-grid" id="subscription-state" {
            dt { "Status" } dd { (view.status) }
            dt { "Cycle" } dd { (view.cycle) }
            @if let Some(p) = &s.price { dt { "Price" } dd { (money(p.amount_minor, p.currency.as_str())) } }
            dt { "Billing gateway" } dd { (view.billing_gateway.as_deref().unwrap_or("")) }
            dt { "Next bill" } dd {
                @if let Some(t) = view.next_bill_at { (time_el(t)) " (" (relative(t, now)) ")" } @else { (dash()) }
            }
            @if let Some(o) = &s.origin_order_id {
                dt { "First order" } dd { a href={ "/console/orders/" (encode(o.as_str())) } { (o) } }
            }
            @if !recycle.is_empty() {
                dt { "Recycle billing" } dd { (fact_list(&recycle)) }
            }
        }
        h2 { "Orders in salvage" }
        @if orders.is_empty() {
            p class="muted" { "None of its orders was declined." }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "Order" } th { "Placed" } th class="num" { "Amount" } th { "Route" } th { "Outcome" } } }
                tbody { @for o in &orders { tr {
                    td { a href={ "/console/orders/" (encode(&o.order_id)) } { (o.order_id) } }
                    td { @if let Some(t) = o.placed_at { (time_el(t)) } }
                    td class="num" { @if let (Some(m), Some(c)) = (o.amount_minor, &o.currency) { (money(m, c)) } }
                    td { (o.route) @if !o.slot.is_empty() { " (" (o.slot) ")" } }
                    td { (layout::badge(&o.outcome, outcome_label(&o.outcome))) }
                } } }
            } }
            @if more { p class="hint" { "The 50 newest shown." } }
        }
        h2 { "History" }
        (timeline(&events, &[], &outbox, now))
    };
    Ok(layout::page(
        &format!("Subscription {subscription_id}"),
        Section::Orders,
        &session,
        &csrf,
        body,
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_hide_card_secrets_and_write_money() {
        let payload = json!({
            "type": "OrderPlaced",
            "at": "2026-12-01T00:00:00Z",
            "details": {
                "amount": {"amount_minor": 1999, "currency": "USD"},
                "card": {"token": "tok_secret", "bin": "411111", "last4": "1111", "fingerprint": "fp", "exp_month": 1, "exp_year": 2030, "holder": "A B"},
                "items": [{"sku": "x"}],
            }
        });
        let f = facts(&payload);
        let text = format!("{f:?}");
        assert!(text.contains("19.99 USD"), "{text}");
        assert!(text.contains("411111"));
        assert!(!text.contains("tok_secret"));
        assert!(!text.contains("\"fp\""));
        assert!(!text.contains("2030"));
        assert!(!f.iter().any(|(k, _)| k == "type" || k == "at"));
    }
}
