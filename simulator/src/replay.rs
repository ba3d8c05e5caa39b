//! Replaying a trace ([`crate::trace`]) through the domain: the same runtime as the simulation
//! (real aggregates, real process manager, timers on a virtual clock), with every answer taken
//! from the trace instead of a model. Effects are recorded, not performed: what the service
//! would have called (FlexFactor, a charge, a bill, a reconciliation) shows in `effects`, and
//! what the CRM would have been told in `notifications`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::customer::OrderItem;
use salvage_domain::order::{Order, OrderCommand, OrderEvent, PlaceOrder, ResultSource};
use salvage_domain::process_manager::{Effect, FollowUp, Notification};
use salvage_domain::subscription::{
    Subscription, SubscriptionCommand, SubscriptionEvent, SubscriptionStatus,
};
use salvage_domain::{Money, OrderId, OrderType, Setup, SubscriptionId};
use serde::Serialize;

use crate::recorded::Recorded;
use crate::runtime::{Driver, Refused, Runtime, Store};
use crate::trace::{NumberedLine, TraceEntry};

/// An order at the end of the replay.
#[derive(Debug, Clone, Serialize)]
pub struct OrderOutcome {
    pub status: Option<&'static str>,
    pub order_type: Option<&'static str>,
    /// The names of its events, in order.
    pub history: Vec<&'static str>,
    /// The aggregate's whole state.
    pub state: Order,
}

/// A subscription at the end of the replay.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionOutcome {
    pub status: Option<&'static str>,
    pub cycle: u32,
    pub history: Vec<&'static str>,
    pub state: Subscription,
}

/// An effect the domain asked for.
#[derive(Debug, Clone, Serialize)]
pub struct EffectRecord {
    pub at: DateTime<Utc>,
    /// The trace line being replayed when it was asked for.
    pub line: usize,
    pub effect: Effect,
}

/// A command the domain refused.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub line: usize,
    /// The trace line's kind, or "follow_up" for a command the process manager or a timer gave.
    pub kind: &'static str,
    pub target: String,
    pub error: String,
}

/// Everything the replay ends with.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayOutcome {
    pub lines: usize,
    pub ended_at: DateTime<Utc>,
    pub orders: BTreeMap<OrderId, OrderOutcome>,
    pub subscriptions: BTreeMap<SubscriptionId, SubscriptionOutcome>,
    pub notifications: Vec<Notification>,
    pub effects: Vec<EffectRecord>,
    pub refused: Vec<Refusal>,
    /// Timers set and not yet due at the end (next bills, re-attempts, reconciliations).
    pub pending_timers: usize,
    /// Every committed event, in commit order (for `salvage calibrate`; not in the JSON).
    #[serde(skip)]
    pub events: Vec<Recorded>,
}

#[derive(Default)]
struct ReplayDriver {
    line: usize,
    notifications: Vec<Notification>,
    effects: Vec<EffectRecord>,
    refused: Vec<Refusal>,
    order_history: BTreeMap<OrderId, Vec<&'static str>>,
    subscription_history: BTreeMap<SubscriptionId, Vec<&'static str>>,
    origins: BTreeMap<SubscriptionId, OrderId>,
    events: Vec<Recorded>,
}

impl Driver for ReplayDriver {
    fn effect(
        &mut self,
        _store: &Store,
        now: DateTime<Utc>,
        effect: Effect,
        _out: &mut VecDeque<FollowUp>,
    ) {
        match effect {
            Effect::NotifyCrm(n) => self.notifications.push(n),
            effect => self.effects.push(EffectRecord {
                at: now,
                line: self.line,
                effect,
            }),
        }
    }

    fn order_event(
        &mut self,
        id: &OrderId,
        event: &OrderEvent,
        _order: &Order,
        _out: &mut VecDeque<FollowUp>,
    ) {
        self.order_history
            .entry(id.clone())
            .or_default()
            .push(event.name());
        self.events.push(Recorded::Order(id.clone(), event.clone()));
    }

    fn subscription_event(
        &mut self,
        id: &SubscriptionId,
        event: &SubscriptionEvent,
        _subscription: &Subscription,
        _out: &mut VecDeque<FollowUp>,
    ) {
        if let SubscriptionEvent::SubscriptionCreated {
            origin_order_id, ..
        } = event
        {
            self.origins.insert(id.clone(), origin_order_id.clone());
        }
        self.subscription_history
            .entry(id.clone())
            .or_default()
            .push(event.name());
        self.events
            .push(Recorded::Subscription(id.clone(), event.clone()));
    }

