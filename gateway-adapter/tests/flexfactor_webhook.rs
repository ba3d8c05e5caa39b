//! FlexFactor webhooks: the known-answer test on the published delivery (W1), tampering, date
//! tolerance and nonce replay (W2), body limits (W5), event mapping, and the signer.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::ManualClock;
use salvage_gateway::flexfactor::signer::format_fc_date;
use salvage_gateway::flexfactor::webhook::parse_fc_date;
use salvage_gateway::flexfactor::{
    parse_delivery, sign_webhook, FlexFactorResult, WebhookError, WebhookKey, WebhookVerifier,
    WebhookVerifierConfig,
};
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha512;

fn fixture_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flexfactor/"
    ))
}

/// The published delivery of `webhook-order-completed.json`.
struct Fixture {
    key_b64: String,
    host: String,
    body: Vec<u8>,
    headers: BTreeMap<String, String>,
}

impl Fixture {
    fn load() -> Fixture {
        let text = std::fs::read_to_string(fixture_dir().join("webhook-order-completed.json"))
            .expect("fixture webhook-order-completed.json");
        let v: Value = serde_json::from_str(&text).unwrap();
        let headers = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        Fixture {
            key_b64: v["subscriber_key_base64"].as_str().unwrap().to_string(),
            host: v["host"].as_str().unwrap().to_string(),
            body: v["body"].as_str().unwrap().as_bytes().to_vec(),
            headers,
        }
    }

    fn key(&self) -> WebhookKey {
        WebhookKey::from_base64(&SecretString::from(self.key_b64.clone())).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn date(&self) -> DateTime<Utc> {
        parse_fc_date(self.header("x-fc-date")).unwrap()
    }

    fn http_headers(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in &self.headers {
            map.insert(
                http::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// A verifier keyed with the fixture's key, its clock at the delivery's date.
    fn verifier(&self) -> (WebhookVerifier, Arc<ManualClock>) {
        self.verifier_with(WebhookVerifierConfig::default())
    }

    fn verifier_with(&self, config: WebhookVerifierConfig) -> (WebhookVerifier, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(self.date()));
        let v = WebhookVerifier::new(self.key(), config, clock.clone());
        (v, clock)
    }
}

fn with_header(mut headers: http::HeaderMap, name: &'static str, value: &str) -> http::HeaderMap {
    headers.insert(name, http::HeaderValue::from_str(value).unwrap());
    headers
}

/// W1: the published delivery verifies as is, with the clock at its date.
#[tokio::test]
async fn w1_known_answer_fixture_verifies() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let delivery = verifier
        .verify(&f.http_headers(), &f.body, None)
        .expect("the published delivery verifies");
    assert_eq!(delivery.host, "fctestwebhook.free.beeceptor.com");
    assert_eq!(delivery.nonce, "5f1c2de28a76457c9cb79d1740f2260a");
    assert!(
        delivery.body_signature_verified,
        "x-fc-signature verified too"
    );
    let o = delivery.outcome;
    assert_eq!(o.event, "order.completed");
    assert_eq!(
        o.result,
        FlexFactorResult::Completed {
            confirmation_id: Some("22ACD1D9".into())
        }
    );
    assert_eq!(
        o.external_order_id,
        Some(OrderId::new("a9735210-1349-49bf-bfde-b737dd07872a"))
    );
    assert_eq!(
        o.flexfactor_order_id,
        Some(FlexFactorOrderId::new(
            "ac9674ed-cbfe-49aa-bc8b-eb1d2b74c429"
        ))
    );
    assert!(!o.is_resent);
    assert!(o.is_test_mode);
    assert_eq!(
        o.timestamp.map(|t| t.to_rfc3339()),
        Some("2023-03-20T17:16:40.898703+00:00".to_string())
    );
}

/// W1: the same delivery verifies with the host given by the HTTP layer and with headers in a
/// plain map (any header casing).
#[tokio::test]
async fn w1_fixture_verifies_with_explicit_host_and_plain_headers() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    verifier.verify(&f.headers, &f.body, Some(&f.host)).unwrap();
}

/// W1: x-fc-signature is base64(HMAC-SHA512(key, body)) and the content hash is SHA-512.
#[test]
fn w1_fixture_body_signature_and_content_hash_recompute() {
    let f = Fixture::load();
    let key = STANDARD.decode(&f.key_b64).unwrap();
    assert_eq!(key.len(), 64);
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&f.body);
    assert_eq!(
        STANDARD.encode(mac.finalize().into_bytes()),
        f.header("x-fc-signature")
    );
    assert_eq!(
        salvage_gateway::flexfactor::content_sha512(&f.body),
        f.header("x-fc-content-sha512")
    );
    assert_eq!(f.body.len(), 255);
}

