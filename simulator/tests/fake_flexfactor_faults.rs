//! Fault injection of the fake FlexFactor, each mode at least once: 5xx, timeout, slow answer,
//! expired token (forced 401) on the API; duplicate, late, resent, reordered deliveries and bad
//! signatures on webhooks (checked with the adapter's `WebhookVerifier`).

mod fake_flexfactor_support;

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use fake_flexfactor_support::*;
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::ports::{EvaluateAnswer, FlexFactor, FlexFactorError};
use salvage_gateway::flexfactor::WebhookError;
use salvage_sim::fake_flexfactor::{Endpoint, Fault, FaultRule};

fn on(endpoint: Endpoint, fault: Fault, times: u32) -> FaultRule {
    FaultRule::on(endpoint, fault, Some(times))
}

fn hook(fault: Fault) -> FaultRule {
    FaultRule::on_webhooks(fault, Some(1))
}

#[tokio::test]
async fn server_error_is_retried_by_the_client_and_changes_nothing() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    h.fake
        .add_fault(on(
            Endpoint::Evaluate,
            Fault::ServerError { status: 503 },
            1,
        ))
        .unwrap();
    let answer = client
        .evaluate(&cit("cit-5xx", card.clone()))
        .await
        .unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Approved { .. }),
        "{answer:?}"
    );
    assert_eq!(h.fake.calls().count(Endpoint::Evaluate), 2);
    assert_eq!(h.fake.state().orders.len(), 1);

    // 5xx past the client's retries: an unknown outcome, and nothing was taken.
    h.fake
        .set_faults(vec![on(
            Endpoint::Evaluate,
            Fault::ServerError { status: 500 },
            3,
        )])
        .unwrap();
    let answer = client.evaluate(&cit("cit-5xx-2", card)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Unknown { .. }),
        "{answer:?}"
    );
    assert_eq!(h.fake.state().orders.len(), 1);
    assert_eq!(h.fake.state().faults[0].fired, 3);
}

#[tokio::test]
async fn timeout_holds_the_request_past_the_clients_patience() {
    let h = Harness::new().await;
    let mut config = h.config();
    config.request_timeout = StdDuration::from_millis(150);
    let client = h.client_with(config);
    let card = token_for(&client, "4111111111111111", None).await;

    // Applied, then held: the client does not know; the replay (same key) tells.
    h.fake
        .add_fault(on(
            Endpoint::Evaluate,
            Fault::Timeout {
                hold_ms: 600,
                applied: true,
            },
            1,
        ))
        .unwrap();
    let r = cit("cit-timeout", card.clone());
    let started = Instant::now();
    let answer = client.evaluate(&r).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Unknown { .. }),
        "{answer:?}"
    );
    assert!(started.elapsed() < StdDuration::from_millis(550));
    assert_eq!(h.fake.state().orders.len(), 1);
    let again = client.evaluate(&r).await.unwrap();
    assert_eq!(
        again.flexfactor_order_id().map(FlexFactorOrderId::as_str),
        Some(h.fake.state().orders[0].id.as_str())
    );

    // Held without effect.
    h.fake
        .set_faults(vec![on(
            Endpoint::Evaluate,
            Fault::Timeout {
                hold_ms: 600,
                applied: false,
            },
            1,
        )])
        .unwrap();
    let answer = client.evaluate(&cit("cit-timeout-2", card)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Unknown { .. }),
        "{answer:?}"
    );
    assert_eq!(h.fake.state().orders.len(), 1);
}

#[tokio::test]
async fn slow_answer_arrives_late_but_arrives() {
    let h = Harness::new().await;
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let id = client
        .evaluate(&cit("cit-slow", card))
        .await
        .unwrap()
        .flexfactor_order_id()
        .cloned()
        .unwrap();
    h.fake
        .add_fault(on(Endpoint::Order, Fault::Slow { delay_ms: 40 }, 1))
        .unwrap();
    let started = Instant::now();
    assert!(client.order_status(&id).await.is_ok());
    assert!(started.elapsed() >= StdDuration::from_millis(40));
}

