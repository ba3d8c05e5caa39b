//! What must hold after every step: the rule invariants on the system under test alone
//! ([`check`]), and the agreement of the system with the reference model ([`compare`]).

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::Aggregate;
use salvage_domain::order::{CascadeOutcome, Order, OrderEvent, SalvageRoute};
use salvage_domain::ports::SubmissionMode;
use salvage_domain::process_manager::{NotificationKind, RECONCILE_AFTER_EXPIRY};
use salvage_domain::subscription::{
    AdvanceVia, Subscription, SubscriptionEvent, SubscriptionStatus,
};
use salvage_domain::{DeclineFacts, DeclineType, OrderType};

use super::network::{self, Fact, What, Who};
use super::reference::{Card, Expect, RefState, Route};
use super::rules;
use super::world::{Source, World};

/// The failures found, one per line.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, rule: &str, message: String) {
        self.0.push(format!("[{rule}] {message}"));
    }

    fn into_result(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join("\n"))
        }
    }
}

/// D2 re-done from the raw facts with the sample's rules.
fn soft_by_rules(facts: &DeclineFacts, order_type: OrderType) -> bool {
    rules::effective_soft(
        facts.gateway.as_str(),
        facts.processor_verdict,
        &facts.response_message,
        order_type,
    )
}

fn payment(e: &OrderEvent) -> bool {
    match e {
        OrderEvent::AttemptApproved { .. }
        | OrderEvent::SalvageSucceeded { .. }
        | OrderEvent::PaidByRecycle { .. } => true,
        // A cascade step on a regular gateway; FlexFactor's is its SalvageSucceeded.
        OrderEvent::CascadeEnded {
            outcome: CascadeOutcome::Approved { gateway },
            ..
        } => !rules::is_flexfactor(gateway.as_str()),
        _ => false,
    }
}

/// Whether `value` comes back equal from its JSON.
fn round_trips<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq>(value: &T) -> bool {
    serde_json::to_string(value)
        .ok()
        .and_then(|j| serde_json::from_str::<T>(&j).ok())
        .as_ref()
        == Some(value)
}

/// Seconds since the start.
fn seconds(at: chrono::DateTime<chrono::Utc>) -> i64 {
    (at - super::fixtures::t0()).num_seconds()
}

/// A decline as the network rules read it: its Visa category (given, or from the shipped table,
/// N6) and its Mastercard advice code.
fn decline_fact(facts: &DeclineFacts) -> What {
    What::Decline {
        category: facts
            .visa_category
            .map(|c| c.0)
            .unwrap_or_else(|| rules::visa_category(&facts.response_code)),
        mac: facts
            .mastercard_advice_code
            .as_ref()
            .and_then(|m| m.0.trim().parse().ok()),
    }
}

/// What an order's event says about its card: the attempts made (by the CRM, by Salvage), the
/// declines and the approvals. Read from the events, apart from the domain's own card facts.
fn order_facts(e: &OrderEvent) -> Vec<What> {
    match e {
        OrderEvent::AttemptApproved { .. } => vec![What::Attempt(Who::Crm), What::Approval],
        OrderEvent::AttemptDeclined { facts, .. } => {
            vec![What::Attempt(Who::Crm), decline_fact(facts)]
        }
        OrderEvent::CascadeStepStarted { .. } => vec![What::Attempt(Who::CascadeStep)],
        OrderEvent::CascadeStepDeclined { facts, .. } => vec![decline_fact(facts)],
        OrderEvent::SalvageSubmitted { .. } => vec![What::Attempt(Who::HandOver)],
        OrderEvent::CascadeEnded {
            outcome: CascadeOutcome::Approved { .. },
            ..
        }
        | OrderEvent::SalvageSucceeded { .. }
        | OrderEvent::PaidByRecycle { .. } => vec![What::Approval],
        _ => Vec::new(),
    }
}

/// The same for a subscription's event (its rebills' own attempts are their orders').
fn subscription_facts(e: &SubscriptionEvent) -> Vec<What> {
    match e {
        SubscriptionEvent::RecycleAttemptStarted { .. } => vec![What::Attempt(Who::ReAttempt)],
        SubscriptionEvent::RecycleAttemptDeclined { facts, .. } => vec![decline_fact(facts)],
        SubscriptionEvent::RecycleHandedToFlexFactor { .. } => vec![What::Attempt(Who::HandOver)],
        SubscriptionEvent::CycleAdvanced { .. } => vec![What::Approval],
        _ => Vec::new(),
    }
}

