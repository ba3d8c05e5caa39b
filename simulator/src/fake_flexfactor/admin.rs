//! The admin endpoints (no authentication: the fake is a test tool, bind it to localhost):
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/state` | clock, orders, scheduled transitions, outbox, delivery attempts, call counts, faults, rules |
//! | `GET /admin/calls` | call counts per endpoint and the `/evaluate` bodies |
//! | `POST /admin/clock/advance` | `{"seconds": N}` (also `minutes`, `hours`, `days`): move the clock, then deliver what became due |
//! | `POST /admin/deliver` | deliver what is due now |
//! | `GET/PUT/POST/DELETE /admin/faults` | list, replace (a list), add (one rule), clear |
//! | `GET/PUT /admin/rules` | read or replace the outcome rules |
//! | `GET/PUT /admin/webhook-url` | `{"url": "..."}` or `{"url": null}` |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use salvage_domain::Clock;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::app::App;
use super::faults::{Endpoint, FaultRule};
use super::rules::RuleSet;
use super::state::{Delivery, DeliveryAttempt, Order, Scheduled, State as FakeState};
use super::wire::Reply;

/// A fault rule and how often it fired.
#[derive(Debug, Clone, Serialize)]
pub struct FaultState {
    /// The rule.
    #[serde(flatten)]
    pub rule: FaultRule,
    /// Times it fired.
    pub fired: u32,
}

/// Everything the fake holds (`GET /admin/state`, `RunningFake::state()`).
#[derive(Debug, Clone, Serialize)]
pub struct StateView {
    /// The fake's clock.
    pub now: DateTime<Utc>,
    /// `real` or `driven`.
    pub clock: &'static str,
    /// Where webhooks go.
    pub webhook_url: Option<String>,
    /// Orders, oldest first.
    pub orders: Vec<Order>,
    /// Transitions still to come.
    pub scheduled: Vec<Scheduled>,
    /// The webhook outbox.
    pub deliveries: Vec<Delivery>,
    /// Every send of a webhook.
    pub delivery_attempts: Vec<DeliveryAttempt>,
    /// Calls per endpoint.
    pub calls: BTreeMap<Endpoint, u64>,
    /// Faults and how often they fired.
    pub faults: Vec<FaultState>,
    /// The outcome rules.
    pub rules: RuleSet,
    /// Access tokens not yet expired.
    pub active_tokens: usize,
}

pub(crate) fn view(
    st: &FakeState,
    now: DateTime<Utc>,
    clock: &'static str,
    webhook_url: Option<String>,
) -> StateView {
    let mut scheduled = st.schedule.clone();
    scheduled.sort_by_key(|s| s.at);
    StateView {
        now,
        clock,
        webhook_url,
        orders: st
            .order_sequence
            .iter()
            .filter_map(|id| st.orders.get(id).cloned())
            .collect(),
        scheduled,
        deliveries: st.outbox.clone(),
        delivery_attempts: st.attempts.clone(),
        calls: st.calls.counts.clone(),
        faults: st
            .faults
            .fired()
            .into_iter()
            .map(|(rule, fired)| FaultState { rule, fired })
            .collect(),
        rules: st.rules.clone(),
        active_tokens: st.tokens.values().filter(|t| **t > now).count(),
    }
}

impl App {
    /// Everything the fake holds, after applying the transitions that became due.
    pub(crate) fn state_view(&self) -> StateView {
        let now = self.clock.now();
        let webhook_url = self.webhook_target().map(|t| t.url.to_string());
        let mut st = self.lock();
        st.settle(now, self.settings.capture_window);
        view(
            &st,
            now,
            if self.clock.is_driven() {
                "driven"
            } else {
                "real"
            },
            webhook_url,
        )
    }
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/state", get(state))
        .route("/admin/calls", get(calls))
        .route("/admin/clock/advance", post(advance))
        .route("/admin/deliver", post(deliver))
        .route(
            "/admin/faults",
            get(faults)
                .put(replace_faults)
                .post(add_fault)
                .delete(clear_faults),
        )
        .route("/admin/rules", get(rules).put(replace_rules))
        .route("/admin/webhook-url", get(webhook_url).put(set_webhook_url))
}

fn ok(body: Value) -> Response {
    Reply::json(200, body).into_response()
}

fn bad(message: impl std::fmt::Display) -> Response {
    Reply::json(400, json!({"error": message.to_string()})).into_response()
}

fn read<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

fn to_json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_value(value) {
        Ok(v) => ok(v),
        Err(e) => Reply::json(500, json!({"error": e.to_string()})).into_response(),
    }
}

async fn state(State(app): State<Arc<App>>) -> Response {
    to_json(&app.state_view())
}

async fn calls(State(app): State<Arc<App>>) -> Response {
    let calls = app.lock().calls.clone();
    to_json(&calls)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    minutes: i64,
    #[serde(default)]
    hours: i64,
    #[serde(default)]
    days: i64,
}

async fn advance(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let a: Advance = match read(&body) {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    let total = [
        Duration::try_seconds(a.seconds),
        Duration::try_minutes(a.minutes),
        Duration::try_hours(a.hours),
        Duration::try_days(a.days),
    ]
    .into_iter()
    .try_fold(Duration::zero(), |acc, d| {
        d.and_then(|d| acc.checked_add(&d))
    });
    let Some(by) = total.filter(|d| *d >= Duration::zero()) else {
        return bad("the clock only moves forward, by a representable amount");
    };
    app.advance(by);
    let report = app.deliver_due().await;
    let now = app.clock.now();
    ok(json!({"now": now, "delivered": report}))
}

async fn deliver(State(app): State<Arc<App>>) -> Response {
    let report = app.deliver_due().await;
    to_json(&report)
}

async fn faults(State(app): State<Arc<App>>) -> Response {
    let rules = app.lock().faults.rules();
    to_json(&rules)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultList {
    List(Vec<FaultRule>),
    Wrapped { faults: Vec<FaultRule> },
}

async fn replace_faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let list = match read::<FaultList>(&body) {
        Ok(FaultList::List(l)) | Ok(FaultList::Wrapped { faults: l }) => l,
        Err(e) => return bad(e),
    };
    match app.set_faults(list) {
        Ok(()) => faults(State(app)).await,
        Err(e) => bad(e),
    }
}

async fn add_fault(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let rule: FaultRule = match read(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    match app.add_fault(rule) {
        Ok(()) => faults(State(app)).await,
        Err(e) => bad(e),
    }
}

async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    match app.set_faults(Vec::new()) {
        Ok(()) => ok(json!([])),
        Err(e) => bad(e),
    }
}

async fn rules(State(app): State<Arc<App>>) -> Response {
    let rules = app.lock().rules.clone();
    to_json(&rules)
}

async fn replace_rules(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let rules: RuleSet = match read(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    match app.set_rules(rules) {
        Ok(()) => self::rules(State(app)).await,
        Err(e) => bad(e),
    }
}

async fn webhook_url(State(app): State<Arc<App>>) -> Response {
    ok(json!({"url": app.webhook_target().map(|t| t.url.to_string())}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookUrl {
    url: Option<String>,
}

async fn set_webhook_url(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let w: WebhookUrl = match read(&body) {
        Ok(w) => w,
        Err(e) => return bad(e),
    };
    match app.set_webhook_url(w.url.as_deref()) {
        Ok(()) => webhook_url(State(app)).await,
        Err(e) => bad(e),
    }
}
