//! `salvage export-trace` against the real service, then `salvage replay` of what it wrote: the
//! replayed orders and subscriptions end in the states the service's GET endpoints show.
//!
//! The service runs in-process on an ephemeral port with the fake FlexFactor as its upstream
//! (signed webhooks), both on one manual clock, as in `service_flexfactor.rs`; the two commands
//! run as the binary. Scenarios: an approved new sale whose subscription the scheduler bills
//! again a month later; a soft-declined sale that cascades (nmi-backup, then FlexFactor, which
//! declines it at once), is rerun and completed by FlexFactor's webhook, and whose subscription's
//! first rebill soft-declines into recycle billing; a declined sale rerun, completed and charged
//! back; a subscription whose rebill is soft-declined into recycle billing, re-attempted three
//! times on its gateway, handed to FlexFactor at its slot and recovered there.

mod support;

use std::collections::BTreeSet;
use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use salvage_sim::fake_flexfactor::{Mode, Outcome, Rule};
use serde_json::{json, Value};
use support::World;

const KEY: &str = "test-api-key-export-trace";
const APPROVED_CARD: &str = "4111111111111111";
/// Amounts the fake FlexFactor decides by (the rules below).
const CASCADE_DECLINED_AMOUNT: i64 = 3901;
const CHARGED_BACK_AMOUNT: i64 = 1998;

async fn world() -> World {
    World::start(
        "export-trace",
        KEY,
        |s| s,
        |c| {
            // A cascade's FlexFactor step declines this amount at once (CIT); its rerun (MIT) is
            // then recovered like any approved test card.
            c.rules.rules.insert(
                0,
                Rule {
                    min_amount: Some(CASCADE_DECLINED_AMOUNT),
                    max_amount: Some(CASCADE_DECLINED_AMOUNT),
                    ..Rule::new(Outcome::Declined)
                        .named("cascade declines")
                        .mode(Mode::Cit)
                },
            );
            // A rerun of this amount is recovered, then charged back a day later (K1).
            c.rules.rules.insert(
                0,
                Rule {
                    min_amount: Some(CHARGED_BACK_AMOUNT),
                    max_amount: Some(CHARGED_BACK_AMOUNT),
                    ..Rule::new(Outcome::Approved)
                        .named("recovered, then charged back")
                        .mode(Mode::Mit)
                        .chargeback_after_secs(86_400)
                },
            );
        },
    )
    .await
}

fn sale(id: &str, subscription: Option<&str>, product: &str, amount: i64, attempt: Value) -> Value {
    json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare",
        "subscription_id": subscription, "ip_address": "203.0.113.7",
        "amount_minor": amount, "currency": "USD",
        "customer": {"first_name": "Cure", "last_name": "Tester", "email": "cure@example.com",
                     "billing_address": {"line1": "456 My Street", "city": "Ottawa", "zip": "K1C2N6", "country": "CA"}},
        "card": {"number": APPROVED_CARD, "cvv": "123", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
        "items": [{"product_id": product, "quantity": 1, "price_minor": amount}],
        "attempt": attempt
    })
}

fn approved(gateway: &str) -> Value {
    json!({"gateway_id": gateway, "result": "approved"})
}

fn soft_declined(gateway: &str) -> Value {
    json!({"gateway_id": gateway, "result": "declined", "response_code": "91",
           "response_message": "Issuer unavailable", "decline_type": "soft"})
}

