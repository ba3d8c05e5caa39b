//! The logic of the fuzz targets in `conformance/fuzz/fuzz_targets/`, kept here so that the
//! stable `conformance/tests/fuzz_*.rs` tests run exactly the same code on generated and corpus
//! inputs. None of these functions may panic, whatever the bytes; where a property beyond "no
//! panic" holds (a correctly signed delivery verifies, a tampered one does not, a parsed request
//! serializes back to itself), a break of it panics, so the fuzzer reports it as a crash.
//!
//! - [`webhook`]: FlexFactor deliveries through `WebhookVerifier::check_signature` / `verify`
//!   and `parse_delivery` (W1, W2, W5).
//! - [`crm_request`]: `POST /v1/orders`, `/rerun` and `/rebills` bodies through serde and the
//!   service's validation (`convert`), then, when valid, through the domain (S3, D1, C1-C4).
//! - [`setup_loader`]: setup text through `Setup::from_toml_str`, then, when valid, through the
//!   routing, recycle plans, decline mapping and the aggregates that read it (S1-S8).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use salvage_domain::customer::{CardToken, CredentialKind};
use salvage_domain::order::{Order, OrderCommand, PlaceOrder, RecurringTerms};
use salvage_domain::ports::GatewayAnswer;
use salvage_domain::process_manager::on_order_event;
use salvage_domain::routing::{cascade_route, recycle_plan, CascadeInput};
use salvage_domain::setup::Gateway;
use salvage_domain::subscription::{CreateSubscription, Subscription, SubscriptionCommand};
use salvage_domain::{
    DeclineFacts, DeclineType, DomainServices, EffectiveDecline, ManualClock, OrderId, OrderType,
    Setup,
};
use salvage_gateway::flexfactor::signer::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::flexfactor::{parse_delivery, WebhookVerifier, WebhookVerifierConfig};
use salvage_gateway::service::convert;
use salvage_gateway::service::dto::{OrderIn, RebillIn, RerunIn};
use secrecy::SecretString;

use super::fixtures::{sample_setup, SAMPLE_SETUP};

/// The HMACSigningKey of the sample setup and of FlexFactor's published known-answer delivery
/// (`reference/flexfactor-fixtures/webhook-order-completed.json`).
pub const WEBHOOK_KEY: &str =
    "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";
/// The verifier's clock: the time of the known-answer delivery, so that it verifies as is.
pub const WEBHOOK_NOW: i64 = 1_679_332_600; // Mon, 20 Mar 2023 17:16:40 GMT
/// The host signed deliveries are addressed to.
pub const WEBHOOK_HOST: &str = "salvage.example";

fn webhook_now() -> DateTime<Utc> {
    DateTime::from_timestamp(WEBHOOK_NOW, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn verifier() -> Option<WebhookVerifier> {
    let key = WebhookKey::from_base64(&SecretString::from(WEBHOOK_KEY)).ok()?;
    Some(WebhookVerifier::new(
        key,
        WebhookVerifierConfig::default(),
        Arc::new(ManualClock::new(webhook_now())),
    ))
}

/// Splits `headers\n\nbody`: header lines `name: value` (lossy UTF-8), then the raw body.
pub fn split_delivery(data: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &data[data.len()..]),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim_start().to_string()))
        })
        .collect();
    (headers, body)
}