/// W1: one changed byte of the body is refused (the content hash no longer matches).
#[tokio::test]
async fn w1_fixture_refused_with_one_body_byte_changed() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let mut body = f.body.clone();
    body[10] ^= 0x01;
    assert_eq!(
        verifier.verify(&f.http_headers(), &body, None),
        Err(WebhookError::BadContentHash)
    );
}

/// W1: a changed body with a recomputed content hash is refused by the signature.
#[tokio::test]
async fn w1_fixture_refused_with_body_and_matching_hash_changed() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let body = f.body.clone().into_iter().rev().collect::<Vec<u8>>();
    let headers = with_header(
        f.http_headers(),
        "x-fc-content-sha512",
        &salvage_gateway::flexfactor::content_sha512(&body),
    );
    assert_eq!(
        verifier.verify(&headers, &body, None),
        Err(WebhookError::BadSignature)
    );
}

/// W1: a changed nonce is refused.
#[tokio::test]
async fn w1_fixture_refused_with_nonce_changed() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let headers = with_header(
        f.http_headers(),
        "x-fc-nonce",
        "5f1c2de28a76457c9cb79d1740f2260b",
    );
    assert_eq!(
        verifier.verify(&headers, &f.body, None),
        Err(WebhookError::BadSignature)
    );
}

/// W1: a changed date (still within the tolerance) is refused.
#[tokio::test]
async fn w1_fixture_refused_with_date_changed() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let headers = with_header(
        f.http_headers(),
        "x-fc-date",
        "Mon, 20 Mar 2023 17:16:41 GMT",
    );
    assert_eq!(
        verifier.verify(&headers, &f.body, None),
        Err(WebhookError::BadSignature)
    );
}

/// W1: another host is refused, whether from the Host header or given by the HTTP layer.
#[tokio::test]
async fn w1_fixture_refused_with_host_changed() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    assert_eq!(
        verifier.verify(&f.http_headers(), &f.body, Some("salvage.example.com")),
        Err(WebhookError::BadSignature)
    );
    let headers = with_header(f.http_headers(), "host", "salvage.example.com");
    assert_eq!(
        verifier.verify(&headers, &f.body, None),
        Err(WebhookError::BadSignature)
    );
}

/// W1: another key is refused.
#[tokio::test]
async fn w1_fixture_refused_with_another_key() {
    let f = Fixture::load();
    let clock = Arc::new(ManualClock::new(f.date()));
    let mut key = STANDARD.decode(&f.key_b64).unwrap();
    key[0] ^= 0x80;
    let verifier = WebhookVerifier::new(
        WebhookKey::from_bytes(&key).unwrap(),
        WebhookVerifierConfig::default(),
        clock,
    );
    assert_eq!(
        verifier.verify(&f.http_headers(), &f.body, None),
        Err(WebhookError::BadSignature)
    );
}

/// W1: a wrong x-fc-signature is refused even when the authorization verifies.
#[tokio::test]
async fn w1_fixture_refused_with_bad_body_signature() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let headers = with_header(
        f.http_headers(),
        "x-fc-signature",
        &STANDARD.encode([7u8; 64]),
    );
    assert_eq!(
        verifier.verify(&headers, &f.body, None),
        Err(WebhookError::BadBodySignature)
    );
}

