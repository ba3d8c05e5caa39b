//! The outbox: follow-ups that leave Salvage (FlexFactor calls, charge-hook calls, CRM
//! notifications) pending or failing, with the next retry time and the last error, and every
//! row that failed for good. An operator may ask for a retry now: the row is made due at once
//! and the worker runs it like any other, through the outbox under its own key (so it never
//! runs twice at once, and never around the lease). Read-only keys see the page but no button.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, dash, relative, time_el, Section};
use super::session::{self, encode, see_other};
use super::PageError;
use crate::service::state::AppState;
use crate::store::console::{self as reads, OutboxRow, RetryAsked};

/// Rows shown.
const SHOWN: i64 = 500;

/// What an outbox row does, in words: the effect (and the notification's kind), the order or
/// subscription it concerns.
pub fn describe(row: &OutboxRow) -> String {
    let v: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    match row.kind.as_str() {
        "effect" => {
            let effect = v.get("effect").and_then(Value::as_str).unwrap_or("effect");
            match (effect, v.get("kind").and_then(Value::as_str)) {
                ("notify_crm", Some(kind)) => format!("CRM notification {kind}"),
                ("charge", _) => "charge (charge hook)".to_string(),
                ("bill_subscription", _) => "rebill (charge hook)".to_string(),
                ("submit_to_flex_factor", _) => "FlexFactor /evaluate".to_string(),
                (other, _) => other.replace('_', " "),
            }
        }
        "order" | "subscription" => {
            let cmd = v
                .get("command")
                .and_then(|c| c.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("command");
            format!("{} command {cmd}", row.kind)
        }
        "timer" => "timer".to_string(),
        other => other.to_string(),
    }
}

/// The order or subscription a row concerns, from its key (`type:id:sequence:index`).
pub fn subject(key: &str) -> Option<(&str, &str)> {
    let (kind, rest) = key.split_once(':')?;
    let cut = rest.rfind(':')?;
    let rest = &rest[..cut];
    let cut = rest.rfind(':')?;
    Some((kind, &rest[..cut]))
}

#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    /// The row just asked for, and what came of it (after a retry).
    pub retried: Option<String>,
    pub result: Option<String>,
}

fn notice(q: &OutboxQuery) -> Markup {
    html! {
        @if let (Some(key), Some(result)) = (&q.retried, &q.result) {
            div class="notice" role="status" id="notice" {
                @match result.as_str() {
                    "due" => { "Retry asked: " code { (key) } " is due now; the worker runs it on its next round." }
                    "running" => { code { (key) } " is running at this moment; it was left alone." }
                    "done" => { code { (key) } " is done already; nothing to retry." }
                    _ => { "No outbox row " code { (key) } "." }
                }
            }
        }
    }
}

/// `GET /console/outbox`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    let rows = reads::outbox_attention(&state.store.backend, SHOWN).await?;
    let now = state.clock.now();
    let body = html! {
        h1 { "Outbox" }
        (notice(&q))
        p class="hint" { "Calls Salvage makes (FlexFactor, the charge hook, CRM notifications) that are pending or failing, and anything that failed for good. Failed first, then by due time." }
        @if !session.can_change() {
            p class="notice" { "You are signed in read-only: you can see the outbox but not retry." }
        }
        @if rows.is_empty() {
            p class="muted" { "Nothing pending or failing." }
        } @else {
            div class="scroll" { table id="outbox" {
                thead { tr {
                    th scope="col" { "What" } th scope="col" { "For" } th scope="col" { "State" }
                    th scope="col" class="num" { "Attempts" } th scope="col" { "Next try" }
                    th scope="col" { "Last error" } th scope="col" { span class="hide-narrow" { "Action" } }
                } }
                tbody { @for r in &rows { tr data-key=(r.key) {
                    td { (describe(r)) br; span class="muted hint" { (r.key) } }
                    td {
                        @match subject(&r.key) {
                            Some(("order", id)) => { a href={ "/console/orders/" (encode(id)) } { "order " (id) } }
                            Some(("subscription", id)) => { a href={ "/console/subscriptions/" (encode(id)) } { "subscription " (id) } }
                            _ => { (dash()) }
                        }
                    }
                    td { (layout::badge(if r.state == "failed" { "failed" } else if r.last_error.is_some() { "warn" } else { "pending" }, &r.state)) }
                    td class="num" { (r.attempts) }
                    td {
                        @if r.state == "pending" { (time_el(r.due_at)) br; span class="muted" { (relative(r.due_at, now)) } }
                        @else { (dash()) }
                    }
                    td { @if let Some(e) = &r.last_error { (e) } @else { (dash()) } }
                    td {
                        @if session.can_change() {
                            form method="post" action="/console/outbox/retry" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="key" value=(r.key);
                                button type="submit" aria-label={ "Retry " (r.key) " now" } { "Retry now" }
                            }
                        } @else {
                            span class="muted" { "read-only" }
                        }
                    }
                } } }
            } }
        }
    };
    Ok(layout::page("Outbox", Section::Outbox, &session, &csrf, body).into_response())
}

#[derive(Deserialize)]
pub struct RetryForm {
    csrf: String,
    key: String,
}

/// `POST /console/outbox/retry`: operators only, with the session's CSRF token.
pub async fn retry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<RetryForm>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    if !session.csrf_ok(state.console.key(), &form.csrf) {
        return Ok(session::csrf_refused());
    }
    if !session.can_change() {
        return Ok(session::read_only_refused());
    }
    let now = state.clock.now().timestamp_millis();
    let asked = reads::retry_now(&state.store.backend, &form.key, now).await?;
    let result = match asked {
        RetryAsked::Due => {
            tracing::info!(key = %form.key, "operator asked for a retry now");
            state.wake();
            "due"
        }
        RetryAsked::Running => "running",
        RetryAsked::Done => "done",
        RetryAsked::NotFound => "not_found",
    };
    Ok(see_other(&format!(
        "/console/outbox?retried={}&result={result}",
        encode(&form.key)
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, payload: &str) -> OutboxRow {
        OutboxRow {
            key: "order:o-1:3:0".into(),
            kind: kind.into(),
            payload: payload.into(),
            due_at: 0,
            state: "pending".into(),
            attempts: 0,
            lease_until: None,
            last_error: None,
            created_at: 0,
            done_at: None,
        }
    }

    #[test]
    fn rows_say_what_they_do() {
        assert_eq!(
            describe(&row(
                "effect",
                r#"{"follow_up":"effect","effect":"notify_crm","kind":"order_recovered"}"#
            )),
            "CRM notification order_recovered"
        );
        assert_eq!(
            describe(&row(
                "effect",
                r#"{"follow_up":"effect","effect":"capture"}"#
            )),
            "capture"
        );
        assert_eq!(describe(&row("effect", "not json")), "effect");
    }

    #[test]
    fn the_subject_comes_from_the_key_even_with_colons_in_the_id() {
        assert_eq!(subject("order:o-1:3:0"), Some(("order", "o-1")));
        assert_eq!(
            subject("subscription:a:b:12:1"),
            Some(("subscription", "a:b"))
        );
        assert_eq!(subject("nonsense"), None);
    }
}
