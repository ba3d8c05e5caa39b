//! The `crm_request` fuzz target's logic on the stable toolchain: every seed and corpus file,
//! arbitrary bytes, mutated seeds and generated request bodies go through
//! `salvage_conformance::model::fuzz_entry::crm_request` (serde, the service's validation of
//! `POST /v1/orders`, `/rerun` and `/rebills`, then the domain) without a panic, and an accepted
//! order body serializes back to itself.

use proptest::prelude::*;
use salvage_conformance::model::config;
use salvage_conformance::model::fuzz_corpus::{corpus, mutated, no_panic};
use salvage_conformance::model::fuzz_entry::crm_request;
use serde_json::{json, Value};

#[test]
fn fuzz_crm_request_seeds_and_corpus_do_not_panic() {
    let files = corpus("crm_request");
    assert!(files.len() >= 10, "the crm_request seeds are missing");
    for (name, data) in &files {
        no_panic(name, || crm_request(data));
    }
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("   ")),
        Just(Value::from("4111111111111111")),
        Just(Value::from("١٢٣٤٥٦٧٨٩٠١٢٣")),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-5i64..100_000).prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
    ]
}

fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::sample::select(values.to_vec()).prop_map(Value::from),
        1 => text(),
    ]
}

/// An `OrderIn`-shaped body whose fields take any value, valid ones often.
fn order_body() -> impl Strategy<Value = Vec<u8>> {
    let attempt = (
        one_of(&[
            "nmi-main",
            "nmi-backup",
            "authnet-1",
            "stripe-eu",
            "flexfactor",
            "atri-us",
        ]),
        proptest::option::of(one_of(&["atri-us", "atri-eu", "nmi-main"])),
        one_of(&["approved", "declined"]),
        proptest::option::of(text()),
        proptest::option::of(one_of(&["soft", "hard"])),
        proptest::option::of(number()),
    )
        .prop_map(|(gateway, profile, result, message, decline_type, visa)| {
            json!({
                "gateway_id": gateway, "gateway_profile_id": profile, "result": result,
                "response_code": "05", "response_message": message,
                "decline_type": decline_type, "visa_category": visa,
            })
        });
    let card = (
        proptest::option::of(prop_oneof![
            text(),
            Just(Value::from("4111 1111 1111 1111"))
        ]),
        proptest::option::of(text()),
        number(),
        number(),
        proptest::option::of(text()),
    )
        .prop_map(|(number, cvv, month, year, token)| {
            json!({"number": number, "cvv": cvv, "exp_month": month, "exp_year": year,
                   "holder": "A B", "token": token})
        });
    let item = (
        one_of(&["serum-monthly", "serum-trial", "cleanser", "bundle"]),
        number(),
        number(),
    )
        .prop_map(|(p, q, price)| json!({"product_id": p, "quantity": q, "price_minor": price}));
    (
        text(),
        one_of(&["new_sale", "trial_completion", "recurring"]),
        one_of(&["skincare", "one-click-bundle", "nowhere"]),
        proptest::option::of(text()),
        proptest::option::of(one_of(&["203.0.113.7", "", " "])),
        number(),
        one_of(&["USD", "EUR", "usd"]),
        card,
        proptest::collection::vec(item, 0..3),
        attempt,
    )
        .prop_map(
            |(id, t, campaign, sub, ip, amount, currency, card, items, attempt)| {
                let body = json!({
                    "order_id": id, "order_type": t, "campaign_id": campaign,
                    "subscription_id": sub, "ip_address": ip, "amount_minor": amount,
                    "currency": currency, "card": card, "items": items, "attempt": attempt,
                });
                serde_json::to_vec(&body).unwrap_or_default()
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fuzz_crm_request_arbitrary_bytes_do_not_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        crm_request(&data);
    }

    #[test]
    fn fuzz_crm_request_mutated_seeds_do_not_panic(data in mutated("crm_request")) {
        crm_request(&data);
    }

    /// Structured bodies reach the validation and the domain (S3, C1-C4, R1-R5 paths).
    #[test]
    fn fuzz_crm_request_generated_orders_do_not_panic(data in order_body()) {
        crm_request(&data);
    }
}
