//! Contract suite: the real `salvage_gateway::flexfactor::FlexFactorClient` against the fake
//! FlexFactor (in-process on 127.0.0.1:0, driven clock), and the fake's webhooks through the
//! adapter's `WebhookVerifier`.

mod fake_flexfactor_support;

use std::sync::Arc;

use chrono::Duration;
use fake_flexfactor_support::*;
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::money::{Currency, Money};
use salvage_domain::ports::{
    EvaluateAnswer, FlexFactor, FlexFactorError, FlexFactorOrderStatus, RefundAnswer,
};
use salvage_domain::ManualClock;
use salvage_gateway::flexfactor::{
    FlexFactorClient, FlexFactorClientError, FlexFactorResult, ValidationErrors,
};
use salvage_sim::fake_flexfactor::{Endpoint, Mode, Outcome, Rule, RuleSet};
use secrecy::SecretString;
use serde_json::{json, Value};

fn ff_id(answer: &EvaluateAnswer) -> FlexFactorOrderId {
    answer
        .flexfactor_order_id()
        .cloned()
        .unwrap_or_else(|| panic!("no FlexFactor id in {answer:?}"))
}

fn usd(cents: i64) -> Money {
    Money::new(cents, Currency::USD).unwrap()
}

/// F1: one token reused; a new one once the fake's clock passes `expires`; and a client whose
/// own clock lags gets the fake's 401, fetches once and repeats.
#[tokio::test]
async fn f1_token_reused_then_refreshed_after_expiry() {
    let h = Harness::new().await;
    let client = h.client();
    for _ in 0..3 {
        token_for(&client, "4111111111111111", Some("123")).await;
    }
    assert_eq!(client.token_fetch_count(), 1);
    assert_eq!(h.fake.calls().count(Endpoint::Token), 1);

    h.fake.advance(Duration::minutes(11));
    token_for(&client, "4111111111111111", Some("123")).await;
    assert_eq!(client.token_fetch_count(), 2);

    // A client on its own (stuck) clock keeps its token past the fake's expiry: 401, one
    // refresh, the call repeated.
    let lagging = FlexFactorClient::new(
        h.config(),
        h.fake.credentials(),
        Arc::new(ManualClock::new(h.fake.now())),
    )
    .unwrap();
    // (`/tokenize` also takes the MID and EnvironmentKey in its query, so use another call.)
    let unknown = FlexFactorOrderId::new("no-such-order");
    let first = lagging.order_status(&unknown).await;
    assert_eq!(first, Err(FlexFactorError::NotFound));
    h.fake.advance(Duration::minutes(10));
    assert_eq!(lagging.order_status(&unknown).await, first);
    assert_eq!(lagging.token_fetch_count(), 2);
    assert_eq!(h.fake.calls().count(Endpoint::Token), 4);
    assert_eq!(h.fake.calls().count(Endpoint::Order), 3);
}

/// F1: unknown credentials get no token; an unknown bearer token gets 401.
#[tokio::test]
async fn f1_unknown_credentials_and_tokens_refused() {
    let h = Harness::new().await;
    let mut creds = h.fake.credentials();
    creds.set("app_secret", SecretString::from("wrong"));
    let client = FlexFactorClient::new(h.config(), creds, h.fake.clock()).unwrap();
    let r = client.order_status(&FlexFactorOrderId::new("x")).await;
    assert_eq!(r, Err(FlexFactorError::Unauthorized));

    let r = reqwest::Client::new()
        .get(format!("{}/orders/x", h.fake.base_url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// F2: the card goes in, a token with BIN and last four comes back.
#[tokio::test]
async fn f2_tokenize() {
    let h = Harness::new().await;
    let token = token_for(&h.client(), "4000002760003184", Some("123")).await;
    assert_eq!(token.bin, "400000");
    assert_eq!(token.last4, "3184");
    assert_eq!(token.token.len(), 36);
    assert_eq!(token.exp_month, 9);
}

/// CIT (cascade): answered at once by card, like the sandbox's test cards.
#[tokio::test]
async fn c5_cit_approved_declined_and_challenged_by_card() {
    let h = Harness::new().await;
    let client = h.client();
    let ok = token_for(&client, "4111111111111111", Some("123")).await;
    let answer = client.evaluate(&cit("cit-ok", ok)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Approved { .. }),
        "{answer:?}"
    );
    let id = ff_id(&answer);
    assert!(matches!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::Completed {
            confirmation_id: Some(_)
        }
    ));

    let bad = token_for(&client, "4000300011112220", Some("123")).await;
    let answer = client.evaluate(&cit("cit-bad", bad)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Declined { .. }),
        "{answer:?}"
    );

    let challenged = token_for(&client, "4111111111111111", Some("999")).await;
    let answer = client.evaluate(&cit("cit-ch", challenged)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Challenge { .. }),
        "{answer:?}"
    );

    // The approval is also announced by a signed order.completed.
    h.fake.deliver_due().await;
    let verified = h.receiver.verified();
    assert_eq!(h.receiver.events(), vec!["order.completed"]);
    assert_eq!(verified[0].external_order_id, Some(OrderId::new("cit-ok")));
    assert_eq!(verified[0].flexfactor_order_id, Some(id));
}

