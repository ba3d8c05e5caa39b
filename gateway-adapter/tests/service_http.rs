//! The service over real HTTP, on an ephemeral port: authentication, idempotent orders, routing
//! decisions that need no FlexFactor call (C3, C4, D3, R1, R3), cascades through regular
//! gateways (the sandbox processor), webhook verification (W1, W2, W4, W5), rebills (Y1, D4),
//! the feed and the operations endpoints. Scenarios that need FlexFactor itself run against the
//! fake FlexFactor in `service_flexfactor.rs`.

#[macro_use]
mod support;

use std::sync::Arc;

use chrono::Duration;
use reqwest::StatusCode;
use salvage_domain::{Clock, ManualClock};
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use support::*;

const KEY: &str = "test-api-key-0123456789";
const HMAC: &str =
    "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";

struct Svc {
    running: RunningService,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    place: Place,
}

impl Svc {
    async fn start(place: Place, extra: &str) -> Svc {
        let store_url = match &place {
            Place::Sqlite(url) => url.clone(),
            Place::Postgres(_) => postgres_url(),
        };
        let text = format!(
            "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{store_url}\"\napi_keys = [\"{KEY}\"]\n\
             [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\nrequest_timeout_ms = 500\n{extra}"
        );
        let config = ServiceConfig::from_str(&text, std::path::Path::new("test.toml"), &|_| None)
            .expect("config");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        if let Place::Postgres(schema) = &place {
            options.pg_schema = Some(schema.clone());
        }
        let running = start(config, options).await.expect("service starts");
        Svc {
            running,
            http: reqwest::Client::new(),
            clock,
            place,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The service's `/metrics` text.
    async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A signed delivery, as FlexFactor sends it.
    async fn deliver(
        &self,
        body: &str,
        nonce: &str,
        date_offset: Duration,
        key: &str,
    ) -> (StatusCode, Value) {
        let host = self.running.addr.to_string();
        let date = format_fc_date(self.clock.now() + date_offset);
        let k = WebhookKey::from_base64(&SecretString::from(key.to_string())).unwrap();
        let signed = sign_webhook(&k, &host, nonce, &date, body.as_bytes());
        let mut req = self
            .http
            .post(self.url("/webhooks/flexfactor"))
            .body(body.to_string());
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits (at most 10 s) until GET `path` satisfies `ok`: the background worker may be the
    /// one running due work.
    async fn eventually(&self, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            self.running.state.drive().await.unwrap();
            let (_, v) = self.get(path).await;
            if ok(&v) || std::time::Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.running.shutdown().await.unwrap();
        self.place.cleanup().await;
    }
}

fn order(id: &str, gateway: &str, result: &str, amount: i64) -> Value {
    json!({
        "order_id": id,
        "order_type": "new_sale",
        "campaign_id": "skincare",
        "ip_address": "203.0.113.7",
        "amount_minor": amount,
        "currency": "USD",
        "customer": {"first_name": "Cure", "last_name": "Tester", "email": "cure@example.com",
                     "billing_address": {"line1": "456 My Street", "city": "Ottawa", "zip": "K1C2N6", "country": "CA"}},
        "card": {"token": "tok_test", "bin": "411111", "last4": "1111", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": amount}],
        "attempt": {"gateway_id": gateway, "result": result, "response_code": "05",
                    "response_message": "Issuer unavailable", "decline_type": "soft"}
    })
}

both_stores!(
    threads = 2;
    api_keys_are_required,
    the_same_order_twice_is_one_order_and_another_body_is_a_conflict,
    bad_requests_get_clear_errors,
    c3_c4_no_cascade_to_flexfactor_without_ip_or_on_single_transaction,
    d3_r1_r3_hard_declines_and_profile_reruns_are_refused,
    c1_cascade_through_a_regular_gateway_completes_in_the_answer,
    w1_w2_w4_w5_webhook_verification,
    w3_o7_concurrent_deliveries_commit_together_and_each_is_answered_for_itself,
    y1_d4_rebills_enter_recycle_billing_or_fail,
    feed_and_operations,
);

async fn api_keys_are_required(place: Place) {
    let svc = Svc::start(place, "").await;
    let r = svc.http.get(svc.url("/v1/orders/x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    let r = svc
        .http
        .get(svc.url("/v1/orders/x"))
        .bearer_auth("wrong-key-0000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, b) = svc.get("/v1/orders/x").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    svc.stop().await;
}

async fn the_same_order_twice_is_one_order_and_another_body_is_a_conflict(place: Place) {
    let svc = Svc::start(place, "").await;
    let body = order("o-1", "stripe-eu", "approved", 1999);
    let (s, first) = svc.post("/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "complete");
    let (s, again) = svc.post("/v1/orders", &body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        again["history"].as_array().unwrap().len(),
        first["history"].as_array().unwrap().len()
    );
    let mut other = body.clone();
    other["amount_minor"] = json!(2999);
    let (s, err) = svc.post("/v1/orders", &other).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "conflict");
    svc.stop().await;
}

async fn bad_requests_get_clear_errors(place: Place) {
    let svc = Svc::start(place, "").await;
    let r = svc
        .http
        .post(svc.url("/v1/orders"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "invalid_request");
    let mut bad = order("o-1", "stripe-eu", "declined", 1999);
    bad["attempt"]["decline_type"] = json!("medium");
    let (s, b) = svc.post("/v1/orders", &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("decline_type"));
    let mut bad = order("o-1", "stripe-eu", "approved", 1999);
    bad["currency"] = json!("usd");
    assert_eq!(
        svc.post("/v1/orders", &bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut bad = order("o-1", "stripe-eu", "approved", 1999);
    bad["campaign_id"] = json!("nope");
    let (s, b) = svc.post("/v1/orders", &bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let huge = json!({"order_id": "x".repeat(100_000)});
    let (s, _) = svc.post("/v1/orders", &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    svc.stop().await;
}

async fn c3_c4_no_cascade_to_flexfactor_without_ip_or_on_single_transaction(place: Place) {
    let svc = Svc::start(place, "").await;
    // Through atri-us, whose cascade profile holds FlexFactor only.
    let mut body = order("o-c3", "nmi-main", "declined", 1999);
    body["attempt"]["gateway_profile_id"] = json!("atri-us");
    body.as_object_mut().unwrap().remove("ip_address");
    let (s, out) = svc.post("/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{out}");
    assert_eq!(out["status"], "declined");
    assert_eq!(out["cascade_skipped_reason"], "missing_ip_address");
    assert!(out["salvage"].is_null(), "C3: nothing sent to FlexFactor");
    let mut body = order("o-c4", "nmi-main", "declined", 1999);
    body["campaign_id"] = json!("one-click-bundle");
    body["items"] = json!([{"product_id": "bundle", "quantity": 1, "price_minor": 1999}]);
    body["attempt"]["gateway_profile_id"] = json!("atri-us");
    let (_, out) = svc.post("/v1/orders", &body).await;
    assert_eq!(out["cascade_skipped_reason"], "single_transaction_campaign");
    assert!(out["salvage"].is_null(), "C4");
    svc.stop().await;
}

async fn d3_r1_r3_hard_declines_and_profile_reruns_are_refused(place: Place) {
    let svc = Svc::start(place, "").await;
    let mut body = order("o-hard", "stripe-eu", "declined", 1999);
    body["attempt"]["decline_type"] = json!("hard");
    let (_, out) = svc.post("/v1/orders", &body).await;
    assert_eq!(out["status"], "declined");
    assert_eq!(out["cascade_skipped_reason"], "hard_decline");
    let (s, err) = svc
        .post(
            "/v1/orders/o-hard/rerun",
            &json!({"gateway_id": "flexfactor"}),
        )
        .await;
    assert_eq!(
        (s, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("hard_decline"))
    );
    svc.post(
        "/v1/orders",
        &order("o-soft", "stripe-eu", "declined", 1999),
    )
    .await;
    let (s, err) = svc
        .post("/v1/orders/o-soft/rerun", &json!({"gateway_id": "atri-us"}))
        .await;
    assert_eq!(
        (s, err["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("rerun_on_gateway_profile")
        )
    );
    let (s, _) = svc
        .post(
            "/v1/orders/nope/rerun",
            &json!({"gateway_id": "flexfactor"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    svc.stop().await;
}

async fn c1_cascade_through_a_regular_gateway_completes_in_the_answer(place: Place) {
    let svc = Svc::start(place, "").await;
    // nmi-main declines; its direct cascade tries nmi-backup, which the sandbox processor
    // approves (amount not ending in 01 or 05).
    let (s, out) = svc
        .post("/v1/orders", &order("o-1", "nmi-main", "declined", 1999))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(out["status"], "complete", "C6: final in the answer: {out}");
    assert_eq!(out["paid_by_gateway_id"], "nmi-backup");
    let names: Vec<&str> = out["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"CascadeStepStarted") && names.contains(&"FulfillmentRequested"),
        "{names:?}"
    );
    svc.stop().await;
}

/// How many of `answers` have `status` (and, when given, the acknowledgement's `outcome`).
fn answered(answers: &[(StatusCode, Value)], status: StatusCode, outcome: Option<&str>) -> usize {
    answers
        .iter()
        .filter(|(s, a)| *s == status && (outcome.is_none() || a["status"].as_str() == outcome))
        .count()
}

/// A completed delivery for `order`, as FlexFactor sends it.
fn completed(order: &str) -> String {
    format!(
        r#"{{"Event":"order.completed","TimeStamp":"2026-03-20T17:16:40Z","EventData":null,"ExternalOrderId":"{order}","OrderId":"ff-{order}","ConfirmationId":"C-{order}","IsTestMode":true,"IsResent":false}}"#
    )
}

/// Many deliveries at once share commits (the intake's group commit); each answer still says
/// what became of that delivery, each result is applied exactly once (O7), a nonce used twice
/// is refused once (W2), a delivery for an unknown order is kept (W4), and one refused in a
/// crowd is stored when delivered again.
async fn w3_o7_concurrent_deliveries_commit_together_and_each_is_answered_for_itself(place: Place) {
    let svc = Svc::start(place, "").await;
    let engine = svc.running.state.engine.clone();
    let n = 24;
    let orders: Vec<String> = (0..n).map(|i| format!("gc-{i}")).collect();
    for id in &orders {
        engine
            .order(
                &id.as_str().into(),
                salvage_domain::samples::sale(id, false),
            )
            .await
            .unwrap();
        engine
            .order(
                &id.as_str().into(),
                salvage_domain::order::OrderCommand::RequestRerun {
                    gateway: "flexfactor".into(),
                },
            )
            .await
            .unwrap();
    }
    // One delivery per order; two more copies of the first order's (fresh nonces); the last
    // order's with the nonce of the second's; one for an order Salvage does not know.
    let mut sends: Vec<(String, String)> = orders
        .iter()
        .enumerate()
        .map(|(i, id)| (completed(id), format!("gc-n-{i}")))
        .collect();
    if let Some(last) = sends.last_mut() {
        last.1 = "gc-n-1".into();
    }
    sends.push((completed("gc-0"), "gc-copy-a".into()));
    sends.push((completed("gc-0"), "gc-copy-b".into()));
    sends.push((completed("gc-unknown"), "gc-n-unknown".into()));
    let answers = futures::future::join_all(
        sends
            .iter()
            .map(|(body, nonce)| svc.deliver(body, nonce, Duration::zero(), HMAC)),
    )
    .await;
    let count = |status, outcome| answered(&answers, status, outcome);
    assert_eq!(count(StatusCode::UNAUTHORIZED, None), 1, "W2: {answers:?}");
    assert_eq!(count(StatusCode::OK, Some("applied")), n - 1, "{answers:?}");
    assert_eq!(
        count(StatusCode::OK, Some("duplicate")),
        2,
        "O7: {answers:?}"
    );
    assert_eq!(
        count(StatusCode::OK, Some("unmatched")),
        1,
        "W4: {answers:?}"
    );
    assert_eq!(answers.len(), n + 3);
    // The one refused for its nonce (the second order's or the last's) is stored when
    // FlexFactor delivers it again with a fresh nonce.
    let refused = sends
        .iter()
        .zip(&answers)
        .find(|(_, (s, _))| *s == StatusCode::UNAUTHORIZED)
        .map(|((body, _), _)| body.clone())
        .unwrap();
    let (s, ack) = svc
        .deliver(&refused, "gc-again", Duration::zero(), HMAC)
        .await;
    assert_eq!(
        (s, ack["status"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    // Every order has its result exactly once.
    for id in &orders {
        let events = engine.store.orders.load_events(id).await.unwrap();
        let results = events
            .iter()
            .filter(|e| {
                serde_json::to_value(&e.payload).unwrap()["type"].as_str()
                    == Some("SalvageSucceeded")
            })
            .count();
        assert_eq!(results, 1, "O7: {id}'s result applied once");
        let v = svc
            .eventually(&format!("/v1/orders/{id}"), |v| v["status"] == "complete")
            .await;
        assert_eq!(v["status"], "complete", "{id}: {v}");
    }
    let all: usize = {
        let mut total = 0;
        for id in &orders {
            total += engine.store.orders.load_events(id).await.unwrap().len();
        }
        total
    };
    // Delivering them all again changes nothing: each is a duplicate.
    let svc_ref = &svc;
    let again = futures::future::join_all(orders.iter().enumerate().map(|(i, id)| {
        let body = completed(id);
        let nonce = format!("gc-r-{i}");
        async move { svc_ref.deliver(&body, &nonce, Duration::zero(), HMAC).await }
    }))
    .await;
    assert!(
        again
            .iter()
            .all(|(s, a)| *s == StatusCode::OK && a["status"] == "duplicate"),
        "O7: {again:?}"
    );
    let mut after = 0;
    for id in &orders {
        after += engine.store.orders.load_events(id).await.unwrap().len();
    }
    assert_eq!(after, all, "O7: nothing applied twice");
    let metrics = svc.metrics().await;
    assert!(
        metrics.contains("salvage_webhook_commit_batch_size_count"),
        "{metrics}"
    );
    svc.stop().await;
}

async fn w1_w2_w4_w5_webhook_verification(place: Place) {
    let svc = Svc::start(place, "").await;
    let body = r#"{"Event":"order.completed","TimeStamp":"2026-03-20T17:16:40Z","EventData":null,"ExternalOrderId":"unknown-order","OrderId":"ff-9","ConfirmationId":"C1","IsTestMode":true,"IsResent":false}"#;
    // W1: another key.
    let other =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
    let (s, e) = svc.deliver(body, "n-1", Duration::zero(), other).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // W2: a stale date.
    let (s, _) = svc.deliver(body, "n-2", Duration::minutes(-30), HMAC).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // W4: verified, unknown order: acknowledged and kept.
    let (s, ack) = svc.deliver(body, "n-3", Duration::zero(), HMAC).await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(ack["status"], "unmatched");
    let kept = salvage_gateway::store::webhook_book::unmatched(&svc.running.state.store.backend)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].order_id.as_deref(), Some("unknown-order"));
    // W2: the same nonce again is a replay.
    let (s, _) = svc.deliver(body, "n-3", Duration::zero(), HMAC).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // O7: the same delivery with a fresh nonce is acknowledged as a duplicate, and its nonce is
    // kept (W2: replaying that one is refused too).
    let (s, ack) = svc.deliver(body, "n-3b", Duration::zero(), HMAC).await;
    assert_eq!(
        (s, ack["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    let (s, _) = svc.deliver(body, "n-3b", Duration::zero(), HMAC).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Concurrent copies of one new delivery (FlexFactor resending while the first is stored):
    // one is stored, the others are duplicates; one nonce sent twice at once: one refused.
    let body2 = body
        .replace("unknown-order", "unknown-order-2")
        .replace("ff-9", "ff-10");
    let nonces: Vec<String> = (0..6)
        .map(|i| {
            if i < 2 {
                "n-same".to_string()
            } else {
                format!("n-c{i}")
            }
        })
        .collect();
    let copies = nonces
        .iter()
        .map(|n| svc.deliver(&body2, n, Duration::zero(), HMAC));
    let answers = futures::future::join_all(copies).await;
    let count = |status, outcome| answered(&answers, status, outcome);
    assert_eq!(count(StatusCode::OK, Some("unmatched")), 1, "{answers:?}");
    assert_eq!(count(StatusCode::UNAUTHORIZED, None), 1, "{answers:?}");
    assert_eq!(count(StatusCode::OK, Some("duplicate")), 4, "{answers:?}");
    let kept = salvage_gateway::store::webhook_book::unmatched(&svc.running.state.store.backend)
        .await
        .unwrap();
    assert_eq!(kept.len(), 2, "each delivery kept once");
    // W5: malformed body (signed), oversized body.
    let (s, e) = svc
        .deliver("{\"Event\": 12", "n-4", Duration::zero(), HMAC)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let big = format!(
        "{{\"Event\":\"order.completed\",\"Pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let (s, e) = svc.deliver(&big, "n-5", Duration::zero(), HMAC).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["error"]["code"], "payload_too_large", "{e}");
    // Missing headers.
    let r = svc
        .http
        .post(svc.url("/webhooks/flexfactor"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let metrics = svc.metrics().await;
    assert!(
        metrics.contains("salvage_webhooks_refused_total{reason=\"bad_signature\"}"),
        "{metrics}"
    );
    svc.stop().await;
}

fn subscribing_order(id: &str) -> Value {
    let mut body = order(id, "nmi-main", "approved", 3999);
    body["items"] = json!([{"product_id": "serum-monthly", "quantity": 1, "price_minor": 3999}]);
    body["subscription_id"] = json!("sub-1");
    body
}

async fn y1_d4_rebills_enter_recycle_billing_or_fail(place: Place) {
    let svc = Svc::start(place, "").await;
    let (s, _) = svc.post("/v1/orders", &subscribing_order("o-1")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, sub) = svc.get("/v1/subscriptions/sub-1").await;
    assert_eq!(s, StatusCode::OK, "{sub}");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["billing_gateway_id"], "nmi-main");
    assert_eq!(sub["payment_credential"], "token");
    assert_eq!(sub["cycle"], 1);
    let attempt = json!({"gateway_id": "nmi-main", "result": "declined", "response_code": "91",
                         "response_message": "Issuer unavailable", "decline_type": "soft"});
    let (s, sub) = svc
        .post(
            "/v1/subscriptions/sub-1/rebills",
            &json!({"attempt": attempt}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sub}");
    assert_eq!(sub["status"], "recycle_billing");
    assert_eq!(sub["recycle"]["attempt"], 1);
    assert_eq!(sub["recycle"]["gateway_id"], "nmi-main");
    assert!(sub["recycle"]["next_attempt_at"].is_string());
    // Re-attempt 1 is due after one day: the sandbox processor approves the price (3999).
    svc.clock.advance(Duration::days(1) + Duration::minutes(1));
    let sub = svc
        .eventually("/v1/subscriptions/sub-1", |v| v["status"] == "active")
        .await;
    assert_eq!(sub["status"], "active", "Y2: {sub}");
    assert_eq!(sub["cycle"], 2);
    let rebill = svc
        .eventually("/v1/orders/sub-1-c2", |v| v["status"] == "complete")
        .await;
    assert_eq!(rebill["status"], "complete");
    // D4: a hard-declined rebill fails at once.
    let hard = json!({"gateway_id": "nmi-main", "result": "declined", "response_code": "04",
                      "response_message": "Pick up card", "decline_type": "hard"});
    let (_, sub) = svc
        .post("/v1/subscriptions/sub-1/rebills", &json!({"attempt": hard}))
        .await;
    assert_eq!(sub["status"], "recycle_failed");
    let (s, _) = svc
        .post("/v1/subscriptions/nope/rebills", &json!({"attempt": hard}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    svc.stop().await;
}

async fn feed_and_operations(place: Place) {
    let svc = Svc::start(place, "").await;
    for i in 0..3 {
        svc.post(
            "/v1/orders",
            &order(&format!("o-{i}"), "stripe-eu", "approved", 1999),
        )
        .await;
    }
    let (s, page) = svc.get("/v1/events?after=0&limit=4").await;
    assert_eq!(s, StatusCode::OK);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    let next = page["next_after"].as_i64().unwrap();
    assert_eq!(next, events[3]["position"].as_i64().unwrap());
    let (_, rest) = svc
        .get(&format!("/v1/events?after={next}&limit=1000"))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 3 * 3 - 4);
    assert_eq!(
        svc.get("/v1/events?limit=0").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        svc.http
            .get(svc.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        svc.http
            .get(svc.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let metrics = svc.metrics().await;
    assert!(
        metrics.contains(
            "salvage_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\"} 3"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("salvage_scheduler_lag_seconds"));
    let api: Value = svc
        .http
        .get(svc.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/orders",
        "/v1/orders/{order_id}/rerun",
        "/v1/subscriptions/{subscription_id}/rebills",
        "/v1/events",
        "/webhooks/flexfactor",
    ] {
        assert!(api["paths"][path].is_object(), "openapi lacks {path}");
    }
    let r = svc.http.get(svc.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().contains_key("x-request-id"));
    svc.stop().await;
}