/// W1: every required header is required; the error names it and maps to 401.
#[tokio::test]
async fn w1_missing_headers_refused_with_401() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    for name in [
        "x-fc-authorization",
        "x-fc-content-sha512",
        "x-fc-nonce",
        "x-fc-date",
        "host",
    ] {
        let mut headers = f.http_headers();
        headers.remove(name);
        let err = verifier.verify(&headers, &f.body, None).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader(name), "{name}");
        assert_eq!(err.http_status(), 401);
    }
    // x-fc-signature is optional unless required by the configuration.
    let mut headers = f.http_headers();
    headers.remove("x-fc-signature");
    let ok = verifier.verify(&headers, &f.body, None).unwrap();
    assert!(!ok.body_signature_verified);
    let (strict, _clock) = f.verifier_with(WebhookVerifierConfig {
        require_body_signature: true,
        ..WebhookVerifierConfig::default()
    });
    assert_eq!(
        strict.verify(&headers, &f.body, None),
        Err(WebhookError::MissingHeader("x-fc-signature"))
    );
}

/// W1: an authorization of another scheme or signed-header list is refused.
#[tokio::test]
async fn w1_malformed_authorization_refused() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let auth = f.header("x-fc-authorization");
    for bad in [
        auth.replace("HMAC-SHA512", "HMAC-SHA256"),
        auth.replace("x-fc-nonce;x-fc-date;host;", "x-fc-date;host;"),
        auth.replace("&Signature=", "&Sig="),
        "HMAC-SHA512".to_string(),
    ] {
        let headers = with_header(f.http_headers(), "x-fc-authorization", &bad);
        let err = verifier.verify(&headers, &f.body, None).unwrap_err();
        assert!(
            matches!(err, WebhookError::MalformedHeader { .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(err.http_status(), 401);
    }
}

/// W2: a delivery outside the date tolerance (default 5 minutes either way) is refused.
#[tokio::test]
async fn w2_stale_date_refused() {
    let f = Fixture::load();
    let (verifier, clock) = f.verifier();
    clock.set(f.date() + Duration::minutes(5) + Duration::seconds(1));
    assert!(matches!(
        verifier.verify(&f.http_headers(), &f.body, None),
        Err(WebhookError::StaleDate { .. })
    ));
    clock.set(f.date() - Duration::minutes(5) - Duration::seconds(1));
    assert!(matches!(
        verifier.verify(&f.http_headers(), &f.body, None),
        Err(WebhookError::StaleDate { .. })
    ));
    clock.set(f.date() + Duration::minutes(5));
    verifier
        .verify(&f.http_headers(), &f.body, None)
        .expect("at the edge of the tolerance");
}

/// W2: the tolerance is configurable.
#[tokio::test]
async fn w2_date_tolerance_is_configurable() {
    let f = Fixture::load();
    let (verifier, clock) = f.verifier_with(WebhookVerifierConfig {
        date_tolerance: Duration::seconds(30),
        ..WebhookVerifierConfig::default()
    });
    clock.set(f.date() + Duration::seconds(31));
    let err = verifier
        .verify(&f.http_headers(), &f.body, None)
        .unwrap_err();
    assert!(matches!(err, WebhookError::StaleDate { .. }));
    assert_eq!(err.http_status(), 401);
}

/// W2: the verifier checks the signature and the date only; the nonce is the intake's, recorded
/// in the delivery's own transaction (the replay tests are in `service_http.rs` and
/// `webhook_intake.rs`). Verifying the same delivery twice passes twice, and hands over its nonce.
#[tokio::test]
async fn w2_the_verifier_leaves_the_nonce_to_the_intake() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let first = verifier.verify(&f.http_headers(), &f.body, None).unwrap();
    let again = verifier.verify(&f.http_headers(), &f.body, None).unwrap();
    assert_eq!(first.nonce, "5f1c2de28a76457c9cb79d1740f2260a");
    assert_eq!(first, again);
}

/// W5: an oversized body is refused (413) before anything else is computed.
#[tokio::test]
async fn w5_oversized_body_refused() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier_with(WebhookVerifierConfig {
        max_body_bytes: 100,
        ..WebhookVerifierConfig::default()
    });
    let err = verifier
        .verify(&f.http_headers(), &f.body, None)
        .unwrap_err();
    assert_eq!(
        err,
        WebhookError::BodyTooLarge {
            size: 255,
            limit: 100
        }
    );
    assert_eq!(err.http_status(), 413);
}

