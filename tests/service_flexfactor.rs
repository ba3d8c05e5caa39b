//! The service over real HTTP with the fake FlexFactor as its upstream, delivering signed
//! webhooks, on one manual clock shared by both: every row of the seeds' result table (O1-O5),
//! cascades through a profile and through cascade_all (C1, C2, C5), reruns (R2), recycle billing
//! reaching its FlexFactor slot (Y3, O4, O5), chargebacks with include_chargebacks on and off
//! (K1, K2), refunds (K3), duplicate, resent and reordered deliveries (O7), and the type of a
//! rebill's order (O3).

mod support;

use chrono::Duration;
use salvage_domain::Clock;
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_sim::fake_flexfactor::{Fault, FaultRule};
use secrecy::SecretString;
use serde_json::{json, Value};
use support::World;

const KEY: &str = "test-api-key-0123456789";
const HMAC: &str =
    "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";
const APPROVED_CARD: &str = "4111111111111111";
const DECLINED_CARD: &str = "4000300011112220";

async fn world(setup_edit: impl Fn(String) -> String) -> World {
    World::start("svc-ff", KEY, setup_edit, |_| {}).await
}

/// A delivery signed with the sample key, as FlexFactor would send it.
async fn deliver(w: &World, event: &str, order: &str, ff_order: &str, nonce: &str) -> (u16, Value) {
    let body = format!(
        r#"{{"Event":"{event}","TimeStamp":"2026-03-20T17:16:40Z","EventData":null,"ExternalOrderId":"{order}","OrderId":"{ff_order}","ConfirmationId":"X1","IsTestMode":true,"IsResent":false}}"#
    );
    let host = w.svc.addr.to_string();
    let key = WebhookKey::from_base64(&SecretString::from(HMAC)).unwrap();
    let signed = sign_webhook(
        &key,
        &host,
        nonce,
        &format_fc_date(w.clock.now()),
        body.as_bytes(),
    );
    let mut req = w
        .http
        .post(format!("{}/webhooks/flexfactor", w.svc.url()))
        .body(body);
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn sale(id: &str, gateway: &str, card: &str, amount: i64, product: &str) -> Value {
    json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare", "ip_address": "203.0.113.7",
        "amount_minor": amount, "currency": "USD",
        "customer": {"first_name": "Cure", "last_name": "Tester", "email": "cure@example.com",
                     "billing_address": {"line1": "456 My Street", "city": "Ottawa", "zip": "K1C2N6", "country": "CA"}},
        "card": {"number": card, "cvv": "123", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
        "items": [{"product_id": product, "quantity": 1, "price_minor": amount}],
        "attempt": {"gateway_id": gateway, "result": "declined", "response_code": "91",
                    "response_message": "Issuer unavailable", "decline_type": "soft"}
    })
}

