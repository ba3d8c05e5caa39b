//! What the feed export's unit tests share: a recorder that turns a replayed trace into the feed
//! the service would serve, the round trip (trace, feed, exported trace, replay) and the short
//! stories that exercise every mapping.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::order::{OrderCommand, OrderEvent, PlaceOrder, ResultSource};
use salvage_domain::process_manager::{Effect, FollowUp};
use salvage_domain::subscription::{SubscriptionCommand, SubscriptionEvent, SubscriptionStatus};
use salvage_domain::{Money, OrderId, OrderType, Setup, SubscriptionId};
use salvage_gateway::feed::FeedEvent;
use serde_json::{json, Value};

use super::exporter::{to_jsonl, FeedExporter};
use crate::replay::{replay, ReplayOutcome};
use crate::runtime::{Driver, Runtime, Store};
use crate::trace::{self, NumberedLine, TraceEntry, TraceLine};

pub(super) const SETUP: &str = include_str!("../../../examples/salvage.toml");
pub(super) const EXAMPLE: &str = include_str!("../../traces/example.jsonl");

pub(super) fn setup() -> Arc<Setup> {
    Arc::new(Setup::from_toml_str(SETUP).expect("the sample setup"))
}

/// Records every committed event as the service's feed shows it.
#[derive(Default)]
struct Recorder {
    feed: Vec<FeedEvent>,
    sequences: HashMap<(String, String), i64>,
}

impl Recorder {
    fn record(&mut self, kind: &str, id: &str, name: &str, payload: Value) {
        let sequence = self
            .sequences
            .entry((kind.to_string(), id.to_string()))
            .or_insert(0);
        *sequence += 1;
        self.feed.push(FeedEvent {
            position: self.feed.len() as i64 + 1,
            aggregate_type: kind.into(),
            aggregate_id: id.into(),
            sequence: *sequence,
            event_type: name.into(),
            event_version: "1".into(),
            payload,
        });
    }
}

impl Driver for Recorder {
    fn effect(&mut self, _: &Store, _: DateTime<Utc>, _: Effect, _: &mut VecDeque<FollowUp>) {}

    fn order_event(
        &mut self,
        id: &OrderId,
        event: &OrderEvent,
        _: &salvage_domain::order::Order,
        _: &mut VecDeque<FollowUp>,
    ) {
        let payload = serde_json::to_value(event).expect("an event serializes");
        self.record("order", id.as_str(), event.name(), payload);
    }

    fn subscription_event(
        &mut self,
        id: &SubscriptionId,
        event: &SubscriptionEvent,
        _: &salvage_domain::subscription::Subscription,
        _: &mut VecDeque<FollowUp>,
    ) {
        let payload = serde_json::to_value(event).expect("an event serializes");
        self.record("subscription", id.as_str(), event.name(), payload);
    }
}