/// Managed MIT: SUBMITTED now, the result later as a signed webhook (and in GET /orders/{id}).
#[tokio::test]
async fn mit_submitted_then_completed_by_signed_webhook() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4000002760003184", None).await;
    let answer = client.evaluate(&mit("mit-1", card)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Submitted { .. }),
        "{answer:?}"
    );
    let id = ff_id(&answer);
    assert_eq!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::Pending
    );
    let report = h.fake.deliver_due().await;
    assert_eq!(report.sent, 0);

    let report = h.fake.advance_and_deliver(Duration::hours(2)).await;
    assert_eq!((report.sent, report.acknowledged), (1, 1));
    let received = h.receiver.received();
    assert_eq!(received.len(), 1);
    let outcome = received[0]
        .verdict
        .clone()
        .expect("the adapter's verifier accepts it");
    assert_eq!(outcome.event, "order.completed");
    assert!(matches!(
        outcome.result,
        FlexFactorResult::Completed {
            confirmation_id: Some(_)
        }
    ));
    assert_eq!(outcome.external_order_id, Some(OrderId::new("mit-1")));
    assert_eq!(outcome.flexfactor_order_id, Some(id.clone()));
    assert!(!outcome.is_resent && outcome.is_test_mode);
    // PascalCase keys, in the order of FlexFactor's published sample.
    let keys: Vec<&str> = received[0]
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "Event",
        "TimeStamp",
        "EventData",
        "ExternalOrderId",
        "OrderId",
        "ConfirmationId",
        "IsTestMode",
        "IsResent",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);

    let FlexFactorOrderStatus::Completed { confirmation_id } =
        client.order_status(&id).await.unwrap()
    else {
        panic!("not completed")
    };
    assert_eq!(confirmation_id, outcome.confirmation_id);
}

/// Managed MIT that is not rescued: order.expired at expiryDateUtc.
#[tokio::test]
async fn mit_not_rescued_expires_at_expiry() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4242424242424242", None).await;
    let id = ff_id(&client.evaluate(&mit("mit-x", card)).await.unwrap());
    h.fake.advance_and_deliver(Duration::days(20)).await;
    assert!(h.receiver.events().is_empty());
    h.fake.advance_and_deliver(Duration::days(1)).await;
    assert_eq!(h.receiver.events(), vec!["order.expired"]);
    assert_eq!(h.receiver.verified()[0].result, FlexFactorResult::Expired);
    let raw = h.raw_get_order(&id).await;
    assert_eq!(
        (raw["status"].clone(), raw["statusName"].clone()),
        (json!(2), json!("CANCELLED"))
    );
    assert_eq!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::Cancelled
    );
}

trait RawOrder {
    async fn raw_get_order(&self, id: &FlexFactorOrderId) -> Value;
}