fn history(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| e["type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_c5_o1_cascade_through_an_atri_profile_to_flexfactor() {
    let w = world(|s| s).await;
    let mut body = sale("o-1", "nmi-main", APPROVED_CARD, 1999, "cleanser");
    body["attempt"]["gateway_profile_id"] = json!("atri-us");
    let (status, out) = w.post("/v1/orders", &body).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["status"], "complete", "C6, O1: {out}");
    assert_eq!(out["salvage"]["route"], "cascade");
    assert!(out["salvage"]["expires_at"].is_null(), "C5: no expiry");
    let evaluate = &w.fake.calls().evaluate_bodies[0];
    assert_eq!(
        evaluate["customerIp"], "203.0.113.7",
        "C5: CIT with customerIp"
    );
    assert!(evaluate.get("expiryDateUtc").is_none());
    assert_eq!(evaluate["transaction"]["amount"], 1999, "F4: cents");
    assert_ne!(
        evaluate["paymentMethod"]["cardNumber"], APPROVED_CARD,
        "F2: a token, not the number"
    );
    // FlexFactor's own order.completed for the sync approval changes nothing (O7).
    w.settle().await;
    let again = w.get("/v1/orders/o-1").await;
    assert_eq!(again["status"], "complete");
    assert_eq!(
        history(&again)
            .iter()
            .filter(|t| *t == "SalvageSucceeded")
            .count(),
        1
    );
    // C5: a declined card at FlexFactor declines the sale at once.
    let mut body = sale("o-2", "nmi-main", DECLINED_CARD, 1999, "cleanser");
    body["attempt"]["gateway_profile_id"] = json!("atri-us");
    let (_, out) = w.post("/v1/orders", &body).await;
    assert_eq!(out["status"], "declined", "{out}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_cascade_all_sends_soft_declines_straight_to_flexfactor() {
    let w = world(|s| s.replace("cascade_all = false", "cascade_all = true")).await;
    let (_, out) = w
        .post(
            "/v1/orders",
            &sale("o-1", "stripe-eu", APPROVED_CARD, 1999, "cleanser"),
        )
        .await;
    assert_eq!(out["status"], "complete", "{out}");
    assert_eq!(out["paid_by_gateway_id"], "flexfactor");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_o1_o7_rerun_completes_by_webhook_once_even_when_delivered_twice() {
    let w = world(|s| s).await;
    w.fake
        .add_fault(FaultRule::on_webhooks(Fault::Duplicate, None))
        .unwrap();
    w.fake
        .add_fault(FaultRule::on_webhooks(Fault::Resent, None))
        .unwrap();
    let (_, out) = w
        .post(
            "/v1/orders",
            &sale("o-1", "stripe-eu", APPROVED_CARD, 1999, "cleanser"),
        )
        .await;
    assert_eq!(out["status"], "declined", "stripe-eu has no cascade");
    let (status, out) = w
        .post("/v1/orders/o-1/rerun", &json!({"gateway_id": "flexfactor"}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["status"], "salvage_pending", "R2");
    assert_eq!(out["salvage"]["state"], "accepted");
    let body = w.fake.calls().evaluate_bodies[0].clone();
    assert_eq!(body["isMIT"], true);
    assert!(body["expiryDateUtc"].is_string(), "R2: expiry");
    // The repeat is a no-op (R5).
    let (_, again) = w
        .post("/v1/orders/o-1/rerun", &json!({"gateway_id": "flexfactor"}))
        .await;
    assert_eq!(again["salvage"]["attempt"], 1);
    assert_eq!(w.fake.calls().evaluate_bodies.len(), 1);
    w.advance(Duration::hours(2)).await;
    let out = w.get("/v1/orders/o-1").await;
    assert_eq!(out["status"], "complete", "O1: {out}");
    let h = history(&out);
    assert_eq!(
        h.iter().filter(|t| *t == "SalvageSucceeded").count(),
        1,
        "O7: {h:?}"
    );
    assert_eq!(h.iter().filter(|t| *t == "FulfillmentRequested").count(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o2_o3_failures_decline_a_new_sale_and_leave_a_trial_completion_as_it_was() {
    let w = world(|s| s).await;
    w.post(
        "/v1/orders",
        &sale("o-1", "stripe-eu", DECLINED_CARD, 1999, "cleanser"),
    )
    .await;
    w.post("/v1/orders/o-1/rerun", &json!({"gateway_id": "flexfactor"}))
        .await;
    // A trial completion on a subscription (the trial product, approved at once on nmi-main).
    let mut trial = sale("o-t0", "nmi-main", APPROVED_CARD, 499, "serum-trial");
    trial["attempt"]["result"] = json!("approved");
    trial["subscription_id"] = json!("sub-t");
    w.post("/v1/orders", &trial).await;
    w.settle().await;
    let sub = w.get("/v1/subscriptions/sub-t").await;
    assert_eq!(sub["status"], "trial", "{sub}");
    let mut completion = sale("o-tc", "nmi-main", DECLINED_CARD, 499, "serum-trial");
    completion["order_type"] = json!("trial_completion");
    completion["subscription_id"] = json!("sub-t");
    let (_, before) = w.post("/v1/orders", &completion).await;
    let status_before = before["status"].clone();
    w.post(
        "/v1/orders/o-tc/rerun",
        &json!({"gateway_id": "flexfactor"}),
    )
    .await;
    w.advance(Duration::days(22)).await;
    let o1 = w.get("/v1/orders/o-1").await;
    assert_eq!(o1["status"], "declined", "O2: {o1}");
    // The expiry webhook, or the reconciliation poll after the expiry (O8), whichever came first.
    assert!(
        ["expired", "cancelled"].contains(&o1["salvage"]["failure_reason"].as_str().unwrap_or("")),
        "{o1}"
    );
    let tc = w.get("/v1/orders/o-tc").await;
    assert_eq!(tc["status"], status_before, "O3: {tc}");
    assert!(
        history(&tc).contains(&"SalvageFailed".to_string()),
        "O3: the failure is in its history"
    );
    w.stop().await;
}

/// O3 decides the type of a rebill's order: while the subscription is in its trial, its rebill
/// completes the trial (`trial_completion`, whose failure leaves the order as it was), whether
/// Salvage bills it on schedule or the CRM reports it; once active, it is `recurring`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o3_the_rebill_of_a_subscription_in_its_trial_is_a_trial_completion() {
    let w = world(|s| s).await;
    for (order, sub) in [("o-t0", "sub-t"), ("o-u0", "sub-u")] {
        let mut trial = sale(order, "nmi-main", APPROVED_CARD, 499, "serum-trial");
        trial["attempt"]["result"] = json!("approved");
        trial["subscription_id"] = json!(sub);
        let (s, out) = w.post("/v1/orders", &trial).await;
        assert_eq!(s, 201, "{out}");
    }
    w.settle().await;
    let sub_u = w.get("/v1/subscriptions/sub-u").await;
    assert_eq!(sub_u["status"], "trial", "{sub_u}");
    // The rebill that bills cycle n is `{subscription}-c{n+1}`.
    let next = |sub: &Value| format!("c{}", sub["cycle"].as_u64().unwrap_or(0) + 1);
    let sub_t = w.get("/v1/subscriptions/sub-t").await;
    // Reported by the CRM during the trial.
    let attempt = json!({"gateway_id": "nmi-main", "result": "approved"});
    let (s, out) = w
        .post(
            "/v1/subscriptions/sub-u/rebills",
            &json!({"attempt": attempt}),
        )
        .await;
    assert!(s < 300, "{out}");
    let reported = w.get(&format!("/v1/orders/sub-u-{}", next(&sub_u))).await;
    assert_eq!(reported["order_type"], "trial_completion", "{reported}");
    // Billed by Salvage when the trial ends (14 days).
    w.advance(Duration::days(14) + Duration::minutes(1)).await;
    let billed = w.get(&format!("/v1/orders/sub-t-{}", next(&sub_t))).await;
    assert_eq!(billed["order_type"], "trial_completion", "{billed}");
    let sub = w.get("/v1/subscriptions/sub-t").await;
    assert_eq!(sub["status"], "active", "{sub}");
    // The next one, on the active subscription, is recurring.
    w.advance(Duration::days(30) + Duration::minutes(1)).await;
    let recurring = w.get(&format!("/v1/orders/sub-t-{}", next(&sub))).await;
    assert_eq!(recurring["order_type"], "recurring", "{recurring}");
    w.stop().await;
}

/// A subscription whose rebills the sandbox processor soft-declines (price ending in 01).
async fn recycling_to_flexfactor(w: &World, card: &str) {
    let mut body = sale("o-1", "nmi-main", card, 4001, "serum-monthly");
    body["attempt"]["result"] = json!("approved");
    body["subscription_id"] = json!("sub-1");
    let (s, out) = w.post("/v1/orders", &body).await;
    assert_eq!(s, 201, "{out}");
    w.settle().await;
    let attempt = json!({"gateway_id": "nmi-main", "result": "declined", "response_code": "91",
                         "response_message": "Issuer unavailable", "decline_type": "soft"});
    let (_, sub) = w
        .post(
            "/v1/subscriptions/sub-1/rebills",
            &json!({"attempt": attempt}),
        )
        .await;
    assert_eq!(sub["status"], "recycle_billing", "Y1: {sub}");
    // Re-attempts 1-3 on nmi-main (1, 3 and 3 days apart), then the FlexFactor slot (5 days).
    for days in [1, 3, 3, 5] {
        w.advance(Duration::days(days) + Duration::minutes(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn y3_o4_recycle_reaches_its_flexfactor_slot_and_the_salvage_advances_the_subscription() {
    let w = world(|s| s).await;
    recycling_to_flexfactor(&w, APPROVED_CARD).await;
    let sub = w.get("/v1/subscriptions/sub-1").await;
    assert_eq!(sub["recycle"]["flexfactor_slot"], "4-6", "Y3: {sub}");
    let mits: Vec<_> = w
        .fake
        .calls()
        .evaluate_bodies
        .into_iter()
        .filter(|b| b["isMIT"] == true)
        .collect();
    assert_eq!(mits.len(), 1, "Y3: submitted once");
    assert_eq!(mits[0]["isRecurring"], true);
    w.advance(Duration::hours(2)).await;
    let sub = w.get("/v1/subscriptions/sub-1").await;
    assert_eq!(sub["status"], "active", "O4: {sub}");
    assert_eq!(sub["cycle"], 2, "exactly one cycle");
    assert_eq!(
        sub["billing_gateway_id"], "nmi-main",
        "O4: back on the declining gateway"
    );
    let rebill = w.get("/v1/orders/sub-1-c2").await;
    assert_eq!(rebill["status"], "complete");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o5_a_failed_recycle_salvage_is_recycle_failed() {
    let w = world(|s| s).await;
    recycling_to_flexfactor(&w, DECLINED_CARD).await;
    w.advance(Duration::days(22)).await;
    let sub = w.get("/v1/subscriptions/sub-1").await;
    assert_eq!(sub["status"], "recycle_failed", "O5: {sub}");
    w.stop().await;
}

async fn salvaged(w: &World) -> String {
    w.post(
        "/v1/orders",
        &sale("o-1", "stripe-eu", APPROVED_CARD, 1999, "cleanser"),
    )
    .await;
    w.post("/v1/orders/o-1/rerun", &json!({"gateway_id": "flexfactor"}))
        .await;
    w.advance(Duration::hours(2)).await;
    let out = w.get("/v1/orders/o-1").await;
    assert_eq!(out["status"], "complete");
    out["salvage"]["flexfactor_order_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k1_k3_o7_chargebacks_and_refunds_apply_once_in_any_order() {
    let w = world(|s| s).await;
    let ff = salvaged(&w).await;
    let (s, ack) = deliver(&w, "payment.chargeback.received", "o-1", &ff, "n-cb").await;
    assert_eq!((s, ack["status"].as_str()), (200, Some("applied")));
    assert_eq!(w.get("/v1/orders/o-1").await["status"], "chargeback", "K1");
    // The same delivery again (a new nonce, as FlexFactor resends): acknowledged, not applied.
    let (s, ack) = deliver(&w, "payment.chargeback.received", "o-1", &ff, "n-cb2").await;
    assert_eq!((s, ack["status"].as_str()), (200, Some("duplicate")));
    // A late "expired" for a completed salvage changes nothing (reordered deliveries, O7).
    deliver(&w, "order.expired", "o-1", &ff, "n-exp").await;
    assert_eq!(w.get("/v1/orders/o-1").await["status"], "chargeback");
    deliver(&w, "order.refunded", "o-1", &ff, "n-rf").await;
    let out = w.get("/v1/orders/o-1").await;
    assert_eq!(out["status"], "refunded", "K3");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k2_chargebacks_are_ignored_without_include_chargebacks() {
    let w = world(|s| s.replace("include_chargebacks = true", "include_chargebacks = false")).await;
    let ff = salvaged(&w).await;
    let (s, _) = deliver(&w, "payment.chargeback.received", "o-1", &ff, "n-cb").await;
    assert_eq!(s, 200);
    let out = w.get("/v1/orders/o-1").await;
    assert_eq!(out["status"], "complete", "K2: unchanged");
    assert!(
        history(&out).contains(&"ResultIgnored".to_string()),
        "K2: recorded as ignored"
    );
    w.stop().await;
}