/// Runs a trace through the runtime as the replay does, and returns the feed it commits:
/// what the service would serve for the same inputs.
pub(super) fn feed_of(lines: &[NumberedLine]) -> Vec<FeedEvent> {
    let mut rt = Runtime::new(setup(), lines[0].line.at);
    let mut rec = Recorder::default();
    for l in lines {
        rt.advance_to(l.line.at, &mut rec);
        let order = |id: &OrderId, command| (id.clone(), command);
        let order_command = match &l.line.entry {
            TraceEntry::PlaceOrder { order: o } => {
                Some(order(&o.order_id, OrderCommand::Place(o.clone())))
            }
            TraceEntry::CascadeAnswer {
                order_id,
                step,
                answer,
            } => Some(order(
                order_id,
                OrderCommand::RecordCascadeStep {
                    step: *step,
                    answer: answer.clone(),
                },
            )),
            TraceEntry::FlexFactorAnswer {
                order_id,
                attempt,
                answer,
            } => Some(order(
                order_id,
                OrderCommand::RecordFlexFactorAnswer {
                    attempt: *attempt,
                    answer: answer.clone(),
                },
            )),
            TraceEntry::Rerun { order_id, gateway } => Some(order(
                order_id,
                OrderCommand::RequestRerun {
                    gateway: gateway.clone(),
                },
            )),
            TraceEntry::FlexFactorResult {
                order_id,
                result,
                source,
            } => Some(order(
                order_id,
                OrderCommand::ApplyFlexFactorResult {
                    result: result.clone(),
                    source: source.clone().unwrap_or(ResultSource::Replay),
                },
            )),
            TraceEntry::Rebill {
                subscription_id,
                order_id,
                gateway,
                amount_minor,
                result,
            } => {
                let sub = rt
                    .store
                    .subscription(subscription_id)
                    .expect("subscription");
                let origin = sub
                    .origin_order_id
                    .as_ref()
                    .and_then(|o| rt.store.order(o))
                    .and_then(|o| o.details.clone())
                    .expect("origin order");
                let price = sub.price.expect("price");
                let amount = Money {
                    amount_minor: amount_minor.unwrap_or(price.amount_minor),
                    currency: price.currency,
                };
                let place = PlaceOrder {
                    order_id: order_id.clone(),
                    order_type: if sub.status == Some(SubscriptionStatus::Trial) {
                        OrderType::TrialCompletion
                    } else {
                        OrderType::Recurring
                    },
                    campaign_id: origin.campaign_id.clone(),
                    subscription_id: Some(subscription_id.clone()),
                    ip_address: origin.ip_address.clone(),
                    amount,
                    customer: origin.customer.clone(),
                    card: origin.card.clone(),
                    items: vec![salvage_domain::customer::OrderItem {
                        product_id: sub.product_id.clone().expect("product"),
                        quantity: 1,
                        price_minor: amount.amount_minor,
                    }],
                    gateway: gateway
                        .clone()
                        .or(sub.billing_gateway.clone())
                        .expect("gateway"),
                    gateway_profile: None,
                    result: result.clone(),
                };
                Some(order(order_id, OrderCommand::Place(Box::new(place))))
            }
            TraceEntry::RecycleAnswer {
                subscription_id,
                order_id,
                attempt,
                answer,
            } => {
                let _ = rt.subscription_command(
                    subscription_id.clone(),
                    SubscriptionCommand::RecordRecycleAttemptResult {
                        order_id: order_id.clone(),
                        attempt: *attempt,
                        answer: answer.clone(),
                    },
                    &mut rec,
                );
                None
            }
            TraceEntry::CancelSubscription {
                subscription_id,
                reason,
            } => {
                let _ = rt.subscription_command(
                    subscription_id.clone(),
                    SubscriptionCommand::Cancel {
                        reason: reason.clone(),
                    },
                    &mut rec,
                );
                None
            }
            TraceEntry::AdvanceTo {} => None,
        };
        if let Some((id, command)) = order_command {
            let _ = rt.order_command(id, command, &mut rec);
        }
    }
    rec.feed
}

pub(super) fn numbered(lines: Vec<TraceLine>) -> Vec<NumberedLine> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| NumberedLine {
            number: i + 1,
            line,
        })
        .collect()
}