/// Runs the binary with `args` (off the async threads, so that the service keeps serving).
async fn salvage(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_salvage"))
            .args(&args)
            .output()
            .expect("the salvage binary runs")
    })
    .await
    .expect("the binary's thread")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(history: &Value) -> Vec<String> {
    history
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| {
                    e.get("type")
                        .or(Some(e))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// What both sides show of an order.
fn order_view_of_service(o: &Value) -> Value {
    let s = &o["salvage"];
    json!({
        "status": o["status"],
        "order_type": o["order_type"],
        "paid_by": o["paid_by_gateway_id"],
        "salvage": if s.is_null() { Value::Null } else { json!({
            "route": s["route"], "attempt": s["attempt"], "state": s["state"],
            "failure": s["failure_reason"], "flexfactor_order_id": s["flexfactor_order_id"],
        })},
        "history": names(&o["history"]),
    })
}

fn order_view_of_replay(o: &Value) -> Value {
    let state = &o["state"];
    let s = &state["salvage"];
    json!({
        "status": o["status"],
        "order_type": o["order_type"],
        "paid_by": state["paid_by"],
        "salvage": if s.is_null() { Value::Null } else { json!({
            "route": s["route"]["route"], "attempt": s["attempt"], "state": s["state"],
            "failure": s["failure"], "flexfactor_order_id": s["flexfactor_order_id"],
        })},
        "history": names(&o["history"]),
    })
}

/// What both sides show of a subscription.
fn subscription_view_of_service(s: &Value) -> Value {
    let r = &s["recycle"];
    json!({
        "status": s["status"],
        "cycle": s["cycle"],
        "billing_gateway": s["billing_gateway_id"],
        "credential": s["payment_credential"],
        "next_bill_at": time(&s["next_bill_at"]),
        "recycle": if r.is_null() { Value::Null } else { json!({
            "order_id": r["order_id"], "next_attempt": r["attempt"],
            "due_at": time(&r["next_attempt_at"]), "flexfactor_slot": r["flexfactor_slot"],
        })},
        "history": names(&s["history"]),
    })
}

fn subscription_view_of_replay(s: &Value) -> Value {
    let state = &s["state"];
    let r = &state["recycle"];
    json!({
        "status": s["status"],
        "cycle": s["cycle"],
        "billing_gateway": state["billing_gateway"],
        "credential": state["credential"],
        "next_bill_at": time(&state["next_bill_at"]),
        "recycle": if r.is_null() { Value::Null } else { json!({
            "order_id": r["order_id"], "next_attempt": r["next_attempt"],
            "due_at": time(&r["due_at"]), "flexfactor_slot": r["handed_over"],
        })},
        "history": names(&s["history"]),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exported_feed_replays_to_the_states_the_service_shows() {
    let w = world().await;

    // An approved new sale with a monthly subscription.
    let (s, out) = w
        .post(
            "/v1/orders",
            &sale(
                "ok-1",
                Some("sub-ok"),
                "serum-monthly",
                3999,
                approved("nmi-main"),
            ),
        )
        .await;
    assert_eq!(
        (s, out["status"].as_str()),
        (201, Some("complete")),
        "{out}"
    );

    // A soft decline on nmi-main cascades: nmi-backup declines (the sandbox processor declines
    // amounts ending in 01), then FlexFactor declines at once (C5).
    let (s, out) = w
        .post(
            "/v1/orders",
            &sale(
                "cas-1",
                Some("sub-cas"),
                "serum-monthly",
                CASCADE_DECLINED_AMOUNT,
                soft_declined("nmi-main"),
            ),
        )
        .await;
    assert_eq!(
        (s, out["status"].as_str()),
        (201, Some("declined")),
        "{out}"
    );
    let cas = names(&out["history"]);
    assert!(cas.contains(&"CascadeStepDeclined".to_string()), "{cas:?}");
    assert!(cas.contains(&"SalvageFailed".to_string()), "{cas:?}");
    let (s, out) = w
        .post(
            "/v1/orders/cas-1/rerun",
            &json!({"gateway_id": "flexfactor"}),
        )
        .await;
    assert_eq!(
        (s, out["status"].as_str()),
        (200, Some("salvage_pending")),
        "{out}"
    );

    // A sale declined on stripe-eu (no cascade there), rerun.
    let (s, out) = w
        .post(
            "/v1/orders",
            &sale(
                "rr-1",
                None,
                "cleanser",
                CHARGED_BACK_AMOUNT,
                soft_declined("stripe-eu"),
            ),
        )
        .await;
    assert_eq!(
        (s, out["status"].as_str()),
        (201, Some("declined")),
        "{out}"
    );
    let (s, _) = w
        .post(
            "/v1/orders/rr-1/rerun",
            &json!({"gateway_id": "flexfactor"}),
        )
        .await;
    assert_eq!(s, 200);

    // A subscription whose first rebill the CRM reports soft-declined: recycle billing (Y1).
    let (s, out) = w
        .post(
            "/v1/orders",
            &sale(
                "rb-1",
                Some("sub-rb"),
                "serum-monthly",
                4001,
                approved("nmi-main"),
            ),
        )
        .await;
    assert_eq!(s, 201, "{out}");
    w.settle().await;
    let (s, sub) = w
        .post(
            "/v1/subscriptions/sub-rb/rebills",
            &json!({"attempt": soft_declined("nmi-main")}),
        )
        .await;
    assert_eq!(
        (s, sub["status"].as_str()),
        (200, Some("recycle_billing")),
        "{sub}"
    );

    // FlexFactor completes both reruns (webhooks); re-attempts 1-3 decline on nmi-main, the
    // fourth goes to FlexFactor (slot 4-6), which recovers it; the chargeback arrives.
    w.advance(Duration::hours(2)).await;
    for days in [1, 3, 3, 5] {
        w.advance(Duration::days(days) + Duration::minutes(1)).await;
    }
    w.advance(Duration::hours(2)).await;
    // A month after the sales: the scheduler bills sub-ok (approved) and sub-cas (3901:
    // soft-declined into recycle billing).
    w.advance(Duration::days(18)).await;

    // The scenarios happened as intended (otherwise the comparison below proves little).
    let status = |v: &Value| v["status"].as_str().unwrap_or("-").to_string();
    assert_eq!(status(&w.get_ok("/v1/orders/cas-1").await), "complete");
    assert_eq!(status(&w.get_ok("/v1/orders/rr-1").await), "chargeback");
    assert_eq!(status(&w.get_ok("/v1/orders/sub-rb-c2").await), "complete");
    let sub_rb = w.get_ok("/v1/subscriptions/sub-rb").await;
    assert_eq!(
        (status(&sub_rb), &sub_rb["cycle"]),
        ("active".into(), &json!(2)),
        "{sub_rb}"
    );
    assert!(names(&sub_rb["history"]).contains(&"RecycleHandedToFlexFactor".to_string()));
    let sub_ok = w.get_ok("/v1/subscriptions/sub-ok").await;
    assert_eq!(
        (status(&sub_ok), &sub_ok["cycle"]),
        ("active".into(), &json!(2)),
        "{sub_ok}"
    );
    let sub_cas = w.get_ok("/v1/subscriptions/sub-cas").await;
    assert_eq!(status(&sub_cas), "recycle_billing", "{sub_cas}");
    assert_eq!(sub_cas["payment_credential"], "card_number_without_cvv");

    // Export the feed with the binary, in two-event pages, then replay it.
    let trace = w.dir.join("trace.jsonl");
    let out = salvage(vec![
        "export-trace".into(),
        "--url".into(),
        w.svc.url(),
        "--api-key".into(),
        KEY.into(),
        "--page-size".into(),
        "2".into(),
        "--out".into(),
        trace.display().to_string(),
    ])
    .await;
    ok(&out, "export-trace");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("exported"), "{summary}");
    let written = std::fs::read_to_string(&trace).expect("the trace is written");
    let kinds: BTreeSet<String> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a JSON line")["kind"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    for kind in [
        "place_order",
        "cascade_answer",
        "flexfactor_answer",
        "rerun",
        "flexfactor_result",
        "recycle_answer",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        !written.contains(APPROVED_CARD),
        "F2: no card number in the trace"
    );

    // A wrong key is refused by the service, and said so.
    let out = salvage(vec![
        "export-trace".into(),
        "--url".into(),
        w.svc.url(),
        "--api-key".into(),
        "not-the-key".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");
    // Nothing after the feed's end: an empty trace.
    let out = salvage(vec![
        "export-trace".into(),
        "--url".into(),
        w.svc.url(),
        "--api-key".into(),
        KEY.into(),
        "--after".into(),
        "1000000".into(),
    ])
    .await;
    ok(&out, "export-trace --after");
    assert!(out.stdout.is_empty());

    // The same export from a saved feed (the pages as GET /v1/events serves them).
    let mut saved = String::new();
    let mut after = 0;
    loop {
        let page = w.get_ok(&format!("/v1/events?after={after}&limit=7")).await;
        if page["events"].as_array().is_none_or(|e| e.is_empty()) {
            break;
        }
        after = page["next_after"].as_i64().expect("next_after");
        saved.push_str(&page.to_string());
        saved.push('\n');
    }
    let feed = w.dir.join("feed.json");
    std::fs::write(&feed, saved).expect("feed saved");
    let out = salvage(vec![
        "export-trace".into(),
        "--feed".into(),
        feed.display().to_string(),
    ])
    .await;
    ok(&out, "export-trace --feed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        written,
        "the same trace"
    );

    let states = w.dir.join("states.json");
    let out = salvage(vec![
        "replay".into(),
        trace.display().to_string(),
        "--setup".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/salvage.toml").into(),
        "--out".into(),
        states.display().to_string(),
    ])
    .await;
    ok(&out, "replay");
    let replayed: Value =
        serde_json::from_str(&std::fs::read_to_string(&states).expect("states written"))
            .expect("states JSON");
    assert_eq!(replayed["refused"], json!([]), "no refused line");

    let orders = replayed["orders"].as_object().expect("orders");
    let subscriptions = replayed["subscriptions"]
        .as_object()
        .expect("subscriptions");
    let order_ids: BTreeSet<&str> = orders.keys().map(String::as_str).collect();
    let expected_orders = BTreeSet::from([
        "ok-1",
        "cas-1",
        "rr-1",
        "rb-1",
        "sub-rb-c2",
        "sub-ok-c2",
        "sub-cas-c2",
    ]);
    assert_eq!(order_ids, expected_orders);
    let subscription_ids: BTreeSet<&str> = subscriptions.keys().map(String::as_str).collect();
    assert_eq!(
        subscription_ids,
        BTreeSet::from(["sub-ok", "sub-cas", "sub-rb"])
    );

    for (id, replay) in orders {
        let service = w.get_ok(&format!("/v1/orders/{id}")).await;
        assert_eq!(
            order_view_of_replay(replay),
            order_view_of_service(&service),
            "order {id}: replayed (left) vs the service (right)"
        );
        // A salvage's expiry is counted from its submission. A recycle hand-over is submitted
        // by a timer, which the replay runs at its due time and the service's scheduler a
        // little later (here: the minute the clock overshoots each re-attempt); every other
        // submission is an input and expires at the same instant.
        let replayed = time(&replay["state"]["salvage"]["mode"]["expires_at"]);
        let served = time(&service["salvage"]["expires_at"]);
        if service["salvage"]["route"] == "recycle" {
            let lag = served.zip(replayed).map(|(s, r)| s - r);
            assert!(
                lag.is_some_and(|l| l >= Duration::zero() && l <= Duration::minutes(1)),
                "order {id}: expiry {served:?} served, {replayed:?} replayed"
            );
        } else {
            assert_eq!(replayed, served, "order {id}: the salvage's expiry");
        }
    }
    for (id, replay) in subscriptions {
        let service = w.get_ok(&format!("/v1/subscriptions/{id}")).await;
        assert_eq!(
            subscription_view_of_replay(replay),
            subscription_view_of_service(&service),
            "subscription {id}: replayed (left) vs the service (right)"
        );
    }
    // Spot checks of the values compared above.
    assert_eq!(orders["rr-1"]["status"], "chargeback");
    assert_eq!(subscriptions["sub-rb"]["cycle"], 2);
    assert_eq!(
        text(&subscriptions["sub-cas"]["status"]).as_deref(),
        Some("recycle_billing")
    );

    w.stop().await;
}

#[test]
fn export_trace_names_the_event_it_cannot_map() {
    let dir = std::env::temp_dir().join(format!("salvage-export-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let feed = dir.join("feed.jsonl");
    std::fs::write(
        &feed,
        r#"{"position":1,"aggregate_type":"order","aggregate_id":"o-1","sequence":1,"event_type":"OrderTeleported","event_version":"1","payload":{"type":"OrderTeleported","at":"2026-03-02T10:00:00Z"}}"#,
    )
    .expect("feed written");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_salvage"))
        .args(["export-trace", "--feed"])
        .arg(&feed)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("feed position 1: OrderTeleported of order o-1"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_salvage"))
        .args([
            "export-trace",
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/v1/events"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
