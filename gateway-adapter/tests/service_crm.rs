//! The service's calls to the CRM: signed notifications with stable event ids, retried with
//! back-off until acknowledged; the signed charge hook with idempotency keys; graceful shutdown.

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Duration;
use salvage_domain::ManualClock;
use salvage_gateway::crm::signing;
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, ServeOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use support::*;

const KEY: &str = "test-api-key-0123456789";

#[derive(Default)]
struct Crm {
    notifications: Mutex<Vec<Value>>,
    charges: Mutex<Vec<Value>>,
    /// Answer 500 to this many notifications first.
    fail_first: Mutex<usize>,
}

async fn crm_endpoint(crm: Arc<Crm>) -> String {
    let app = Router::new()
        .route(
            "/notify",
            post(|State(crm): State<Arc<Crm>>, headers: HeaderMap, body: String| async move {
                let ts: i64 = headers[signing::TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
                let sig = headers[signing::SIGNATURE_HEADER].to_str().unwrap();
                assert!(signing::verify(&SecretString::from("notify-secret"), ts, body.as_bytes(), sig), "signed");
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(headers["x-salvage-event-id"].to_str().unwrap(), v["event_id"].as_str().unwrap());
                crm.notifications.lock().unwrap().push(v);
                let mut fail = crm.fail_first.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                StatusCode::OK
            }),
        )
        .route(
            "/charge",
            post(|State(crm): State<Arc<Crm>>, headers: HeaderMap, body: String| async move {
                let ts: i64 = headers[signing::TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
                let sig = headers[signing::SIGNATURE_HEADER].to_str().unwrap();
                assert!(signing::verify(&SecretString::from("hook-secret"), ts, body.as_bytes(), sig));
                let v: Value = serde_json::from_str(&body).unwrap();
                crm.charges.lock().unwrap().push(v.clone());
                Json(json!({"result": "approved", "transaction_id": format!("tx-{}", v["idempotency_key"].as_str().unwrap())}))
            }),
        )
        .with_state(crm);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn order(id: &str, gateway: &str, result: &str) -> Value {
    json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare", "ip_address": "203.0.113.7",
        "amount_minor": 1999, "currency": "USD",
        "card": {"token": "tok_test", "exp_month": 9, "exp_year": 2030},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
        "attempt": {"gateway_id": gateway, "result": result, "response_code": "91",
                    "response_message": "Issuer unavailable", "decline_type": "soft"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_signed_deduplicable_and_retried_and_charges_go_through_the_hook() {
    let place = Place::new_sqlite();
    let crm = Arc::new(Crm::default());
    *crm.fail_first.lock().unwrap() = 1;
    let base = crm_endpoint(crm.clone()).await;
    let Place::Sqlite(store_url) = &place else {
        unreachable!()
    };
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{store_url}\"\napi_keys = [\"{KEY}\"]\n\
         [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [charge_hook]\nurl = \"{base}/charge\"\nsecret = \"hook-secret\"\n\
         [notifications]\nurl = \"{base}/notify\"\nsecret = \"notify-secret\"\n"
    );
    let config = ServiceConfig::from_str(&text, std::path::Path::new("t.toml"), &|_| None).unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let running = start(config, ServeOptions::new(clock.clone()))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    // nmi-main declines; its cascade's first step, nmi-backup, is charged through the hook.
    let r = http
        .post(format!("{}/v1/orders", running.url()))
        .bearer_auth(KEY)
        .json(&order("o-1", "nmi-main", "declined"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["status"], "complete", "{out}");
    assert_eq!(out["paid_by_gateway_id"], "nmi-backup");
    {
        let charges = crm.charges.lock().unwrap();
        assert_eq!(charges.len(), 1);
        assert_eq!(charges[0]["gateway"], "nmi-backup");
        assert_eq!(charges[0]["amount"]["amount_minor"], 1999);
        assert_eq!(charges[0]["purpose"]["kind"], "cascade");
        assert!(charges[0]["idempotency_key"].as_str().unwrap().len() >= 32);
    }
    // The completion notice goes out after the answer: refused once (500), then retried after
    // its back-off.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crm.notifications.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(crm.notifications.lock().unwrap().len(), 1);
    clock.advance(Duration::seconds(31));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crm.notifications.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        running.state.drive().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let notes = crm.notifications.lock().unwrap().clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(
        notes[0]["event_id"], notes[1]["event_id"],
        "the same stable id on the retry"
    );
    assert_eq!(notes[0]["kind"], "order_completed");
    assert_eq!(notes[0]["order_id"], "o-1");
    // Nothing more is sent once acknowledged.
    clock.advance(Duration::hours(2));
    running.state.drive().await.unwrap();
    assert_eq!(crm.notifications.lock().unwrap().len(), 2);
    // Graceful shutdown, then the port is closed.
    let url = running.url();
    running.shutdown().await.unwrap();
    assert!(http.get(format!("{url}/healthz")).send().await.is_err());
    place.cleanup().await;
}