/// W5: a correctly signed body that is not a FlexFactor event is refused (400) and its nonce is
/// not recorded.
#[tokio::test]
async fn w5_malformed_body_refused() {
    let f = Fixture::load();
    let key = f.key();
    let date_text = f.header("x-fc-date").to_string();
    let (verifier, _clock) = f.verifier();
    for body in [&b"not json"[..], b"[1,2]", br#"{"EventData":null}"#, b""] {
        let signed = sign_webhook(&key, &f.host, "n-1", &date_text, body);
        let mut headers = signed.to_header_map().unwrap();
        headers.insert("host", http::HeaderValue::from_str(&f.host).unwrap());
        let err = verifier.verify(&headers, body, None).unwrap_err();
        assert!(matches!(err, WebhookError::MalformedBody(_)), "{err:?}");
        assert_eq!(err.http_status(), 400);
    }
}

/// W1: the signer reproduces the published delivery's headers exactly.
#[test]
fn w1_signer_reproduces_fixture_headers() {
    let f = Fixture::load();
    let signed = sign_webhook(
        &f.key(),
        &f.host,
        f.header("x-fc-nonce"),
        f.header("x-fc-date"),
        &f.body,
    );
    assert_eq!(signed.nonce, f.header("x-fc-nonce"));
    assert_eq!(signed.date, f.header("x-fc-date"));
    assert_eq!(signed.content_sha512, f.header("x-fc-content-sha512"));
    assert_eq!(signed.authorization, f.header("x-fc-authorization"));
    assert_eq!(signed.signature, f.header("x-fc-signature"));
    for (name, value) in signed.pairs() {
        assert_eq!(value, f.header(name), "{name}");
    }
    assert_eq!(format_fc_date(f.date()), f.header("x-fc-date"));
}

fn signed_delivery(body: &[u8], host: &str, nonce: &str, at: DateTime<Utc>) -> http::HeaderMap {
    let key = Fixture::load().key();
    let signed = sign_webhook(&key, host, nonce, &format_fc_date(at), body);
    let mut headers = signed.to_header_map().unwrap();
    headers.insert("host", http::HeaderValue::from_str(host).unwrap());
    headers
}