/// Each card's history as the system made it: the facts of every committed event, in commit
/// order (the ordered log), on the card each order was placed with (a subscription's: its
/// origin order's).
pub fn card_histories(w: &World) -> BTreeMap<Card, Vec<Fact>> {
    let mut out: BTreeMap<Card, Vec<Fact>> = BTreeMap::new();
    for (aggregate, index) in &w.log {
        let (card, at, whats, source) = match aggregate {
            Source::Order(id) => {
                let Some(e) = w.order_history.get(id).and_then(|h| h.get(*index)) else {
                    continue;
                };
                (
                    w.order_cards.get(id).copied(),
                    e.at(),
                    order_facts(e),
                    format!("order {id} ({})", e.name()),
                )
            }
            Source::Subscription(id) => {
                let Some(e) = w.sub_history.get(id).and_then(|h| h.get(*index)) else {
                    continue;
                };
                (
                    w.subscription_card(id),
                    e.at(),
                    subscription_facts(e),
                    format!("subscription {id} ({})", e.name()),
                )
            }
        };
        let Some(card) = card else {
            continue;
        };
        for what in whats {
            out.entry(card)
                .or_default()
                .push(Fact::new(seconds(at), what, source.clone()));
        }
    }
    out
}

/// N1-N5 (N9 for hand-overs): no attempt Salvage made on a card broke the network rules, given
/// everything that had happened to the card before it.
pub fn network_violations(w: &World) -> Vec<String> {
    let mut out = Vec::new();
    for (card, facts) in card_histories(w) {
        for v in network::violations(card.network(), &facts) {
            out.push(format!("card {card:?}: {v}"));
        }
    }
    out
}