/// Joins headers and a body into the form [`split_delivery`] reads (for corpus files).
pub fn join_delivery(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The fuzz target `webhook`. The first byte picks a mode:
/// - `0 mod 3`: the rest is `headers\n\nbody` as received; it goes through `check_signature`,
///   `verify` and `parse_delivery`;
/// - `1 mod 3`: the rest is a body, correctly signed here: it must verify exactly when it
///   parses and fits the size limit (W1, W5);
/// - `2 mod 3`: `[what][where]body`, correctly signed, then one header or body byte altered:
///   it must not verify (W1).
pub fn webhook(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(verifier) = verifier() else {
        return;
    };
    match mode % 3 {
        0 => {
            let (headers, body) = split_delivery(rest);
            let _ = verifier.check_signature(&headers, body, None);
            let _ = verifier.check_signature(&headers, body, Some(WEBHOOK_HOST));
            let _ = Some(verifier.verify(&headers, body, None));
            if let Ok(outcome) = parse_delivery(body) {
                // What is kept of a delivery must serialize (the webhook book stores it).
                let _ = serde_json::to_string(&outcome);
            }
        }
        1 => {
            let headers = signed_headers(rest);
            let parses = parse_delivery(rest).is_ok();
            let fits = rest.len() <= verifier.config().max_body_bytes;
            let verified = Some(verifier.verify(&headers, rest, Some(WEBHOOK_HOST)));
            match verified {
                Some(Ok(_)) if parses && fits => {}
                Some(Err(_)) if !(parses && fits) => {}
                None => {}
                other => panic!(
                    "W1/W5: a correctly signed delivery of {} bytes that {} gave {other:?}",
                    rest.len(),
                    if parses { "parses" } else { "does not parse" }
                ),
            }
        }
        _ => {
            let (what, place, body) = match rest {
                [w, p, body @ ..] => (*w, *p as usize, body),
                _ => return,
            };
            let mut body = body.to_vec();
            let mut headers = signed_headers(&body);
            let altered = match what % 6 {
                5 => match body.len() {
                    0 => {
                        body.push(b' ');
                        true
                    }
                    n => {
                        body[place % n] ^= 0x01;
                        true
                    }
                },
                h => alter_header(&mut headers, h as usize, place),
            };
            if !altered {
                return;
            }
            if let Some(Ok(_)) = Some(verifier.verify(&headers, &body, Some(WEBHOOK_HOST))) {
                panic!(
                    "W1: a delivery altered after signing verified (alteration {what}, at {place})"
                );
            }
        }
    }
}

/// Whether `headers\n\nbody` verifies completely as received (W1, W2): the known-answer
/// delivery must, so that the raw mode of [`webhook`] is known to reach past the signature.
pub fn webhook_raw_verifies(data: &[u8]) -> bool {
    let (headers, body) = split_delivery(data);
    verifier()
        .map(|v| v.verify(&headers, body, None))
        .is_some_and(|r| r.is_ok())
}

/// Headers of `body` signed with [`WEBHOOK_KEY`] for [`WEBHOOK_HOST`] at the verifier's time.
fn signed_headers(body: &[u8]) -> Vec<(String, String)> {
    let Ok(key) = WebhookKey::from_base64(&SecretString::from(WEBHOOK_KEY)) else {
        return Vec::new();
    };
    let date = format_fc_date(webhook_now());
    let signed = sign_webhook(
        &key,
        WEBHOOK_HOST,
        "5f1c2de28a76457c9cb79d1740f2260a",
        &date,
        body,
    );
    signed
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Flips one character of header `which` (of the five signed ones) at `place`; `false` when it
/// has none.
fn alter_header(headers: &mut [(String, String)], which: usize, place: usize) -> bool {
    let Some((_, value)) = headers.get_mut(which) else {
        return false;
    };
    let mut bytes = value.clone().into_bytes();
    if bytes.is_empty() {
        return false;
    }
    let i = place % bytes.len();
    // XOR 1 keeps ASCII ASCII and never only changes letter case.
    bytes[i] ^= 0x01;
    match String::from_utf8(bytes) {
        Ok(v) if v.trim() != value.trim() => {
            *value = v;
            true
        }
        _ => false,
    }
}

fn fuzz_services(setup: Setup) -> DomainServices {
    DomainServices::new(
        Arc::new(setup),
        Arc::new(ManualClock::new(super::fixtures::t0())),
    )
}

/// Places `cmd` on a fresh order, applies its events and runs the process manager on them.
fn place_and_follow(services: &DomainServices, cmd: PlaceOrder) -> Option<Order> {
    let id = cmd.order_id.clone();
    let mut order = Order::default();
    let events = order
        .decide(OrderCommand::Place(Box::new(cmd)), services)
        .ok()?;
    for (i, e) in events.into_iter().enumerate() {
        order.apply(e.clone());
        let _ = on_order_event(&services.setup, &id, i + 1, &e, &order);
    }
    Some(order)
}

/// The fuzz target `crm_request`: the bytes as the body of `POST /v1/orders` (and of `/rerun`
/// and `/rebills`), through the service's parsing and validation in the handler's order, then,
/// when valid, through the domain with the sample setup.
pub fn crm_request(data: &[u8]) {
    if let Ok(rerun) = serde_json::from_slice::<RerunIn>(data) {
        let _ = rerun.gateway_id.trim().is_empty();
    }
    if let Ok(rebill) = serde_json::from_slice::<RebillIn>(data) {
        let _ = convert::attempt(&rebill.attempt);
        if let Some(m) = rebill.amount_minor {
            let _ = convert::money(m, "USD");
        }
    }
    let Ok(body) = serde_json::from_slice::<OrderIn>(data) else {
        return;
    };
    // What was accepted serializes back to itself (the fingerprint of R5/idempotent replays
    // is computed from it).
    match serde_json::to_vec(&body).map(|j| serde_json::from_slice::<OrderIn>(&j)) {
        Ok(Ok(back)) if back == body => {}
        other => panic!("an accepted order body does not round-trip: {other:?}"),
    }
    let _ = convert::fingerprint(&body);
    let _ = convert::customer(&body.customer);
    let _ = convert::gateway_answer(&body.attempt);
    let _ = convert::decline_facts(&body.attempt);
    let _ = convert::token_card(&body.card);
    // What the service accepts (the same checks) goes on to the domain.
    let Ok(checked) = convert::check_order(&body) else {
        return;
    };
    let card = convert::token_card(&body.card).unwrap_or_else(|| CardToken {
        token: "tok_fuzz".into(),
        bin: "411111".into(),
        last4: "1111".into(),
        exp_month: body.card.exp_month,
        exp_year: body.card.exp_year,
        holder: body.card.holder.clone(),
        fingerprint: body.card.fingerprint.clone(),
    });
    let cmd = convert::place_order(&body, checked, card);
    let services = fuzz_services(sample_setup());
    if let Some(order) = place_and_follow(&services, cmd) {
        let _ = order.decide(
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
            &services,
        );
    }
}

/// How many of each kind of setup entry [`setup_loader`] exercises (a bound on its time).
const EXERCISE: usize = 6;

/// The fuzz target `setup_loader`: the bytes as a setup file. A setup that loads must be usable:
/// every route, plan, mapping and aggregate that reads it is exercised, none may panic.
pub fn setup_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(setup) = Setup::from_toml_str(text) else {
        return;
    };
    exercise_setup(setup);
}

/// Exercises a loaded setup the way the service and the simulator use it.
pub fn exercise_setup(setup: Setup) {
    let _ = setup.summary();
    let t0 = super::fixtures::t0();
    let regular: Vec<_> = setup
        .gateways
        .iter()
        .filter_map(Gateway::as_regular)
        .map(|g| g.id.clone())
        .take(EXERCISE)
        .collect();
    let mut profiles: Vec<_> = setup
        .gateway_profiles
        .iter()
        .map(|p| Some(p.id.clone()))
        .take(EXERCISE)
        .collect();
    profiles.push(None);
    let soft = EffectiveDecline {
        decline_type: DeclineType::Soft,
        mapped_by: None,
        customer_message: None,
    };
    // D2: mapping, C1-C4: routes.
    for gateway in &regular {
        for message in ["Insufficient funds", "Do not honor", "stolen", ""] {
            for order_type in [
                OrderType::NewSale,
                OrderType::TrialCompletion,
                OrderType::Recurring,
            ] {
                let facts = DeclineFacts {
                    gateway: gateway.clone(),
                    response_code: "05".into(),
                    response_message: message.into(),
                    processor_verdict: DeclineType::Hard,
                    visa_category: None,
                    mastercard_advice_code: None,
                };
                let _ = setup.effective_decline(&facts, order_type);
            }
        }
        for campaign in setup.campaigns.iter().take(EXERCISE) {
            for profile in &profiles {
                for ip in [Some("203.0.113.7"), None] {
                    let _ = cascade_route(
                        &setup,
                        &CascadeInput {
                            order_type: OrderType::NewSale,
                            campaign: &campaign.id,
                            declined_gateway: gateway,
                            gateway_profile: profile.as_ref(),
                            ip_address: ip,
                            decline: &soft,
                        },
                    );
                }
            }
        }
        // Y1-Y3: the plan of a rebill billing here, and when each re-attempt falls due.
        let plan = recycle_plan(setup.recycle_profile_for(gateway));
        let mut at = t0;
        for attempt in &plan.attempts {
            match plan.due_at(attempt.number, at) {
                Some(due) => at = due,
                None => break,
            }
        }
    }
    let services = fuzz_services(setup.clone());
    // Subscriptions of every recurring product (their first bill date, their cycles), and a
    // soft-declined rebill on each regular gateway (recycle billing).
    for campaign in setup.campaigns.iter().take(EXERCISE) {
        for product in campaign.products.iter().take(EXERCISE) {
            let Some(recurring) = product.recurring else {
                continue;
            };
            let Some(billing) = regular.first() else {
                continue;
            };
            let mut sub = Subscription::default();
            let create = SubscriptionCommand::Create(Box::new(CreateSubscription {
                subscription_id: "fuzz-sub".into(),
                origin_order_id: "fuzz-order".into(),
                campaign_id: campaign.id.clone(),
                product_id: product.id.clone(),
                price: salvage_domain::Money {
                    amount_minor: product.price_minor.max(1),
                    currency: campaign.currency,
                },
                billing_gateway: billing.clone(),
                credential: CredentialKind::Token,
                terms: RecurringTerms::from(recurring),
                card: None,
            }));
            let Ok(events) = sub.decide(create, &services) else {
                continue;
            };
            for e in events {
                sub.apply(e);
            }
            for outcome in [
                salvage_domain::subscription::RebillOutcome::Approved {
                    gateway: billing.clone(),
                },
                salvage_domain::subscription::RebillOutcome::Declined {
                    facts: DeclineFacts {
                        gateway: billing.clone(),
                        response_code: "05".into(),
                        response_message: "Issuer unavailable".into(),
                        processor_verdict: DeclineType::Soft,
                        visa_category: None,
                        mastercard_advice_code: None,
                    },
                    effective: soft.clone(),
                },
            ] {
                let cmd = SubscriptionCommand::RecordRebill {
                    order_id: OrderId::new("fuzz-rebill"),
                    outcome,
                };
                if let Ok(events) = sub.decide(cmd, &services) {
                    let mut next = sub.clone();
                    for e in events {
                        next.apply(e);
                    }
                }
            }
        }
        // A soft-declined sale of each product on each regular gateway (cascades, O6).
        for gateway in &regular {
            for product in campaign.products.iter().take(EXERCISE) {
                let amount = salvage_domain::Money {
                    amount_minor: product.price_minor.max(1),
                    currency: campaign.currency,
                };
                let cmd = PlaceOrder {
                    order_id: "fuzz-order".into(),
                    order_type: OrderType::NewSale,
                    campaign_id: campaign.id.clone(),
                    subscription_id: None,
                    ip_address: Some("203.0.113.7".into()),
                    amount,
                    customer: super::fixtures::customer(),
                    card: super::fixtures::card(),
                    items: vec![salvage_domain::customer::OrderItem {
                        product_id: product.id.clone(),
                        quantity: 1,
                        price_minor: product.price_minor,
                    }],
                    gateway: gateway.clone(),
                    gateway_profile: campaign.gateway_profile.clone(),
                    result: salvage_domain::order::AttemptResult::Declined(DeclineFacts {
                        gateway: gateway.clone(),
                        response_code: "05".into(),
                        response_message: "Issuer unavailable".into(),
                        processor_verdict: DeclineType::Soft,
                        visa_category: None,
                        mastercard_advice_code: None,
                    }),
                };
                if let Some(order) = place_and_follow(&services, cmd) {
                    let _ = order.decide(
                        OrderCommand::RecordCascadeStep {
                            step: 1,
                            answer: GatewayAnswer::Approved {
                                transaction_id: None,
                            },
                        },
                        &services,
                    );
                }
            }
        }
    }
}

/// The sample setup's text: a seed for the `setup_loader` corpus.
pub fn sample_setup_text() -> &'static str {
    SAMPLE_SETUP
}