impl RawOrder for Harness {
    async fn raw_get_order(&self, id: &FlexFactorOrderId) -> Value {
        let token = self.raw_token().await;
        reqwest::Client::new()
            .get(format!("{}/orders/{id}", self.fake.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// O8: integer status and statusName through the life of an order.
#[tokio::test]
async fn o8_order_status_integer_and_name() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let id = ff_id(&client.evaluate(&mit("mit-o8", card)).await.unwrap());
    let raw = h.raw_get_order(&id).await;
    assert_eq!(raw["status"], 4);
    assert_eq!(raw["statusName"], "PROCESSING");
    assert_eq!(raw["id"], json!(id.as_str()));
    h.fake.advance(Duration::hours(1));
    let raw = h.raw_get_order(&id).await;
    assert_eq!(
        (raw["status"].clone(), raw["statusName"].clone()),
        (json!(7), json!("COMPLETED"))
    );
    assert!(
        client.order_status(&FlexFactorOrderId::new("nope")).await
            == Err(FlexFactorError::NotFound)
    );
}

/// Cancel by FlexFactor id and external-cancel by the merchant's order id.
#[tokio::test]
async fn c5_cancel_and_external_cancel() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let a = ff_id(&client.evaluate(&mit("mit-a", card.clone())).await.unwrap());
    let b = ff_id(&client.evaluate(&mit("mit-b", card.clone())).await.unwrap());
    client.cancel(&a).await.unwrap();
    client
        .external_cancel(&OrderId::new("mit-b"))
        .await
        .unwrap();
    // Cancelling again is harmless; an unknown order is not found.
    client.cancel(&a).await.unwrap();
    assert_eq!(
        client.external_cancel(&OrderId::new("never-sent")).await,
        Err(FlexFactorError::NotFound)
    );
    for id in [&a, &b] {
        assert_eq!(
            client.order_status(id).await.unwrap(),
            FlexFactorOrderStatus::Cancelled
        );
    }
    // Nothing completes later.
    h.fake.advance_and_deliver(Duration::days(30)).await;
    assert_eq!(
        h.receiver.events(),
        vec!["order.cancelled", "order.cancelled"]
    );
    // A completed order cannot be cancelled (refund it instead).
    let done = ff_id(&client.evaluate(&cit("cit-done", card)).await.unwrap());
    assert!(client.cancel(&done).await.is_err());
}

/// F4: refunds in decimal dollars, read exactly; beyond what was paid (or for an unknown or
/// unpaid order) a failure shaped like refund-response-failed.json.
#[tokio::test]
async fn f4_refund_in_decimal_dollars() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let id = ff_id(
        &client
            .evaluate(&cit("cit-refund", card.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        client.refund(&id, usd(1000)).await.unwrap(),
        RefundAnswer::Refunded
    );
    assert_eq!(h.fake.order(id.as_str()).unwrap().refunded_cents, 1000);
    assert_eq!(
        client.refund(&id, usd(999)).await.unwrap(),
        RefundAnswer::Refunded
    );
    let order = h.fake.order(id.as_str()).unwrap();
    assert_eq!(order.refunded_cents, 1999);
    assert_eq!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::Refunded
    );
    let RefundAnswer::Failed { code, message } = client.refund(&id, usd(1)).await.unwrap() else {
        panic!("refund beyond the paid amount succeeded")
    };
    assert_eq!(code, "2001");
    assert_eq!(
        message,
        "Amount to refund (0.01) is greater than maximum refund amount in (0.00))"
    );
    let RefundAnswer::Failed { code, .. } = client
        .refund(&FlexFactorOrderId::new("unknown"), usd(100))
        .await
        .unwrap()
    else {
        panic!("refund of an unknown order succeeded")
    };
    assert_eq!(code, "2001");
    // An unpaid (submitted) order has nothing to refund either.
    let pending = ff_id(&client.evaluate(&mit("mit-unpaid", card)).await.unwrap());
    assert!(matches!(
        client.refund(&pending, usd(100)).await.unwrap(),
        RefundAnswer::Failed { .. }
    ));
    h.fake.deliver_due().await;
    assert_eq!(
        h.receiver.events(),
        vec!["order.completed", "order.refunded", "order.refunded"]
    );
}

/// F4: capture in integer cents of a CAPTUREREQUIRED order (sandbox: phone 998888).
#[tokio::test]
async fn f4_capture_of_capture_required_order() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let mut r = cit("cit-auth", card);
    r.customer.phone = Some("998888".into());
    let answer = client.evaluate(&r).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::CaptureRequired { .. }),
        "{answer:?}"
    );
    let id = ff_id(&answer);
    assert_eq!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::CaptureRequired
    );
    // Not more than authorized.
    assert!(matches!(
        client.capture(&id, usd(2500)).await.unwrap(),
        EvaluateAnswer::Declined { .. }
    ));
    assert!(matches!(
        client.capture(&id, usd(1999)).await.unwrap(),
        EvaluateAnswer::Approved { .. }
    ));
    // The same capture again is a replay of the same key.
    assert!(matches!(
        client.capture(&id, usd(1999)).await.unwrap(),
        EvaluateAnswer::Approved { .. }
    ));
    assert!(matches!(
        client.order_status(&id).await.unwrap(),
        FlexFactorOrderStatus::Completed { .. }
    ));
    assert_eq!(h.fake.order(id.as_str()).unwrap().paid_cents, 1999);
}