/// The rule invariants, on the system under test alone.
pub fn check(w: &World) -> Result<(), String> {
    let mut f = Failures::default();
    for v in &w.violations {
        f.add("O7/F3", v.clone());
    }
    for v in network_violations(w) {
        f.add("N1-N5", v);
    }

    // Rebuilding from the events (as stored: through JSON) gives the live state.
    for (id, order) in &w.orders {
        let history = w.order_history.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let mut folded = Order::default();
        let mut stored = Order::default();
        for e in history {
            folded.apply(e.clone());
            match serde_json::to_string(e).map(|j| serde_json::from_str::<OrderEvent>(&j)) {
                Ok(Ok(back)) => stored.apply(back),
                _ => f.add(
                    "rebuild",
                    format!(
                        "order {id}: event {} does not round-trip through JSON",
                        e.name()
                    ),
                ),
            }
        }
        if &folded != order {
            f.add(
                "rebuild",
                format!("order {id}: folding its events gives {folded:?}, live is {order:?}"),
            );
        }
        if &stored != order {
            f.add(
                "rebuild",
                format!("order {id}: folding its stored (JSON) events differs from the live state"),
            );
        }
        // The state itself, as the views keep it (JSON): the background rounds start from it.
        if !round_trips(order) {
            f.add(
                "rebuild",
                format!("order {id}: its state does not round-trip through JSON"),
            );
        }
    }
    for (id, sub) in &w.subs {
        let history = w.sub_history.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let mut folded = Subscription::default();
        let mut stored = Subscription::default();
        for e in history {
            folded.apply(e.clone());
            match serde_json::to_string(e).map(|j| serde_json::from_str::<SubscriptionEvent>(&j)) {
                Ok(Ok(back)) => stored.apply(back),
                _ => f.add(
                    "rebuild",
                    format!(
                        "subscription {id}: event {} does not round-trip through JSON",
                        e.name()
                    ),
                ),
            }
        }
        if &folded != sub {
            f.add(
                "rebuild",
                format!("subscription {id}: folding its events gives {folded:?}, live is {sub:?}"),
            );
        }
        if &stored != sub {
            f.add("rebuild", format!("subscription {id}: folding its stored (JSON) events differs from the live state"));
        }
        if !round_trips(sub) {
            f.add(
                "rebuild",
                format!("subscription {id}: its state does not round-trip through JSON"),
            );
        }
    }

    for (id, history) in &w.order_history {
        let Some(order) = w.orders.get(id) else {
            f.add("rebuild", format!("order {id} has events but no state"));
            continue;
        };
        let Some(details) = &order.details else {
            continue;
        };
        let mut state = Order::default();
        let mut last_decline: Option<(DeclineFacts, OrderType)> = None;
        let mut resolved: BTreeMap<u32, usize> = BTreeMap::new();
        let mut payments = 0;
        let mut fulfilments = 0;
        for e in history {
            let before = state.status;
            match e {
                OrderEvent::AttemptDeclined {
                    facts, effective, ..
                } => {
                    let soft = soft_by_rules(facts, details.order_type);
                    if soft != (effective.decline_type == DeclineType::Soft) {
                        f.add("D2", format!("order {id}: {:?} on {} ({}) is {:?} after mapping; the sample's rules say {}", facts.processor_verdict, facts.gateway, facts.response_message, effective.decline_type, if soft { "soft" } else { "hard" }));
                    }
                    last_decline = Some((facts.clone(), details.order_type));
                }
                OrderEvent::CascadeStepDeclined {
                    facts, effective, ..
                } => {
                    let soft = soft_by_rules(facts, OrderType::NewSale);
                    if soft != (effective.decline_type == DeclineType::Soft) {
                        f.add("D2", format!("order {id}: cascade decline on {} ({}) is {:?}; the sample's rules say {}", facts.gateway, facts.response_message, effective.decline_type, if soft { "soft" } else { "hard" }));
                    }
                    last_decline = Some((facts.clone(), OrderType::NewSale));
                }
                OrderEvent::CascadeStarted { route, .. } => {
                    let blocked = rules::is_single_transaction(details.campaign_id.as_str())
                        || details
                            .ip_address
                            .as_deref()
                            .is_none_or(|ip| ip.trim().is_empty());
                    if blocked
                        && route
                            .steps
                            .iter()
                            .any(|s| rules::is_flexfactor(s.gateway.as_str()))
                    {
                        f.add("C3/C4", format!("order {id}: its cascade route holds FlexFactor although the sale has no ip_address or is on a Single Transaction campaign"));
                    }
                }
                OrderEvent::SalvageSubmitted {
                    route,
                    mode,
                    attempt,
                    ..
                } => {
                    // D3: only effective-soft declines go to FlexFactor.
                    match &last_decline {
                        Some((facts, t)) if soft_by_rules(facts, *t) => {}
                        Some((facts, _)) => f.add("D3", format!("order {id}: submission {attempt} ({}) salvages a hard decline ({:?} \"{}\" on {})", route.name(), facts.processor_verdict, facts.response_message, facts.gateway)),
                        None => f.add("D3", format!("order {id}: submission {attempt} without any decline")),
                    }
                    if let SalvageRoute::Recycle {
                        subscription_id, ..
                    } = route
                    {
                        let last_recycle = w.sub_history.get(subscription_id).and_then(|h| {
                            h.iter().rev().find_map(|e| match e {
                                SubscriptionEvent::RecycleAttemptDeclined {
                                    order_id,
                                    facts,
                                    ..
                                } if order_id == id => Some(facts),
                                _ => None,
                            })
                        });
                        if let Some(facts) = last_recycle {
                            if !soft_by_rules(facts, OrderType::Recurring) {
                                f.add("D3", format!("order {id}: handed to FlexFactor after a hard-declined re-attempt ({})", facts.response_message));
                            }
                        }
                    }
                    if let SalvageRoute::Cascade { .. } = route {
                        let ip = details.ip_address.as_deref().unwrap_or("").trim();
                        if ip.is_empty() {
                            f.add(
                                "C3",
                                format!("order {id}: cascaded to FlexFactor without an ip_address"),
                            );
                        }
                        if rules::is_single_transaction(details.campaign_id.as_str()) {
                            f.add("C4", format!("order {id}: cascaded to FlexFactor on the Single Transaction campaign {}", details.campaign_id));
                        }
                        match mode {
                            SubmissionMode::Cit { customer_ip } if customer_ip.trim() == ip && !ip.is_empty() => {}
                            other => f.add("C5", format!("order {id}: a cascade submission must be a CIT with the customer's ip, not {other:?}")),
                        }
                    }
                }
                OrderEvent::SalvageSucceeded { attempt, .. }
                | OrderEvent::SalvageFailed { attempt, .. } => {
                    *resolved.entry(*attempt).or_default() += 1;
                }
                OrderEvent::FulfillmentRequested { .. } => fulfilments += 1,
                _ => {}
            }
            if payment(e) {
                payments += 1;
            }
            state.apply(e.clone());
            if details.order_type == OrderType::TrialCompletion
                && matches!(
                    e,
                    OrderEvent::SalvageSubmitted { .. } | OrderEvent::SalvageFailed { .. }
                )
                && state.status != before
            {
                f.add("O3", format!("order {id}: a trial completion's status moved from {before:?} to {:?} on {}", state.status, e.name()));
            }
        }
        if payments > 1 {
            f.add("O7", format!("order {id} was paid {payments} times"));
        }
        if fulfilments > 1 {
            f.add(
                "O7",
                format!("order {id}: fulfillment requested {fulfilments} times"),
            );
        }
        for (attempt, n) in resolved {
            if n > 1 {
                f.add(
                    "O7",
                    format!("order {id}: submission {attempt} resolved {n} times"),
                );
            }
        }
        // O8: a pending salvage past its expiry is reconciled.
        if let Some(s) = &order.salvage {
            if let (true, Some(expires)) = (s.state.is_open(), s.expires_at()) {
                let due = expires + RECONCILE_AFTER_EXPIRY;
                if w.now() >= due
                    && !w
                        .reconciliations
                        .iter()
                        .any(|(o, a, at)| o == id && *a == s.attempt && *at >= due)
                {
                    f.add("O8", format!("order {id}: submission {} expired at {expires} and was never reconciled", s.attempt));
                }
            }
        }
    }

    // At most one successful charge per order; one submission per (order, attempt) (F3).
    let mut approved: BTreeMap<String, usize> = BTreeMap::new();
    for c in w.charges.iter().filter(|c| c.approved) {
        *approved.entry(c.request.order_id.to_string()).or_default() += 1;
    }
    for (order, n) in approved {
        if n > 1 {
            f.add(
                "O7",
                format!("order {order}: {n} charges approved by the regular gateways"),
            );
        }
    }
    let mut submitted = BTreeSet::new();
    for (o, a, _) in &w.submissions {
        if !submitted.insert((o.clone(), *a)) {
            f.add(
                "F3",
                format!("order {o}: submission {a} sent to FlexFactor twice"),
            );
        }
    }

    for (id, sub) in &w.subs {
        // S8.
        if let Some(g) = &sub.billing_gateway {
            if rules::is_flexfactor(g.as_str()) {
                f.add("S8", format!("subscription {id} bills on FlexFactor"));
            }
        }
        let history = w.sub_history.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let mut advanced: BTreeSet<String> = BTreeSet::new();
        let mut cycle = 0;
        for e in history {
            match e {
                SubscriptionEvent::SubscriptionCreated {
                    billing_gateway, ..
                } => {
                    cycle = 1;
                    if rules::is_flexfactor(billing_gateway.as_str()) {
                        f.add("S8", format!("subscription {id} created on FlexFactor"));
                    }
                }
                SubscriptionEvent::CycleAdvanced {
                    order_id,
                    from_cycle,
                    to_cycle,
                    billing_gateway,
                    via,
                    ..
                } => {
                    if *from_cycle != cycle || *to_cycle != cycle + 1 {
                        f.add("O4", format!("subscription {id}: advance {from_cycle}->{to_cycle} after cycle {cycle}: exactly one cycle per paid rebill"));
                    }
                    cycle = *to_cycle;
                    if !advanced.insert(order_id.to_string()) {
                        f.add(
                            "O7",
                            format!(
                                "subscription {id}: rebill {order_id} advanced the cycle twice"
                            ),
                        );
                    }
                    if rules::is_flexfactor(billing_gateway.as_str()) {
                        f.add(
                            "S8",
                            format!("subscription {id}: after {order_id} it bills on FlexFactor"),
                        );
                    }
                    if *via == AdvanceVia::FlexFactor {
                        let declining = w
                            .orders
                            .get(order_id)
                            .and_then(|o| o.declining_gateway().cloned());
                        if declining.as_ref() != Some(billing_gateway) {
                            f.add("O4", format!("subscription {id}: after FlexFactor salvaged {order_id} it bills on {billing_gateway}, not on the gateway that declined it ({declining:?})"));
                        }
                    }
                }
                _ => {}
            }
        }
        if sub.cycle != cycle {
            f.add(
                "O4",
                format!(
                    "subscription {id}: cycle {} but its events count {cycle}",
                    sub.cycle
                ),
            );
        }
    }

    // Exactly one cycle advance per salvaged rebill (or trial completion), unless cancelled.
    for (id, history) in &w.order_history {
        for e in history {
            let sub = match e {
                OrderEvent::SalvageSucceeded {
                    route:
                        SalvageRoute::Recycle {
                            subscription_id, ..
                        },
                    ..
                } => Some(subscription_id.clone()),
                OrderEvent::SalvageSucceeded {
                    route: SalvageRoute::Rerun,
                    ..
                } => w
                    .orders
                    .get(id)
                    .and_then(|o| o.details.as_ref())
                    .and_then(|d| {
                        (d.order_type != OrderType::NewSale)
                            .then(|| d.subscription_id.clone())
                            .flatten()
                    }),
                _ => None,
            };
            let Some(sub) = sub else {
                continue;
            };
            let advances = w
                .sub_history
                .get(&sub)
                .map(|h| {
                    h.iter()
                        .filter(|e| matches!(e, SubscriptionEvent::CycleAdvanced { order_id, .. } if order_id == id))
                        .count()
                })
                .unwrap_or(0);
            let cancelled = w
                .subs
                .get(&sub)
                .is_some_and(|s| s.status == Some(SubscriptionStatus::Cancelled));
            if advances > 1 || (advances == 0 && !cancelled) {
                f.add("O4", format!("order {id} was salvaged by FlexFactor: subscription {sub} advanced {advances} times for it, not once"));
            }
        }
    }

    // O7: no second notification.
    let mut ids = BTreeSet::new();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for n in &w.notifications {
        if !ids.insert(n.event_id.clone()) {
            f.add("O7", format!("notification {} sent twice", n.event_id));
        }
        let order = n
            .order_id
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default();
        let sub = n
            .subscription_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let key = match &n.kind {
            NotificationKind::OrderCompleted => Some(format!("completed {order}")),
            NotificationKind::Refunded => Some(format!("refunded {order}")),
            NotificationKind::Chargeback => Some(format!("chargeback {order}")),
            NotificationKind::SubscriptionAdvanced { cycle, .. } => {
                Some(format!("advanced {sub} to {cycle}"))
            }
            NotificationKind::RecycleFailed { .. } => Some(format!("recycle failed {sub} {order}")),
            _ => None,
        };
        if let Some(k) = key {
            *per.entry(k).or_default() += 1;
        }
    }
    for (k, n) in per {
        if n > 1 {
            f.add("O7", format!("notification \"{k}\" sent {n} times"));
        }
    }
    f.into_result()
}