#[tokio::test]
async fn expired_token_forces_a_401_and_one_refresh() {
    let h = Harness::new().await;
    let client = h.client();
    let unknown = FlexFactorOrderId::new("none");
    assert_eq!(
        client.order_status(&unknown).await,
        Err(FlexFactorError::NotFound)
    );
    h.fake
        .add_fault(on(Endpoint::Order, Fault::ExpiredToken, 1))
        .unwrap();
    assert_eq!(
        client.order_status(&unknown).await,
        Err(FlexFactorError::NotFound)
    );
    assert_eq!(client.token_fetch_count(), 2);
    // Always 401: the client gives up after one refresh.
    h.fake
        .set_faults(vec![FaultRule::on(
            Endpoint::Order,
            Fault::ExpiredToken,
            None,
        )])
        .unwrap();
    assert_eq!(
        client.order_status(&unknown).await,
        Err(FlexFactorError::Unauthorized)
    );
}

async fn approved_cit(h: &Harness, order: &str) {
    let client = h.client();
    let card = token_for(&client, "4111111111111111", None).await;
    let answer = client.evaluate(&cit(order, card)).await.unwrap();
    assert!(
        matches!(answer, EvaluateAnswer::Approved { .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn duplicate_delivery_sends_the_same_body_twice() {
    let h = Harness::new().await;
    h.fake.add_fault(hook(Fault::Duplicate)).unwrap();
    approved_cit(&h, "cit-dup").await;
    let r = h.fake.deliver_due().await;
    assert_eq!((r.sent, r.acknowledged), (2, 1));
    let got = h.receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_ne!(got[0].nonce, got[1].nonce);
    assert!(got.iter().all(|r| r.verdict.is_ok()));
    assert!(h.fake.delivery_attempts()[1].duplicate);
}

#[tokio::test]
async fn late_delivery_comes_after_its_event() {
    let h = Harness::new().await;
    h.fake
        .add_fault(hook(Fault::Late { delay_secs: 300 }))
        .unwrap();
    approved_cit(&h, "cit-late").await;
    assert_eq!(h.fake.deliver_due().await.sent, 0);
    assert_eq!(
        h.fake
            .advance_and_deliver(Duration::seconds(299))
            .await
            .sent,
        0
    );
    assert_eq!(
        h.fake
            .advance_and_deliver(Duration::seconds(1))
            .await
            .acknowledged,
        1
    );
    let outcome = h.receiver.verified().remove(0);
    // TimeStamp is the event's time; x-fc-date (checked by the verifier) is the send's.
    assert_eq!(outcome.timestamp, Some(start()));
    assert_eq!(outcome.external_order_id, Some(OrderId::new("cit-late")));
}

#[tokio::test]
async fn resent_delivery_comes_again_with_is_resent() {
    let h = Harness::new().await;
    h.fake.add_fault(hook(Fault::Resent)).unwrap();
    approved_cit(&h, "cit-resent").await;
    h.fake.deliver_due().await;
    let got = h.receiver.verified();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].event, got[1].event);
    assert_eq!((got[0].is_resent, got[1].is_resent), (false, true));
}

#[tokio::test]
async fn reordered_deliveries_arrive_in_reverse() {
    let h = Harness::new().await;
    h.fake.add_fault(hook(Fault::Reordered)).unwrap();
    approved_cit(&h, "cit-first").await;
    approved_cit(&h, "cit-second").await;
    h.fake.deliver_due().await;
    let order: Vec<Option<OrderId>> = h
        .receiver
        .verified()
        .into_iter()
        .map(|o| o.external_order_id)
        .collect();
    assert_eq!(
        order,
        vec![
            Some(OrderId::new("cit-second")),
            Some(OrderId::new("cit-first"))
        ]
    );
}

#[tokio::test]
async fn bad_signature_is_refused_by_the_verifier_then_redelivered() {
    let h = Harness::new().await;
    h.fake.add_fault(hook(Fault::BadSignature)).unwrap();
    approved_cit(&h, "cit-badsig").await;
    let r = h.fake.deliver_due().await;
    assert_eq!((r.failed, r.pending), (1, 1));
    let got = h.receiver.received();
    assert_eq!(
        got[0].verdict.clone().unwrap_err(),
        WebhookError::BadSignature
    );
    assert_eq!(got[0].answered, 401);
    assert!(h.fake.delivery_attempts()[0].bad_signature);
    let r = h.fake.advance_and_deliver(Duration::seconds(60)).await;
    assert_eq!(r.acknowledged, 1);
    let ok = h.receiver.verified();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].is_resent);
}