/// The trace replayed, then its feed exported and replayed again: the same end states.
pub(super) fn round_trip(text: &str) -> (ReplayOutcome, ReplayOutcome, Vec<TraceLine>) {
    let original = trace::parse(text).expect("the trace parses");
    let feed = feed_of(&original);
    let mut exporter = FeedExporter::new();
    for e in &feed {
        exporter.push(e).expect("the feed exports");
    }
    // Up to the original's end, as `--until` does: timers without events fire too.
    let end = original.last().map(|l| l.line.at);
    let (exported, counts) = exporter.finish_until(end).expect("the feed exports");
    assert_eq!(counts.events, feed.len());
    assert_eq!(counts.lines, exported.len());
    // Through its text form, as `salvage export-trace` writes it.
    let text = to_jsonl(&exported).expect("lines serialize");
    let reparsed = trace::parse(&text).expect("the exported trace parses");
    assert_eq!(
        reparsed.iter().map(|l| l.line.clone()).collect::<Vec<_>>(),
        exported
    );
    let first = replay(setup(), &original);
    let second = replay(setup(), &numbered(exported.clone()));
    assert!(
        second.refused.is_empty(),
        "the exported trace replays without refusal: {:#?}",
        second.refused
    );
    assert_eq!(
        first.orders.keys().collect::<Vec<_>>(),
        second.orders.keys().collect::<Vec<_>>()
    );
    for (id, a) in &first.orders {
        let b = &second.orders[id];
        assert_eq!(a.history, b.history, "order {id}");
        assert_eq!(a.state, b.state, "order {id}");
    }
    assert_eq!(
        first.subscriptions.keys().collect::<Vec<_>>(),
        second.subscriptions.keys().collect::<Vec<_>>()
    );
    for (id, a) in &first.subscriptions {
        let b = &second.subscriptions[id];
        assert_eq!(a.history, b.history, "subscription {id}");
        assert_eq!(a.state, b.state, "subscription {id}");
    }
    assert_eq!(first.notifications, second.notifications);
    assert_eq!(first.pending_timers, second.pending_timers);
    let effects = |o: &ReplayOutcome| {
        o.effects
            .iter()
            .map(|e| (e.at, e.effect.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(effects(&first), effects(&second));
    // Nothing the domain derives is an input of the exported trace.
    let inputs = feed.len()
        - exported
            .iter()
            .filter(|l| l.entry == TraceEntry::AdvanceTo {})
            .count();
    assert!(exported.len() <= inputs);
    (first, second, exported)
}

pub(super) fn sale(
    at: &str,
    id: &str,
    gateway: &str,
    profile: Option<&str>,
    result: Value,
) -> String {
    sale_of(at, id, gateway, profile, "cleanser", 1999, None, result)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn sale_of(
    at: &str,
    id: &str,
    gateway: &str,
    profile: Option<&str>,
    product: &str,
    amount: i64,
    subscription: Option<&str>,
    result: Value,
) -> String {
    json!({"at": at, "kind": "place_order", "order": {
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare",
        "subscription_id": subscription, "ip_address": "203.0.113.9",
        "amount": {"amount_minor": amount, "currency": "USD"},
        "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        "card": {"token": format!("tok-{id}"), "bin": "411111", "last4": "1111", "exp_month": 12, "exp_year": 2030},
        "items": [{"product_id": product, "quantity": 1, "price_minor": amount}],
        "gateway": gateway, "gateway_profile": profile, "result": result}})
    .to_string()
}

pub(super) fn soft(gateway: &str) -> Value {
    json!({"result": "declined", "gateway": gateway, "response_code": "05",
           "response_message": "Do not honor", "processor_verdict": "soft"})
}

pub(super) fn line(v: Value) -> String {
    v.to_string()
}

/// Every mapping of the table, each exercised by a short story.
pub(super) fn stories() -> String {
    let webhook = |id: &str| json!({"kind": "webhook", "delivery_id": id, "resent": false});
    [
        // c-1: the cascade's first step (nmi-backup) approves.
        sale("2026-03-02T10:00:00Z", "c-1", "nmi-main", None, soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:00:01Z", "kind": "cascade_answer", "order_id": "c-1", "step": 1, "answer": {"result": "approved"}})),
        // c-2: the cascade step's outcome is unknown: pending.
        sale("2026-03-02T10:01:00Z", "c-2", "nmi-main", None, soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:01:01Z", "kind": "cascade_answer", "order_id": "c-2", "step": 1, "answer": {"result": "pending"}})),
        // c-3: nmi-backup declines, FlexFactor challenges (C5: declined, cancelled).
        sale("2026-03-02T10:02:00Z", "c-3", "nmi-main", None, soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:02:01Z", "kind": "cascade_answer", "order_id": "c-3", "step": 1, "answer": soft("nmi-backup")})),
        line(json!({"at": "2026-03-02T10:02:02Z", "kind": "flexfactor_answer", "order_id": "c-3", "attempt": 1, "answer": {"status": "challenge", "flexfactor_order_id": "ff-c3"}})),
        // c-4: FlexFactor wants a capture, then the capture approves.
        sale("2026-03-02T10:03:00Z", "c-4", "nmi-main", Some("atri-us"), soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:03:01Z", "kind": "flexfactor_answer", "order_id": "c-4", "attempt": 1, "answer": {"status": "capture_required", "flexfactor_order_id": "ff-c4"}})),
        line(json!({"at": "2026-03-02T10:03:02Z", "kind": "flexfactor_answer", "order_id": "c-4", "attempt": 1, "answer": {"status": "approved", "flexfactor_order_id": "ff-c4", "confirmation_id": "CONF-4"}})),
        // c-5, c-6: no answer, and an answer a cascade cannot use.
        sale("2026-03-02T10:04:00Z", "c-5", "nmi-main", Some("atri-us"), soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:04:01Z", "kind": "flexfactor_answer", "order_id": "c-5", "attempt": 1, "answer": {"status": "unknown", "detail": "timeout"}})),
        sale("2026-03-02T10:05:00Z", "c-6", "nmi-main", Some("atri-us"), soft("nmi-main")),
        line(json!({"at": "2026-03-02T10:05:01Z", "kind": "flexfactor_answer", "order_id": "c-6", "attempt": 1, "answer": {"status": "processing", "flexfactor_order_id": "ff-c6"}})),
        // r-1: a refund before the completion (O7: deferred, then applied).
        sale("2026-03-02T11:00:00Z", "r-1", "stripe-eu", None, soft("stripe-eu")),
        line(json!({"at": "2026-03-02T11:00:01Z", "kind": "rerun", "order_id": "r-1", "gateway": "flexfactor"})),
        line(json!({"at": "2026-03-02T11:00:02Z", "kind": "flexfactor_answer", "order_id": "r-1", "attempt": 1, "answer": {"status": "submitted", "flexfactor_order_id": "ff-r1"}})),
        line(json!({"at": "2026-03-03T11:00:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "refunded"}, "source": webhook("d-r1-a")})),
        line(json!({"at": "2026-03-03T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "completed", "flexfactor_order_id": "ff-r1", "confirmation_id": "C-1"}, "source": webhook("d-r1-b")})),
        line(json!({"at": "2026-03-03T12:30:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "completed", "flexfactor_order_id": "ff-r1"}, "source": webhook("d-r1-c")})),
        // r-2: a poll without an answer, then a decline.
        sale("2026-03-02T12:00:00Z", "r-2", "stripe-eu", None, soft("stripe-eu")),
        line(json!({"at": "2026-03-02T12:00:01Z", "kind": "rerun", "order_id": "r-2", "gateway": "flexfactor"})),
        line(json!({"at": "2026-03-02T12:00:02Z", "kind": "flexfactor_answer", "order_id": "r-2", "attempt": 1, "answer": {"status": "processing", "flexfactor_order_id": "ff-r2"}})),
        line(json!({"at": "2026-03-04T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-2", "result": {"result": "still_pending"}, "source": {"kind": "status_poll"}})),
        line(json!({"at": "2026-03-05T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-2", "result": {"result": "declined"}, "source": webhook("d-r2")})),
        // r-3: FlexFactor refuses the request.
        sale("2026-03-02T13:00:00Z", "r-3", "stripe-eu", None, soft("stripe-eu")),
        line(json!({"at": "2026-03-02T13:00:01Z", "kind": "rerun", "order_id": "r-3", "gateway": "flexfactor"})),
        line(json!({"at": "2026-03-02T13:00:02Z", "kind": "flexfactor_answer", "order_id": "r-3", "attempt": 1, "answer": {"status": "rejected", "reason": "bad field"}})),
        // r-4: an answer not understood, then polls until the give-up time (O8).
        sale("2026-03-02T14:00:00Z", "r-4", "stripe-eu", None, soft("stripe-eu")),
        line(json!({"at": "2026-03-02T14:00:01Z", "kind": "rerun", "order_id": "r-4", "gateway": "flexfactor"})),
        line(json!({"at": "2026-03-02T14:00:02Z", "kind": "flexfactor_answer", "order_id": "r-4", "attempt": 1, "answer": {"status": "unrecognized", "raw_status": "WEIRD", "flexfactor_order_id": null}})),
        // r-5: a chargeback before an expiry (O7: deferred, then dropped).
        sale("2026-03-02T15:00:00Z", "r-5", "stripe-eu", None, soft("stripe-eu")),
        line(json!({"at": "2026-03-02T15:00:01Z", "kind": "rerun", "order_id": "r-5", "gateway": "flexfactor"})),
        line(json!({"at": "2026-03-02T15:00:02Z", "kind": "flexfactor_answer", "order_id": "r-5", "attempt": 1, "answer": {"status": "submitted", "flexfactor_order_id": "ff-r5"}})),
        line(json!({"at": "2026-03-04T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-5", "result": {"result": "chargeback"}, "source": webhook("d-r5-a")})),
        line(json!({"at": "2026-03-05T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-5", "result": {"result": "expired"}, "source": webhook("d-r5-b")})),
        // s-1: a rebill paid by its first re-attempt (Y2).
        sale_of("2026-03-06T09:00:00Z", "s-1", "nmi-main", None, "serum-monthly", 3999, Some("sub-1"), json!({"result": "approved"})),
        // s-2: a re-attempt whose outcome is unknown, then the CRM cancels.
        sale_of("2026-03-06T09:01:00Z", "s-2", "nmi-main", None, "serum-monthly", 3999, Some("sub-2"), json!({"result": "approved"})),
        line(json!({"at": "2026-03-10T09:00:00Z", "kind": "rebill", "subscription_id": "sub-1", "order_id": "s-1-c2", "result": soft("nmi-main")})),
        line(json!({"at": "2026-03-10T09:01:00Z", "kind": "rebill", "subscription_id": "sub-2", "order_id": "s-2-c2", "result": soft("nmi-main")})),
        line(json!({"at": "2026-03-11T09:30:00Z", "kind": "recycle_answer", "subscription_id": "sub-1", "order_id": "s-1-c2", "attempt": 1, "answer": {"result": "approved"}})),
        line(json!({"at": "2026-03-11T09:31:00Z", "kind": "recycle_answer", "subscription_id": "sub-2", "order_id": "s-2-c2", "attempt": 1, "answer": {"result": "unknown", "detail": "timeout"}})),
        line(json!({"at": "2026-03-12T00:00:00Z", "kind": "cancel_subscription", "subscription_id": "sub-2", "reason": "customer asked"})),
        // r-4's polls: still pending after the expiry and the give-up time.
        line(json!({"at": "2026-03-27T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-4", "result": {"result": "still_pending"}, "source": {"kind": "status_poll"}})),
    ]
    .into_iter()
    .map(|l| {
        let at = serde_json::from_str::<Value>(&l).expect("json")["at"].to_string();
        (at, l)
    })
    .collect::<std::collections::BTreeMap<_, _>>()
    .into_values()
    .collect::<Vec<_>>()
    .join("\n")
}

pub(super) fn event(
    position: i64,
    kind: &str,
    id: &str,
    sequence: i64,
    payload: Value,
) -> FeedEvent {
    FeedEvent {
        position,
        aggregate_type: kind.into(),
        aggregate_id: id.into(),
        sequence,
        event_type: payload["type"].as_str().unwrap_or("").into(),
        event_version: "1".into(),
        payload,
    }
}

pub(super) fn feed_of_text(text: &str) -> Vec<FeedEvent> {
    feed_of(&trace::parse(text).expect("trace"))
}