/// Every event FlexFactor documents maps onto its result; the rest are kept (F5).
#[tokio::test]
async fn every_event_maps_to_its_result() {
    let f = Fixture::load();
    let (verifier, _clock) = f.verifier();
    let cases = [
        (
            "order.completed",
            FlexFactorResult::Completed {
                confirmation_id: Some("C1".into()),
            },
        ),
        ("order.expired", FlexFactorResult::Expired),
        ("order.cancelled", FlexFactorResult::Cancelled),
        ("order.refunded", FlexFactorResult::Refunded),
        ("payment.chargeback.received", FlexFactorResult::Chargeback),
        ("order.capturerequired", FlexFactorResult::CaptureRequired),
        (
            "challenge.presented",
            FlexFactorResult::NotRelevant {
                event: "challenge.presented".into(),
            },
        ),
        (
            "challenge.failed",
            FlexFactorResult::NotRelevant {
                event: "challenge.failed".into(),
            },
        ),
        (
            "payout.created",
            FlexFactorResult::NotRelevant {
                event: "payout.created".into(),
            },
        ),
        (
            "payout.updated",
            FlexFactorResult::NotRelevant {
                event: "payout.updated".into(),
            },
        ),
        (
            "order.something_new",
            FlexFactorResult::Unknown {
                event: "order.something_new".into(),
            },
        ),
    ];
    for (i, (event, expected)) in cases.into_iter().enumerate() {
        let body = format!(
            r#"{{"Event":"{event}","TimeStamp":"2023-03-20T17:16:40Z","EventData":{{"Amount":12}},"ExternalOrderId":"o-{i}","OrderId":"ff-{i}","ConfirmationId":"C1","IsTestMode":false,"IsResent":true}}"#
        );
        let headers = signed_delivery(body.as_bytes(), &f.host, &format!("nonce-{i}"), f.date());
        let d = verifier.verify(&headers, body.as_bytes(), None).unwrap();
        assert_eq!(d.outcome.result, expected, "{event}");
        assert_eq!(
            d.outcome.external_order_id,
            Some(OrderId::new(format!("o-{i}")))
        );
        assert_eq!(
            d.outcome.flexfactor_order_id,
            Some(FlexFactorOrderId::new(format!("ff-{i}")))
        );
        assert!(d.outcome.is_resent);
        assert!(d.outcome.event_data.is_some());
    }
}

/// F5 for webhooks: camelCase and snake_case payloads read like PascalCase; unknown fields are
/// ignored; a naive TimeStamp is taken as UTC.
#[test]
fn f5_webhook_payload_read_case_insensitively() {
    let camel = br#"{"event":"order.expired","timeStamp":"2023-03-20T17:16:40.5","externalOrderId":"o-1","orderId":"ff-1","isResent":"true","newField":[1]}"#;
    let snake = br#"{"event":"ORDER.EXPIRED","time_stamp":"2023-03-20T17:16:40.5Z","external_order_id":"o-1","order_id":"ff-1","is_resent":true}"#;
    for body in [&camel[..], &snake[..]] {
        let o = parse_delivery(body).unwrap();
        assert_eq!(o.result, FlexFactorResult::Expired);
        assert_eq!(o.external_order_id, Some(OrderId::new("o-1")));
        assert_eq!(o.flexfactor_order_id, Some(FlexFactorOrderId::new("ff-1")));
        assert!(o.is_resent);
        assert_eq!(
            o.timestamp.map(|t| t.timestamp_millis()),
            Some(1_679_332_600_500)
        );
    }
}

fn proptest_verifier(at: DateTime<Utc>) -> WebhookVerifier {
    WebhookVerifier::new(
        Fixture::load().key(),
        WebhookVerifierConfig {
            max_body_bytes: 1 << 20,
            ..WebhookVerifierConfig::default()
        },
        Arc::new(ManualClock::new(at)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// W1: whatever the body, what the signer signs the verifier accepts.
    #[test]
    fn w1_signer_and_verifier_round_trip(body in proptest::collection::vec(any::<u8>(), 0..2048),
                                         nonce in "[0-9a-f]{32}",
                                         secs in 1_600_000_000i64..1_900_000_000) {
        let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        let verifier = proptest_verifier(at);
        let headers = signed_delivery(&body, "hooks.example.com", &nonce, at);
        let checked = verifier.check_signature(&headers, &body, None);
        prop_assert!(checked.is_ok(), "{:?}", checked);
        let checked = checked.unwrap();
        prop_assert!(checked.body_signature_verified);
        prop_assert_eq!(checked.nonce, nonce);
    }

    /// W1: any single-byte change of the body is refused.
    #[test]
    fn w1_any_single_byte_change_of_the_body_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let verifier = proptest_verifier(at);
        let headers = signed_delivery(&body, "hooks.example.com", "abc", at);
        let mut tampered = body.clone();
        let i = index.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert_eq!(
            verifier.check_signature(&headers, &tampered, None),
            Err(WebhookError::BadContentHash)
        );
    }
}