/// F3: the same key and body replays the same answer with no second effect.
#[tokio::test]
async fn f3_idempotent_replay_returns_the_same_answer() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let r = cit("cit-replay", card);
    let first = client.evaluate(&r).await.unwrap();
    let second = client.evaluate(&r).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(h.fake.calls().count(Endpoint::Evaluate), 2);
    assert_eq!(h.fake.state().orders.len(), 1);
    // Past 24 hours the key is forgotten: a new order.
    h.fake.advance(Duration::hours(25));
    let third = client.evaluate(&r).await.unwrap();
    assert_ne!(ff_id(&first), ff_id(&third));
    assert_eq!(h.fake.state().orders.len(), 2);
}

/// F3: a key coming back with another body is a 409.
#[tokio::test]
async fn f3_key_reused_with_another_body_is_409() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let r = cit("cit-409", card);
    client.evaluate(&r).await.unwrap();
    let mut other = r.clone();
    other.amount = usd(2999);
    assert!(matches!(
        client.evaluate_detailed(&other).await,
        Err(FlexFactorClientError::IdempotencyConflict)
    ));
    assert_eq!(
        client.evaluate(&other).await,
        Err(FlexFactorError::IdempotencyConflict)
    );
    assert_eq!(h.fake.state().orders.len(), 1);
}