fn route_matches(route: &SalvageRoute, model: &Route) -> bool {
    match (route, model) {
        (SalvageRoute::Cascade { step }, Route::Cascade { step: s }) => step == s,
        (SalvageRoute::Rerun, Route::Rerun) => true,
        (
            SalvageRoute::Recycle {
                subscription_id,
                recycle_attempt,
                ..
            },
            Route::Recycle {
                subscription,
                attempt,
            },
        ) => subscription_id.as_str() == subscription && recycle_attempt == attempt,
        _ => false,
    }
}

/// The system agrees with the reference model.
pub fn compare(w: &World, m: &RefState) -> Result<(), String> {
    let mut f = Failures::default();
    let outcome = match m.last {
        Expect::Ok => Ok(()),
        Expect::Refused(code) => Err(code),
    };
    if w.last != outcome {
        f.add(
            "model",
            format!(
                "the command answered {:?}; the model expects {:?}",
                w.last, outcome
            ),
        );
    }
    if w.minutes() != m.now {
        f.add(
            "model",
            format!(
                "the clock is at {} minutes; the model at {}",
                w.minutes(),
                m.now
            ),
        );
    }
    if w.refusals.len() != m.refusals as usize {
        f.add(
            "model",
            format!(
                "{} follow-up or timer commands were refused ({:?}); the model expects {}",
                w.refusals.len(),
                w.refusals,
                m.refusals
            ),
        );
    }

    let live: BTreeSet<&str> = w.orders.keys().map(|k| k.as_str()).collect();
    let model: BTreeSet<&str> = m.orders.keys().map(String::as_str).collect();
    if live != model {
        f.add("model", format!("orders {live:?}; the model has {model:?}"));
    }
    for (id, mo) in &m.orders {
        let Some(o) = w.order(id) else {
            continue;
        };
        let rule = match mo.kind {
            OrderType::TrialCompletion => "O3",
            OrderType::Recurring => "O4/O5",
            OrderType::NewSale => "O1/O2",
        };
        if o.status != Some(mo.status) {
            f.add(
                rule,
                format!(
                    "order {id}: status {:?}, the model says {:?}",
                    o.status, mo.status
                ),
            );
        }
        let paid = o.paid_by.as_ref().map(|g| g.as_str());
        if paid != mo.paid_by {
            f.add(
                rule,
                format!(
                    "order {id}: paid by {paid:?}, the model says {:?}",
                    mo.paid_by
                ),
            );
        }
        if o.fulfillment_requested != mo.fulfilled {
            f.add(
                "O1",
                format!(
                    "order {id}: fulfillment requested {}, the model says {}",
                    o.fulfillment_requested, mo.fulfilled
                ),
            );
        }
        let deferred: Vec<&str> = o.deferred.iter().map(|(r, _)| r.name()).collect();
        let model_deferred: Vec<&str> = mo
            .deferred
            .iter()
            .map(|d| match d {
                super::reference::Delivery::Refunded => "refunded",
                super::reference::Delivery::Chargeback => "chargeback",
                _ => "other",
            })
            .collect();
        if deferred != model_deferred {
            f.add(
                "O7",
                format!("order {id}: deferred {deferred:?}, the model says {model_deferred:?}"),
            );
        }
        if o.refunded != mo.refunded || o.chargeback != mo.chargeback {
            f.add(
                "K1/K3",
                format!(
                    "order {id}: refunded {} chargeback {}, the model says {} {}",
                    o.refunded, o.chargeback, mo.refunded, mo.chargeback
                ),
            );
        }
        match (&o.salvage, &mo.salvage) {
            (None, None) => {}
            (Some(s), Some(ms)) => {
                if s.attempt != ms.attempt
                    || !route_matches(&s.route, &ms.route)
                    || s.state != ms.state
                {
                    f.add(
                        "O7",
                        format!(
                            "order {id}: salvage {} {:?} {:?}, the model says {} {:?} {:?}",
                            s.attempt, s.route, s.state, ms.attempt, ms.route, ms.state
                        ),
                    );
                }
                let expires = s
                    .expires_at()
                    .map(|e| (e - super::fixtures::t0()).num_minutes());
                if expires != ms.expires {
                    f.add("R2/Y3", format!("order {id}: salvage expires at minute {expires:?}, the model says {:?}", ms.expires));
                }
            }
            (s, ms) => f.add(
                "model",
                format!("order {id}: salvage {s:?}, the model says {ms:?}"),
            ),
        }
        let skipped = w
            .order_history
            .get(&salvage_domain::OrderId::new(id.as_str()))
            .and_then(|h| {
                h.iter().rev().find_map(|e| match e {
                    OrderEvent::CascadeSkipped { reason, .. } => Some(*reason),
                    _ => None,
                })
            });
        if skipped != mo.skipped {
            f.add(
                "C3/C4",
                format!(
                    "order {id}: cascade skipped for {skipped:?}, the model says {:?}",
                    mo.skipped
                ),
            );
        }
        let blocked: Vec<&str> = w
            .order_history
            .get(&salvage_domain::OrderId::new(id.as_str()))
            .map(|h| {
                h.iter()
                    .filter_map(|e| match e {
                        OrderEvent::AttemptBlocked { rule, .. } => Some(rule.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if blocked != mo.blocked {
            f.add(
                "N7",
                format!(
                    "order {id}: attempts blocked by {blocked:?}, the model says {:?}",
                    mo.blocked
                ),
            );
        }
        let left_out = o.cascade.as_ref().and_then(|c| c.route.flexfactor_skipped);
        if left_out != mo.flexfactor_left_out {
            f.add("C3/C4", format!("order {id}: FlexFactor left out of the cascade for {left_out:?}, the model says {:?}", mo.flexfactor_left_out));
        }
    }

    let live: BTreeSet<&str> = w.subs.keys().map(|k| k.as_str()).collect();
    let model: BTreeSet<&str> = m.subs.keys().map(String::as_str).collect();
    if live != model {
        f.add(
            "O6",
            format!("subscriptions {live:?}; the model has {model:?}"),
        );
    }
    for (id, ms) in &m.subs {
        let Some(s) = w.subscription(id) else {
            continue;
        };
        if s.status != Some(ms.status) {
            f.add(
                "O4/O5",
                format!(
                    "subscription {id}: status {:?}, the model says {:?}",
                    s.status, ms.status
                ),
            );
        }
        if s.cycle != ms.cycle {
            f.add(
                "O4",
                format!(
                    "subscription {id}: cycle {}, the model says {}",
                    s.cycle, ms.cycle
                ),
            );
        }
        let history = w
            .sub_history
            .get(&salvage_domain::SubscriptionId::new(id.as_str()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let blocked: Vec<&str> = history
            .iter()
            .filter_map(|e| match e {
                SubscriptionEvent::RecycleAttemptBlocked { rule, .. } => Some(rule.as_str()),
                _ => None,
            })
            .collect();
        let delayed = history
            .iter()
            .filter(|e| matches!(e, SubscriptionEvent::RecycleAttemptDelayed { .. }))
            .count();
        if blocked != ms.blocked || delayed != ms.delayed as usize {
            f.add(
                "N4/N7",
                format!(
                    "subscription {id}: re-attempts blocked by {blocked:?} and {delayed} delayed, the model says {:?} and {}",
                    ms.blocked, ms.delayed
                ),
            );
        }
        let billing = s.billing_gateway.as_ref().map(|g| g.as_str());
        if billing != Some(ms.billing) {
            f.add(
                "O4/S8",
                format!(
                    "subscription {id}: bills on {billing:?}, the model says {}",
                    ms.billing
                ),
            );
        }
        if s.credential != Some(ms.credential) {
            f.add(
                "O6",
                format!(
                    "subscription {id}: credential {:?}, the model says {:?}",
                    s.credential, ms.credential
                ),
            );
        }
        match (&s.recycle, &ms.recycle) {
            (None, None) => {}
            (Some(r), Some(mr)) => {
                let due = r.due_at.map(|d| (d - super::fixtures::t0()).num_minutes());
                // The model forgets a due time once its attempt ran; the aggregate keeps it
                // until the next one is scheduled.
                let due_differs = mr.due.is_some() && due != mr.due;
                if r.order_id.as_str() != mr.order
                    || r.next_attempt != mr.next
                    || r.in_flight != mr.in_flight
                    || r.handed_over.is_some() != mr.handed_over
                    || r.declined_gateway.as_str() != mr.declined_gateway
                    || (s.status == Some(SubscriptionStatus::RecycleBilling) && due_differs)
                {
                    f.add(
                        "Y1-Y3",
                        format!("subscription {id}: recycle {r:?}, the model says {mr:?}"),
                    );
                }
            }
            (r, mr) => f.add(
                "Y1-Y3",
                format!("subscription {id}: recycle {r:?}, the model says {mr:?}"),
            ),
        }
    }
    f.into_result()
}

/// Both checks: every failure and the rule it breaks.
pub fn verify(w: &World, m: &RefState) -> Result<(), String> {
    let mut out = Vec::new();
    if let Err(e) = check(w) {
        out.push(e);
    }
    if let Err(e) = compare(w, m) {
        out.push(e);
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("\n"))
    }
}

/// [`verify`], for the harness: panics with the failures.
pub fn assert_all(w: &World, m: &RefState) {
    if let Err(e) = verify(w, m) {
        panic!("{e}");
    }
}
