//! The fake FlexFactor's admin endpoints, scenario files, sandbox defaults and real-clock mode.

mod fake_flexfactor_support;

use std::time::Duration as StdDuration;

use chrono::Duration;
use fake_flexfactor_support::*;
use salvage_domain::ports::{EvaluateAnswer, FlexFactor};
use salvage_sim::fake_flexfactor::{
    sandbox, Endpoint, FakeConfig, FakeError, FakeFlexFactor, FakeScenario, Fault, FaultTarget,
    Outcome,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

async fn admin(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{}{path}", h.fake.admin_url()));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_advances_the_clock_and_delivers_what_became_due() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4000002760003184", None).await;
    client.evaluate(&mit("mit-admin", card)).await.unwrap();
    let (status, body) = admin(
        &h,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"hours": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"]["acknowledged"], 1);
    assert_eq!(h.receiver.events(), vec!["order.completed"]);
    let (_, state) = admin(&h, reqwest::Method::GET, "/state", None).await;
    assert_eq!(state["clock"], "driven");
    assert_eq!(state["orders"][0]["status"], "COMPLETED");
    assert_eq!(state["orders"][0]["external_order_id"], "mit-admin");
    assert_eq!(state["calls"]["evaluate"], 1);
    assert_eq!(state["delivery_attempts"][0]["status"], 200);
    let (status, _) = admin(
        &h,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"seconds": -5})),
    )
    .await;
    assert_eq!(status, 400);
    let (_, calls) = admin(&h, reqwest::Method::GET, "/calls", None).await;
    assert_eq!(calls["evaluate_bodies"][0]["orderId"], "mit-admin");
}