    fn refused(&mut self, refused: Refused) {
        let (target, error) = match refused {
            Refused::Order { order_id, error } => (format!("order {order_id}"), error.to_string()),
            Refused::Subscription {
                subscription_id,
                error,
            } => (format!("subscription {subscription_id}"), error.to_string()),
        };
        self.refused.push(Refusal {
            line: self.line,
            kind: "follow_up",
            target,
            error,
        });
    }
}

/// The rebill order of a `rebill` line, from the subscription and the order that created it.
fn rebill_order(
    store: &Store,
    origins: &BTreeMap<SubscriptionId, OrderId>,
    entry: &TraceEntry,
) -> Result<PlaceOrder, String> {
    let TraceEntry::Rebill {
        subscription_id,
        order_id,
        gateway,
        amount_minor,
        result,
    } = entry
    else {
        return Err("not a rebill".into());
    };
    let sub = store
        .subscription(subscription_id)
        .ok_or_else(|| format!("subscription {subscription_id} does not exist"))?;
    let origin = origins
        .get(subscription_id)
        .and_then(|o| store.order(o))
        .and_then(|o| o.details.as_ref())
        .ok_or_else(|| {
            format!("the order that created subscription {subscription_id} is unknown")
        })?;
    let (Some(price), Some(campaign), Some(product), Some(billing)) = (
        sub.price,
        &sub.campaign_id,
        &sub.product_id,
        &sub.billing_gateway,
    ) else {
        return Err(format!("subscription {subscription_id} is incomplete"));
    };
    let amount = Money {
        amount_minor: amount_minor.unwrap_or(price.amount_minor),
        currency: price.currency,
    };
    Ok(PlaceOrder {
        order_id: order_id.clone(),
        order_type: if sub.status == Some(SubscriptionStatus::Trial) {
            OrderType::TrialCompletion
        } else {
            OrderType::Recurring
        },
        campaign_id: campaign.clone(),
        subscription_id: Some(subscription_id.clone()),
        ip_address: origin.ip_address.clone(),
        amount,
        customer: origin.customer.clone(),
        card: origin.card.clone(),
        items: vec![OrderItem {
            product_id: product.clone(),
            quantity: 1,
            price_minor: amount.amount_minor,
        }],
        gateway: gateway.clone().unwrap_or_else(|| billing.clone()),
        gateway_profile: None,
        result: result.clone(),
    })
}