/// 400 in FlexFactor's field-error format, each missing field named.
#[tokio::test]
async fn evaluate_400_names_the_missing_fields() {
    let h = Harness::new().await;
    let (status, body) = h
        .raw_post(
            "/evaluate",
            &json!({"isDeclined": true, "transaction": {"id": "t-1", "responseCodeSource": "nmi"},
                    "paymentMethod": {"cardNumber": "4111111111111111"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "400");
    let v = ValidationErrors::from_body(Some(400), body.to_string().as_bytes());
    for field in [
        "OrderId",
        "IdempotencyKey",
        "Transaction.ResponseCode",
        "Transaction.AvsResultCode",
        "Transaction.CvvResultCode",
        "Transaction.CavvResultCode",
        "CustomerIp",
    ] {
        assert!(v.fields.contains_key(field), "{field} not in {body}");
    }
    assert!(!v.fields.contains_key("IsDeclined"));
    assert!(!v.fields.contains_key("Transaction.Id"));
    assert_eq!(v.fields["OrderId"], vec!["Merchant's orderId is required"]);
    assert!(v.trace_id.is_some());

    // A managed MIT whose expiryDateUtc already passed: the bare ModelState shape.
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let mut r = mit("mit-expired", card);
    r.mode = salvage_domain::ports::SubmissionMode::Mit {
        expires_at: start() - Duration::days(1),
        recurring: false,
    };
    let Err(FlexFactorClientError::Validation(v)) = client.evaluate_detailed(&r).await else {
        panic!("an expired expiryDateUtc was taken")
    };
    assert_eq!(
        v.fields["ExpiryDateUtc"],
        vec!["The field ExpiryDateUtc is invalid."]
    );
    assert!(matches!(
        client.evaluate(&r).await.unwrap(),
        EvaluateAnswer::Rejected { .. }
    ));
    assert_eq!(h.fake.state().orders.len(), 0);
}

/// Property names are matched case-insensitively (PascalCase, camelCase, snake_case).
#[tokio::test]
async fn property_names_are_case_insensitive() {
    let h = Harness::new().await;
    let body = json!({
        "OrderId": "pascal-1", "IdempotencyKey": "7f0c0d7e-5d0e-4a53-9d0f-1d1b2c3d4e5f",
        "IsDeclined": "true", "CustomerIP": "203.0.113.9",
        "Transaction": {"ID": "pascal-1", "Amount": 1500, "Currency": "USD",
            "ResponseCode": "05", "RESPONSECODESOURCE": "nmi", "avs_result_code": "NA",
            "CvvResultCode": "NA", "CavvResultCode": "NA", "CardNotPresent": true},
        "PaymentMethod": {"CardNumber": "4000002760003184", "Token": false},
    });
    let (status, answer) = h.raw_post("/evaluate", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "APPROVED");
    assert_eq!(answer["orderSessionKey"], answer["orderId"]);
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", h.fake.base_url()))
        .json(&json!({"appkey": "sandbox-app-key", "APPSECRET": "sandbox-app-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let token: Value = r.json().await.unwrap();
    // `expires`: milliseconds since the epoch on the fake's clock, 10 minutes ahead.
    assert_eq!(
        token["expires"],
        json!((start() + Duration::minutes(10)).timestamp_millis())
    );
}

/// Scenario rules: by decline code, with a delay, then a refund and a chargeback by webhook.
#[tokio::test]
async fn scenario_rules_drive_results_refunds_and_chargebacks() {
    let h = Harness::new().await;
    h.fake
        .set_rules(RuleSet {
            rules: vec![Rule::new(Outcome::Approved)
                .named("insufficient funds recovered in two days")
                .response_code("51")
                .mode(Mode::Mit)
                .delay_secs(2 * 86_400)
                .refund_after_secs(86_400)
                .chargeback_after_secs(3 * 86_400)],
            ..RuleSet::sandbox()
        })
        .unwrap();
    let client = h.client();
    let card = token_for(&client, "4242424242424242", None).await;
    client.evaluate(&mit("mit-rule", card)).await.unwrap();
    h.fake.advance_and_deliver(Duration::days(1)).await;
    assert!(h.receiver.events().is_empty());
    h.fake.advance_and_deliver(Duration::days(1)).await;
    h.fake.advance_and_deliver(Duration::days(1)).await;
    h.fake.advance_and_deliver(Duration::days(2)).await;
    assert_eq!(
        h.receiver.events(),
        vec![
            "order.completed",
            "order.refunded",
            "payment.chargeback.received"
        ]
    );
    let results: Vec<FlexFactorResult> = h
        .receiver
        .verified()
        .into_iter()
        .map(|o| o.result)
        .collect();
    assert_eq!(results[1], FlexFactorResult::Refunded);
    assert_eq!(results[2], FlexFactorResult::Chargeback);
    let order = &h.fake.state().orders[0];
    assert_eq!(
        order.rule.as_deref(),
        Some("insufficient funds recovered in two days")
    );
    assert!(order.chargeback);
}

/// Unacknowledged deliveries come again, with IsResent, after a back-off, until a 2xx.
#[tokio::test]
async fn w_redelivered_with_is_resent_until_acknowledged() {
    let h = Harness::new().await;
    h.receiver.answer_next(&[500, 503]);
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    client.evaluate(&cit("cit-redeliver", card)).await.unwrap();
    let r = h.fake.deliver_due().await;
    assert_eq!((r.sent, r.failed, r.pending), (1, 1, 1));
    // Not before the back-off (60 s, then 120 s).
    assert_eq!(
        h.fake.advance_and_deliver(Duration::seconds(30)).await.sent,
        0
    );
    assert_eq!(
        h.fake
            .advance_and_deliver(Duration::seconds(30))
            .await
            .failed,
        1
    );
    assert_eq!(
        h.fake.advance_and_deliver(Duration::seconds(60)).await.sent,
        0
    );
    let r = h.fake.advance_and_deliver(Duration::seconds(60)).await;
    assert_eq!((r.acknowledged, r.pending), (1, 0));
    let resent: Vec<bool> = h.receiver.verified().iter().map(|o| o.is_resent).collect();
    assert_eq!(resent, vec![false, true, true]);
    assert_eq!(h.fake.advance_and_deliver(Duration::hours(5)).await.sent, 0);
}
