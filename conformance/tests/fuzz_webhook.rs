//! The `webhook` fuzz target's logic on the stable toolchain (W1, W2, W5): every seed and
//! corpus file, arbitrary bytes, and generated deliveries go through
//! `salvage_conformance::model::fuzz_entry::webhook` without a panic; correctly signed
//! deliveries verify exactly when they parse, altered ones never do.

use proptest::prelude::*;
use salvage_conformance::model::config;
use salvage_conformance::model::fuzz_corpus::{corpus, mutated, no_panic};
use salvage_conformance::model::fuzz_entry::{webhook, webhook_raw_verifies};

#[test]
fn fuzz_webhook_seeds_and_corpus_do_not_panic() {
    let files = corpus("webhook");
    assert!(
        files.len() >= 20,
        "the webhook seeds are missing: {}",
        files.len()
    );
    for (name, data) in &files {
        no_panic(name, || webhook(data));
    }
}

/// W1: the known-answer delivery verifies as received, so the raw mode reaches past the
/// signature; one altered byte of its body makes it fail.
#[test]
fn fuzz_webhook_w1_known_answer_delivery_verifies_in_raw_mode() {
    let files = corpus("webhook");
    let (_, known) = files
        .iter()
        .find(|(n, _)| n.ends_with("raw-known-answer"))
        .expect("seed raw-known-answer");
    assert!(webhook_raw_verifies(&known[1..]));
    let mut altered = known[1..].to_vec();
    let last = altered.len() - 2;
    altered[last] ^= 0x01;
    assert!(!webhook_raw_verifies(&altered));
}

/// A FlexFactor-like body: an object with some of the known fields, any values.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let event = prop_oneof![
        Just("order.completed".to_string()),
        Just("ORDER.EXPIRED".to_string()),
        Just("order.refunded".to_string()),
        Just("payment.chargeback.received".to_string()),
        Just("challenge.started".to_string()),
        ".{0,24}",
    ];
    let scalar = prop_oneof![
        ".{0,16}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    let key = prop_oneof![
        Just("Event"),
        Just("event"),
        Just("ExternalOrderId"),
        Just("external_order_id"),
        Just("OrderId"),
        Just("ConfirmationId"),
        Just("IsResent"),
        Just("IsTestMode"),
        Just("TimeStamp"),
        Just("EventData"),
        Just("Other"),
    ];
    (
        proptest::option::of(event),
        proptest::collection::vec((key, scalar), 0..8),
    )
        .prop_map(|(event, fields)| {
            let mut map = serde_json::Map::new();
            if let Some(e) = event {
                map.insert("Event".into(), e.into());
            }
            for (k, v) in fields {
                map.insert(k.to_string(), v);
            }
            serde_json::to_vec(&map).unwrap_or_default()
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fuzz_webhook_arbitrary_bytes_do_not_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        webhook(&data);
    }

    #[test]
    fn fuzz_webhook_mutated_seeds_do_not_panic(data in mutated("webhook")) {
        webhook(&data);
    }

    /// W1/W5: signed here, it verifies exactly when it parses (mode 1); altered after signing,
    /// it never verifies (mode 2).
    #[test]
    fn fuzz_webhook_w1_signed_verifies_iff_parses_and_altered_never(
        body in body(),
        what in any::<u8>(),
        place in any::<u8>(),
    ) {
        let mut signed = vec![1u8];
        signed.extend_from_slice(&body);
        webhook(&signed);
        let mut altered = vec![2u8, what, place];
        altered.extend_from_slice(&body);
        webhook(&altered);
    }

    /// Headers of any shape (missing, duplicated, odd case, garbage) in raw mode.
    #[test]
    fn fuzz_webhook_odd_headers_do_not_panic(
        lines in proptest::collection::vec(
            (prop_oneof![
                Just("x-fc-authorization"), Just("X-FC-Date"), Just("x-fc-nonce"),
                Just("x-fc-content-sha512"), Just("x-fc-signature"), Just("Host"), Just("x"),
            ], ".{0,80}"),
            0..8,
        ),
        body in body(),
    ) {
        let mut data = vec![0u8];
        for (k, v) in lines {
            data.extend_from_slice(format!("{k}: {v}\n").as_bytes());
        }
        data.push(b'\n');
        data.extend_from_slice(&body);
        webhook(&data);
    }
}