#[tokio::test]
async fn admin_sets_lists_and_clears_faults() {
    let h = Harness::new().await;
    let (status, body) = admin(
        &h,
        reqwest::Method::PUT,
        "/faults",
        Some(json!([{"endpoint": "order", "kind": "server_error", "status": 502, "times": 1}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = h.raw_token().await;
    let get = || {
        reqwest::Client::new()
            .get(format!("{}/orders/x", h.fake.base_url()))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.unwrap().status().as_u16(), 502);
    assert_eq!(get().await.unwrap().status().as_u16(), 404);
    let (_, state) = admin(&h, reqwest::Method::GET, "/state", None).await;
    assert_eq!(state["faults"][0]["fired"], 1);
    let (status, _) = admin(
        &h,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"endpoint": "webhooks", "kind": "bad_signature"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h.fake.state().faults.len(), 2);
    // A webhook fault aimed at an endpoint is refused.
    let (status, body) = admin(
        &h,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"endpoint": "evaluate", "kind": "duplicate"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("webhook"),
        "{body}"
    );
    let (status, body) = admin(&h, reqwest::Method::DELETE, "/faults", None).await;
    assert_eq!((status, body), (200, json!([])));
}

#[tokio::test]
async fn admin_webhook_url_and_deliver() {
    let h = Harness::new().await;
    h.fake.set_webhook_url(None).unwrap();
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    client.evaluate(&cit("cit-outbox", card)).await.unwrap();
    let (_, report) = admin(&h, reqwest::Method::POST, "/deliver", None).await;
    assert_eq!(
        (report["sent"].clone(), report["pending"].clone()),
        (json!(0), json!(1))
    );
    let (status, body) = admin(
        &h,
        reqwest::Method::PUT,
        "/webhook-url",
        Some(json!({"url": h.receiver.url})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, report) = admin(&h, reqwest::Method::POST, "/deliver", None).await;
    assert_eq!(report["acknowledged"], 1);
    assert_eq!(h.receiver.events(), vec!["order.completed"]);
    let (status, _) = admin(
        &h,
        reqwest::Method::PUT,
        "/webhook-url",
        Some(json!({"url": "ftp://nowhere"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn admin_replaces_rules_and_outcome_endpoint_reads_them() {
    let h = Harness::new().await;
    let (status, body) = admin(
        &h,
        reqwest::Method::PUT,
        "/rules",
        Some(
            json!({"rules": [{"name": "all approved", "outcome": "approved"}],
                    "default_cit": "declined", "default_mit": "expired", "mit_delay_secs": 60}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client = h.client();
    let card = token_for(&client, "4242424242424242", None).await;
    let answer = client.evaluate(&cit("cit-any", card)).await.unwrap();
    let id = answer.flexfactor_order_id().cloned().unwrap();
    let (status, outcome) = h
        .raw_post("/outcome", &json!({"orderSessionKey": id.as_str()}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(outcome["status"], "APPROVED");
    let (_, unknown) = h
        .raw_post("/outcome", &json!({"orderSessionKey": "x"}))
        .await;
    assert_eq!(unknown["status"], "NOTFOUND");
}

const SCENARIO: &str = r#"
seed = 99
token_lifetime_secs = 300

[defaults]
cit = "challenge"
mit_delay_secs = 120

[[rules]]
name = "do not honor, 40% rescued"
response_codes = ["05"]
outcome = "approved"
probability = 0.4
delay_secs = 3600
delay_max_secs = 7200

[[rules]]
name = "premium BIN"
bin = "545454"
mode = "cit"
outcome = "capture_required"

[[faults]]
endpoint = "evaluate"
kind = "server_error"
status = 502
times = 2

[[faults]]
endpoint = "webhooks"
kind = "late"
delay_secs = 30

[credentials]
app_key = "scenario-key"

[webhooks]
first_retry_secs = 5
max_attempts = 3
"#;

#[tokio::test]
async fn scenario_file_sets_rules_faults_credentials_and_settings() {
    let scenario = FakeScenario::from_toml_str(SCENARIO, "test.toml").unwrap();
    let config = FakeConfig::driven(start()).with_scenario(scenario).unwrap();
    assert_eq!(config.seed, 99);
    assert_eq!(config.rules.default_cit, Outcome::Challenge);
    assert_eq!(config.rules.mit_delay_secs, 120);
    // The scenario's rules first, then the sandbox test cards.
    assert_eq!(
        config.rules.rules[0].name.as_deref(),
        Some("do not honor, 40% rescued")
    );
    assert!(config.rules.rules.len() > 2);
    assert_eq!(config.faults.len(), 2);
    assert_eq!(config.faults[1].endpoint, FaultTarget::Webhooks);
    assert_eq!(config.faults[1].fault, Fault::Late { delay_secs: 30 });
    assert_eq!(config.credentials.app_key.expose_secret(), "scenario-key");
    assert_eq!(
        config.credentials.app_secret.expose_secret(),
        sandbox::APP_SECRET
    );
    assert_eq!(config.redelivery.first_retry, Duration::seconds(5));
    assert_eq!(config.token_lifetime, Duration::seconds(300));
    assert!(!format!("{config:?}").contains("scenario-key"));

    let fake = FakeFlexFactor::start(config).await.unwrap();
    assert_eq!(fake.state().faults.len(), 2);
    fake.shutdown().await;

    // Errors name the file and the entry.
    let e = FakeScenario::from_toml_str(
        "[[rules]]\noutcome = \"approved\"\nprobability = 2.0\nname = \"greedy\"",
        "bad.toml",
    )
    .unwrap_err();
    assert!(matches!(e, FakeError::Scenario { .. }));
    let text = e.to_string();
    assert!(
        text.contains("bad.toml") && text.contains("greedy"),
        "{text}"
    );
    let e = FakeScenario::from_toml_str("colour = \"red\"", "typo.toml").unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    let e = FakeScenario::from_toml_str(
        "[[faults]]\nendpoint = \"webhooks\"\nkind = \"expired_token\"",
        "f.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("faults[1]"), "{e}");
}

/// The sandbox defaults accept the sample setup's credentials (examples/salvage.toml).
#[test]
fn sandbox_defaults_match_the_sample_setup() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/salvage.toml");
    let setup: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ff = setup["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"].as_str() == Some("flexfactor"))
        .unwrap();
    let c = FakeConfig::sandbox_defaults().credentials;
    for (name, value) in [
        ("app_key", &c.app_key),
        ("app_secret", &c.app_secret),
        ("mid", &c.mid),
        ("site_id", &c.site_id),
        ("environment_key", &c.environment_key),
        ("hmac_signing_key", &c.hmac_signing_key),
    ] {
        assert_eq!(
            ff["credentials"][name].as_str(),
            Some(value.expose_secret()),
            "{name}"
        );
    }
}

/// A real clock: deliveries go out in the background; `advance` still moves time (an offset).
#[tokio::test]
async fn real_clock_delivers_in_the_background() {
    let mut config = FakeConfig::sandbox_defaults();
    config.auto_deliver = Some(StdDuration::from_millis(10));
    let fake = FakeFlexFactor::start(config).await.unwrap();
    assert!(!fake.is_clock_driven());
    let receiver = Receiver::start(sandbox::HMAC_SIGNING_KEY, fake.clock()).await;
    fake.set_webhook_url(Some(&receiver.url)).unwrap();
    let h = Harness { fake, receiver };
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let answer = client.evaluate(&cit("cit-real", card)).await.unwrap();
    assert!(matches!(answer, EvaluateAnswer::Approved { .. }));
    let mut waited = 0;
    while h.receiver.events().is_empty() && waited < 200 {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(h.receiver.events(), vec!["order.completed"]);
    let before = h.fake.now();
    h.fake.advance(Duration::hours(1));
    assert!(h.fake.now() - before >= Duration::hours(1));
    assert_eq!(h.fake.calls().count(Endpoint::Evaluate), 1);
    h.fake.shutdown().await;
}