/// Replays `lines` through the domain with `setup`.
pub fn replay(setup: Arc<Setup>, lines: &[NumberedLine]) -> ReplayOutcome {
    let start = lines
        .first()
        .map(|l| l.line.at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut rt = Runtime::new(setup, start);
    let mut d = ReplayDriver::default();
    for l in lines {
        d.line = l.number;
        rt.advance_to(l.line.at, &mut d);
        let entry = &l.line.entry;
        let (target, result): (String, Result<(), String>) = match entry {
            TraceEntry::PlaceOrder { order } => (
                format!("order {}", order.order_id),
                rt.order_command(
                    order.order_id.clone(),
                    OrderCommand::Place(order.clone()),
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::CascadeAnswer {
                order_id,
                step,
                answer,
            } => (
                format!("order {order_id}"),
                rt.order_command(
                    order_id.clone(),
                    OrderCommand::RecordCascadeStep {
                        step: *step,
                        answer: answer.clone(),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::FlexFactorAnswer {
                order_id,
                attempt,
                answer,
            } => (
                format!("order {order_id}"),
                rt.order_command(
                    order_id.clone(),
                    OrderCommand::RecordFlexFactorAnswer {
                        attempt: *attempt,
                        answer: answer.clone(),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::Rerun { order_id, gateway } => (
                format!("order {order_id}"),
                rt.order_command(
                    order_id.clone(),
                    OrderCommand::RequestRerun {
                        gateway: gateway.clone(),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::FlexFactorResult {
                order_id,
                result,
                source,
            } => (
                format!("order {order_id}"),
                rt.order_command(
                    order_id.clone(),
                    OrderCommand::ApplyFlexFactorResult {
                        result: result.clone(),
                        source: source.clone().unwrap_or(ResultSource::Replay),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::Rebill {
                subscription_id, ..
            } => {
                let target = format!("subscription {subscription_id}");
                match rebill_order(&rt.store, &d.origins, entry) {
                    Ok(place) => (
                        target,
                        rt.order_command(
                            place.order_id.clone(),
                            OrderCommand::Place(Box::new(place)),
                            &mut d,
                        )
                        .map_err(|e| e.to_string()),
                    ),
                    Err(e) => (target, Err(e)),
                }
            }
            TraceEntry::RecycleAnswer {
                subscription_id,
                order_id,
                attempt,
                answer,
            } => (
                format!("subscription {subscription_id}"),
                rt.subscription_command(
                    subscription_id.clone(),
                    SubscriptionCommand::RecordRecycleAttemptResult {
                        order_id: order_id.clone(),
                        attempt: *attempt,
                        answer: answer.clone(),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::CancelSubscription {
                subscription_id,
                reason,
            } => (
                format!("subscription {subscription_id}"),
                rt.subscription_command(
                    subscription_id.clone(),
                    SubscriptionCommand::Cancel {
                        reason: reason.clone(),
                    },
                    &mut d,
                )
                .map_err(|e| e.to_string()),
            ),
            TraceEntry::AdvanceTo {} => (String::new(), Ok(())),
        };
        if let Err(error) = result {
            d.refused.push(Refusal {
                line: l.number,
                kind: entry.kind(),
                target,
                error,
            });
        }
    }
    let orders = rt
        .store
        .orders
        .iter()
        .map(|(id, held)| {
            let o = &held.state;
            (
                id.clone(),
                OrderOutcome {
                    status: o.status.map(|s| s.as_str()),
                    order_type: o.details.as_ref().map(|d| d.order_type.as_str()),
                    history: d.order_history.get(id).cloned().unwrap_or_default(),
                    state: o.clone(),
                },
            )
        })
        .collect();
    let subscriptions = rt
        .store
        .subscriptions
        .iter()
        .map(|(id, held)| {
            let s = &held.state;
            (
                id.clone(),
                SubscriptionOutcome {
                    status: s.status.map(|x| x.as_str()),
                    cycle: s.cycle,
                    history: d.subscription_history.get(id).cloned().unwrap_or_default(),
                    state: s.clone(),
                },
            )
        })
        .collect();
    ReplayOutcome {
        lines: lines.len(),
        ended_at: rt.now(),
        orders,
        subscriptions,
        notifications: d.notifications,
        effects: d.effects,
        refused: d.refused,
        pending_timers: rt.pending_timers(),
        events: d.events,
    }
}

impl ReplayOutcome {
    /// Pretty JSON, ending with a newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }

    /// The end states as a short text table.
    pub fn summary_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} line(s) replayed up to {}",
            self.lines,
            self.ended_at.to_rfc3339()
        );
        let _ = writeln!(out, "orders:");
        for (id, o) in &self.orders {
            let salvage = o
                .state
                .salvage
                .as_ref()
                .map(|s| {
                    format!("salvage #{} {} {:?}", s.attempt, s.route.name(), s.state)
                        .to_lowercase()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<16} {:<17} {:<16} {}",
                id.as_str(),
                o.order_type.unwrap_or("-"),
                o.status.unwrap_or("-"),
                salvage
            );
        }
        let _ = writeln!(out, "subscriptions:");
        for (id, s) in &self.subscriptions {
            let _ = writeln!(
                out,
                "  {:<16} {:<15} cycle {:<3} billing on {} ({})",
                id.as_str(),
                s.status.unwrap_or("-"),
                s.cycle,
                s.state
                    .billing_gateway
                    .as_ref()
                    .map(|g| g.as_str())
                    .unwrap_or("-"),
                s.state
                    .credential
                    .map(|c| match c {
                        salvage_domain::customer::CredentialKind::Token => "token",
                        salvage_domain::customer::CredentialKind::CardNumberWithoutCvv => {
                            "card number without CVV"
                        }
                    })
                    .unwrap_or("-"),
            );
        }
        let _ = writeln!(
            out,
            "{} notification(s), {} effect(s), {} refused command(s), {} timer(s) pending",
            self.notifications.len(),
            self.effects.len(),
            self.refused.len(),
            self.pending_timers
        );
        for r in &self.refused {
            let _ = writeln!(
                out,
                "  line {}: {} {}: {}",
                r.line, r.kind, r.target, r.error
            );
        }
        out
    }
}
