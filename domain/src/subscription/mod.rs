//! The Subscription aggregate: billing gateway, cycle, next bill date, status, payment
//! credential and the recycle position of a declined rebill.

mod command;
mod error;
mod event;
mod rebill;
mod status;

pub use command::{CreateSubscription, RebillOutcome, SubscriptionCommand};
pub use error::SubscriptionError;
pub use event::{AdvanceVia, RecycleFailure, SubscriptionEvent};
pub use rebill::{rebill_order_id, Rebill, RebillParts};
pub use status::SubscriptionStatus;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::customer::CredentialKind;
use crate::idempotency::IdempotencyKey;
use crate::ids::{CampaignId, GatewayId, OrderId, ProductId, SubscriptionId};
use crate::money::Money;
use crate::network::{self, AttemptKind, CardFact, CardKey, NetworkRule, Verdict};
use crate::order::RecurringTerms;
use crate::order_type::OrderType;
use crate::ports::GatewayAnswer;
use crate::routing::{recycle_plan, RecyclePlan, RecycleSlot, RecycleTarget};
use crate::services::DomainServices;

/// Where the recycle billing of a declined rebill stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycleState {
    pub order_id: OrderId,
    pub declined_gateway: GatewayId,
    pub plan: RecyclePlan,
    /// The next re-attempt to run (1-based).
    pub next_attempt: u32,
    pub next_target: Option<RecycleTarget>,
    pub due_at: Option<DateTime<Utc>>,
    /// A re-attempt started and awaiting its answer.
    pub in_flight: Option<u32>,
    /// Y3: the rebill was handed to FlexFactor at this slot.
    pub handed_over: Option<RecycleSlot>,
}

/// The Subscription aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: Option<SubscriptionId>,
    /// The order that created it (its customer and card bill the rebills).
    pub origin_order_id: Option<OrderId>,
    pub status: Option<SubscriptionStatus>,
    pub campaign_id: Option<CampaignId>,
    pub product_id: Option<ProductId>,
    pub price: Option<Money>,
    pub billing_gateway: Option<GatewayId>,
    pub credential: Option<CredentialKind>,
    pub terms: Option<RecurringTerms>,
    pub cycle: u32,
    pub next_bill_at: Option<DateTime<Utc>>,
    pub recycle: Option<RecycleState>,
    /// Rebills whose outcome has been applied: each advances the cycle at most once (O7).
    pub settled_orders: Vec<OrderId>,
    /// The card the rebills charge (N8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardKey>,
    /// What this subscription did with its card within the network rules' window (N8): its
    /// re-attempts, their declines, the rebill's decline, approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub card_facts: Vec<CardFact>,
}

type Decision<'a> = crate::decision::Decision<'a, Subscription>;

/// How an event changes the subscription, written once for [`Aggregate::apply`] (`moved`: the
/// event is owned, its fields move into the state) and [`Subscription::apply_ref`] (`copied`:
/// the caller keeps the event, the fields the state keeps are copied).
macro_rules! apply_subscription_event {
    ($sub:ident, $event:expr, $own:ident) => {
        match $event {
            SubscriptionEvent::SubscriptionCreated {
                subscription_id,
                origin_order_id,
                campaign_id,
                product_id,
                price,
                billing_gateway,
                credential,
                terms,
                status,
                next_bill_at,
                card,
                ..
            } => {
                $sub.card = $own!(card);
                $sub.id = Some($own!(subscription_id));
                $sub.origin_order_id = Some($own!(origin_order_id));
                $sub.campaign_id = Some($own!(campaign_id));
                $sub.product_id = Some($own!(product_id));
                $sub.price = Some($own!(price));
                $sub.billing_gateway = Some($own!(billing_gateway));
                $sub.credential = Some($own!(credential));
                $sub.terms = Some($own!(terms));
                $sub.status = Some($own!(status));
                $sub.cycle = 1;
                $sub.next_bill_at = Some($own!(next_bill_at));
            }
            SubscriptionEvent::RebillDeclined { facts, at, .. } => {
                // The attempt itself is the rebill order's fact; its decline is ours too.
                $sub.card_facts.push(CardFact::declined(&facts, $own!(at)));
            }
            SubscriptionEvent::RecycleBillingStarted {
                order_id,
                declined_gateway,
                plan,
                ..
            } => {
                $sub.status = Some(SubscriptionStatus::RecycleBilling);
                $sub.recycle = Some(RecycleState {
                    order_id: $own!(order_id),
                    declined_gateway: $own!(declined_gateway),
                    plan: $own!(plan),
                    next_attempt: 1,
                    next_target: None,
                    due_at: None,
                    in_flight: None,
                    handed_over: None,
                });
            }
            SubscriptionEvent::RecycleAttemptScheduled {
                attempt,
                target,
                due_at,
                ..
            } => {
                if let Some(r) = &mut $sub.recycle {
                    r.next_attempt = $own!(attempt);
                    r.next_target = Some($own!(target));
                    r.due_at = Some($own!(due_at));
                    r.in_flight = None;
                }
            }
            SubscriptionEvent::RecycleAttemptStarted {
                attempt,
                gateway,
                at,
                ..
            } => {
                if let Some(r) = &mut $sub.recycle {
                    r.in_flight = Some($own!(attempt));
                }
                $sub.card_facts.push(CardFact::Attempt {
                    at: $own!(at),
                    gateway: $own!(gateway),
                    flexfactor: false,
                });
            }
            SubscriptionEvent::RecycleAttemptDeclined { facts, at, .. } => {
                $sub.card_facts.push(CardFact::declined(&facts, $own!(at)));
            }
            SubscriptionEvent::RecycleAttemptOutcomeUnknown { .. }
            | SubscriptionEvent::RecycleAttemptBlocked { .. }
            | SubscriptionEvent::RecycleAttemptDelayed { .. } => {}
            SubscriptionEvent::RecycleHandedToFlexFactor {
                slot,
                flexfactor_gateway,
                at,
                ..
            } => {
                $sub.card_facts.push(CardFact::Attempt {
                    at: $own!(at),
                    gateway: $own!(flexfactor_gateway),
                    flexfactor: true,
                });
                if let Some(r) = &mut $sub.recycle {
                    r.handed_over = Some($own!(slot));
                    r.due_at = None;
                }
            }
            SubscriptionEvent::CycleAdvanced {
                order_id,
                to_cycle,
                billing_gateway,
                next_bill_at,
                at,
                ..
            } => {
                let at = $own!(at);
                // The card was approved: older facts no longer speak for it (N1-N5).
                $sub.card_facts.retain(|f| at - f.at() < network::WINDOW);
                $sub.card_facts.push(CardFact::Approval { at });
                $sub.cycle = $own!(to_cycle);
                $sub.billing_gateway = Some($own!(billing_gateway));
                $sub.next_bill_at = Some($own!(next_bill_at));
                $sub.status = Some(SubscriptionStatus::Active);
                $sub.recycle = None;
                $sub.settled_orders.push($own!(order_id));
            }
            SubscriptionEvent::RecycleFailed { order_id, .. } => {
                $sub.status = Some(SubscriptionStatus::RecycleFailed);
                if let Some(r) = &mut $sub.recycle {
                    r.due_at = None;
                    r.in_flight = None;
                }
                $sub.settled_orders.push($own!(order_id));
            }
            SubscriptionEvent::SalvageResultIgnored { .. } => {}
            SubscriptionEvent::SubscriptionCancelled { .. } => {
                $sub.status = Some(SubscriptionStatus::Cancelled);
                $sub.recycle = None;
            }
        }
    };
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = self.decide(command, services)?;
        for e in events {
            sink.write(e, self).await;
        }
        Ok(())
    }

    // `moved!(x)` is `x`: `x: moved!(x)` in the shared body is `x: x` here.
    #[allow(clippy::redundant_field_names, clippy::redundant_locals)]
    fn apply(&mut self, event: Self::Event) {
        apply_subscription_event!(self, event, moved);
    }
}

impl Subscription {
    /// [`Aggregate::apply`] of an event the caller keeps (a runtime that hands the committed
    /// event on after applying it): the same state change (one body,
    /// `apply_subscription_event!`), copying only what the state keeps instead of the whole
    /// event.
    pub fn apply_ref(&mut self, event: &SubscriptionEvent) {
        apply_subscription_event!(self, event, copied);
    }
}

impl Subscription {
    fn is_settled(&self, order: &OrderId) -> bool {
        self.settled_orders.iter().any(|o| o == order)
    }

    /// N1-N5: the network's verdict on an attempt on this subscription's card now, from its
    /// own facts and the other aggregates' (N8).
    fn network_verdict(
        &self,
        services: &DomainServices,
        kind: AttemptKind,
        now: DateTime<Utc>,
    ) -> Verdict {
        let (Some(card), Some(id)) = (&self.card, &self.id) else {
            return Verdict::Allow;
        };
        let setup = services.setup.as_ref();
        network::check_card(
            &setup.network_rules,
            setup,
            card,
            services.cards.as_ref(),
            ("subscription", id.as_str()),
            &self.card_facts,
            now,
            kind,
        )
    }

    fn interval_days(&self) -> i64 {
        self.terms.map(|t| t.interval_days).unwrap_or(30).max(1)
    }

    /// Decides the events of a command without touching `self`.
    pub fn decide(
        &self,
        command: SubscriptionCommand,
        services: &DomainServices,
    ) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
        let mut d = Decision::from(self);
        let now = services.clock.now();
        let setup = &services.setup;
        if !matches!(command, SubscriptionCommand::Create(_)) && self.id.is_none() {
            return Err(SubscriptionError::NotFound);
        }
        match command {
            SubscriptionCommand::Create(c) => {
                if self.id.is_some() {
                    return Err(SubscriptionError::AlreadyExists(
                        c.subscription_id.to_string(),
                    ));
                }
                check_billing_gateway(services, &c.billing_gateway)?;
                let (status, first_bill_days) = match c.terms.trial_days {
                    Some(days) => (SubscriptionStatus::Trial, days),
                    None => (SubscriptionStatus::Active, c.terms.interval_days.max(1)),
                };
                d.emit(SubscriptionEvent::SubscriptionCreated {
                    subscription_id: c.subscription_id,
                    origin_order_id: c.origin_order_id,
                    campaign_id: c.campaign_id,
                    product_id: c.product_id,
                    price: c.price,
                    billing_gateway: c.billing_gateway,
                    credential: c.credential,
                    terms: c.terms,
                    status,
                    next_bill_at: crate::clock::days_after(now, first_bill_days),
                    card: c.card,
                    at: now,
                });
            }
            SubscriptionCommand::RecordRebill { order_id, outcome } => {
                if d.state().is_settled(&order_id) {
                    return Ok(Vec::new());
                }
                if let Some(r) = &d.state().recycle {
                    if r.order_id == order_id
                        && d.state().status == Some(SubscriptionStatus::RecycleBilling)
                    {
                        return Ok(Vec::new());
                    }
                }
                match d.state().status {
                    Some(SubscriptionStatus::Cancelled) => {
                        return Err(SubscriptionError::NotBilling("cancelled"))
                    }
                    Some(SubscriptionStatus::RecycleFailed) => {
                        return Err(SubscriptionError::NotBilling("recycle_failed"))
                    }
                    Some(SubscriptionStatus::RecycleBilling) => {
                        let current = d
                            .state()
                            .recycle
                            .as_ref()
                            .map(|r| r.order_id.to_string())
                            .unwrap_or_default();
                        return Err(SubscriptionError::AlreadyRecycling(current));
                    }
                    _ => {}
                }
                match outcome {
                    RebillOutcome::Approved { gateway } => {
                        check_billing_gateway(services, &gateway)?;
                        advance(&mut d, order_id, gateway, AdvanceVia::Rebill, now);
                    }
                    RebillOutcome::Declined { facts, effective } => {
                        let declined_gateway = facts.gateway.clone();
                        let soft = effective.enters_recycle_billing();
                        // Read before RebillDeclined is decided (it changes no state), so the
                        // decision needs no scratch copy of the subscription.
                        let billing = d
                            .state()
                            .billing_gateway
                            .clone()
                            .unwrap_or_else(|| declined_gateway.clone());
                        d.emit(SubscriptionEvent::RebillDeclined {
                            order_id: order_id.clone(),
                            facts,
                            effective,
                            at: now,
                        });
                        if !soft {
                            // D4: a hard-declined rebill fails at once.
                            d.emit(SubscriptionEvent::RecycleFailed {
                                order_id,
                                reason: RecycleFailure::HardDecline,
                                at: now,
                            });
                        } else {
                            let plan = recycle_plan(setup.recycle_profile_for(&billing));
                            if plan.is_empty() {
                                d.emit(SubscriptionEvent::RecycleFailed {
                                    order_id,
                                    reason: RecycleFailure::NoRecycleProfile,
                                    at: now,
                                });
                            } else {
                                // Y1: the first re-attempt, from the plan the subscription
                                // holds once RecycleBillingStarted is applied.
                                let first = scheduled(&plan, order_id.clone(), 1, now);
                                d.emit(SubscriptionEvent::RecycleBillingStarted {
                                    order_id,
                                    declined_gateway,
                                    plan,
                                    at: now,
                                });
                                if let Some(e) = first {
                                    d.emit(e);
                                }
                            }
                        }
                    }
                }
            }
            SubscriptionCommand::RunDueRecycleAttempt { order_id, attempt } => {
                // Nothing decided yet: the state is `self` (borrowed, not copied).
                let Some(r) = self.recycle.as_ref() else {
                    return Err(SubscriptionError::NotRecycling(order_id.to_string()));
                };
                if r.order_id != order_id
                    || d.state().status != Some(SubscriptionStatus::RecycleBilling)
                {
                    if d.state().is_settled(&order_id) {
                        return Ok(Vec::new());
                    }
                    return Err(SubscriptionError::NotRecycling(order_id.to_string()));
                }
                // Idempotent: an attempt already run or handed over.
                if attempt < r.next_attempt
                    || r.in_flight == Some(attempt)
                    || r.handed_over.is_some()
                {
                    return Ok(Vec::new());
                }
                if attempt != r.next_attempt {
                    return Err(SubscriptionError::UnexpectedAttempt {
                        attempt,
                        next: r.next_attempt,
                    });
                }
                if r.due_at.is_some_and(|due| now < due) {
                    return Err(SubscriptionError::NotDue(attempt));
                }
                // N1-N5, N9: the network may forbid or delay this re-attempt.
                let kind = match &r.next_target {
                    Some(RecycleTarget::FlexFactor { gateway, .. }) => AttemptKind::FlexFactor {
                        rules: setup.flexfactor_network_rules(gateway),
                    },
                    _ => AttemptKind::Regular { can_wait: true },
                };
                match self.network_verdict(services, kind, now) {
                    Verdict::Allow => {}
                    Verdict::WaitUntil { until, rule } => {
                        d.emit(SubscriptionEvent::RecycleAttemptDelayed {
                            order_id: order_id.clone(),
                            attempt,
                            until,
                            rule,
                            at: now,
                        });
                        if let Some(target) = r.next_target.clone() {
                            d.emit(SubscriptionEvent::RecycleAttemptScheduled {
                                order_id,
                                attempt,
                                target,
                                due_at: until,
                                at: now,
                            });
                        }
                        return Ok(d.into_events());
                    }
                    Verdict::Block { reason, rule } => {
                        d.emit(SubscriptionEvent::RecycleAttemptBlocked {
                            order_id: order_id.clone(),
                            attempt,
                            reason,
                            rule,
                            at: now,
                        });
                        // N7: recycling moves on: the next re-attempt of the plan (checked in
                        // its turn), or Recycle Failed when none is left or none ever will be.
                        let next = (rule != NetworkRule::N1)
                            .then(|| scheduled(&r.plan, order_id.clone(), attempt + 1, now))
                            .flatten();
                        match next {
                            Some(e) => d.emit(e),
                            None => d.emit(SubscriptionEvent::RecycleFailed {
                                order_id,
                                reason: if rule == NetworkRule::N1 {
                                    RecycleFailure::NetworkNeverRetry
                                } else {
                                    RecycleFailure::Exhausted
                                },
                                at: now,
                            }),
                        }
                        return Ok(d.into_events());
                    }
                }
                match &r.next_target {
                    Some(RecycleTarget::FlexFactor { gateway, slot }) => {
                        d.emit(SubscriptionEvent::RecycleHandedToFlexFactor {
                            order_id,
                            attempt,
                            slot: *slot,
                            flexfactor_gateway: gateway.clone(),
                            at: now,
                        });
                    }
                    _ => {
                        let gateway = d
                            .state()
                            .billing_gateway
                            .clone()
                            .unwrap_or_else(|| r.declined_gateway.clone());
                        d.emit(SubscriptionEvent::RecycleAttemptStarted {
                            idempotency_key: IdempotencyKey::recycle_charge(&order_id, attempt),
                            order_id,
                            attempt,
                            gateway,
                            at: now,
                        });
                    }
                }
            }
            SubscriptionCommand::RecordRecycleAttemptResult {
                order_id,
                attempt,
                answer,
            } => {
                if d.state().is_settled(&order_id) {
                    return Ok(Vec::new());
                }
                // Nothing decided yet: the state is `self` (borrowed, not copied).
                let Some(r) = self.recycle.as_ref() else {
                    return Err(SubscriptionError::NotRecycling(order_id.to_string()));
                };
                if r.order_id != order_id {
                    return Err(SubscriptionError::NotRecycling(order_id.to_string()));
                }
                if r.in_flight != Some(attempt) {
                    if attempt < r.next_attempt {
                        return Ok(Vec::new());
                    }
                    return Err(SubscriptionError::NotAwaiting(attempt));
                }
                let gateway = d
                    .state()
                    .billing_gateway
                    .clone()
                    .unwrap_or_else(|| r.declined_gateway.clone());
                match answer {
                    GatewayAnswer::Approved { .. } => {
                        advance(
                            &mut d,
                            order_id,
                            gateway,
                            AdvanceVia::Recycle { attempt },
                            now,
                        );
                    }
                    GatewayAnswer::Declined(mut facts) => {
                        facts.gateway = gateway;
                        let effective = setup.effective_decline(&facts, OrderType::Recurring);
                        let soft = effective.enters_recycle_billing();
                        d.emit(SubscriptionEvent::RecycleAttemptDeclined {
                            order_id: order_id.clone(),
                            attempt,
                            facts,
                            effective,
                            at: now,
                        });
                        if !soft {
                            d.emit(SubscriptionEvent::RecycleFailed {
                                order_id,
                                reason: RecycleFailure::HardDecline,
                                at: now,
                            });
                        } else if r.plan.attempt(attempt + 1).is_some() {
                            // Y1: RecycleAttemptDeclined leaves the plan as it is.
                            if let Some(e) = scheduled(&r.plan, order_id, attempt + 1, now) {
                                d.emit(e);
                            }
                        } else {
                            // Y4: every re-attempt declined, no FlexFactor slot.
                            d.emit(SubscriptionEvent::RecycleFailed {
                                order_id,
                                reason: RecycleFailure::Exhausted,
                                at: now,
                            });
                        }
                    }
                    GatewayAnswer::Pending { reference } => {
                        d.emit(SubscriptionEvent::RecycleAttemptOutcomeUnknown {
                            order_id,
                            attempt,
                            detail: format!(
                                "gateway answered pending{}",
                                reference.map(|r| format!(" ({r})")).unwrap_or_default()
                            ),
                            at: now,
                        });
                    }
                    GatewayAnswer::Unknown { detail } => {
                        d.emit(SubscriptionEvent::RecycleAttemptOutcomeUnknown {
                            order_id,
                            attempt,
                            detail,
                            at: now,
                        });
                    }
                }
            }
            SubscriptionCommand::ApplySalvageOutcome {
                order_id,
                succeeded,
                declined_gateway,
            } => {
                let recycling_this = d
                    .state()
                    .recycle
                    .as_ref()
                    .is_some_and(|r| r.order_id == order_id)
                    && d.state().status == Some(SubscriptionStatus::RecycleBilling);
                let in_trial = d.state().status == Some(SubscriptionStatus::Trial);
                if d.state().is_settled(&order_id) {
                    d.emit(SubscriptionEvent::SalvageResultIgnored {
                        order_id,
                        succeeded,
                        at: now,
                    });
                } else if succeeded && (recycling_this || in_trial) {
                    // O4: next cycle, billing back on the declining gateway; S8: never FlexFactor.
                    let gateway = if setup.is_flexfactor(&declined_gateway) {
                        d.state()
                            .billing_gateway
                            .clone()
                            .unwrap_or(declined_gateway)
                    } else {
                        declined_gateway
                    };
                    advance(&mut d, order_id, gateway, AdvanceVia::FlexFactor, now);
                } else if !succeeded && recycling_this {
                    // O5.
                    d.emit(SubscriptionEvent::RecycleFailed {
                        order_id,
                        reason: RecycleFailure::FlexFactorFailed,
                        at: now,
                    });
                } else {
                    d.emit(SubscriptionEvent::SalvageResultIgnored {
                        order_id,
                        succeeded,
                        at: now,
                    });
                }
            }
            SubscriptionCommand::Cancel { reason } => {
                if d.state().status != Some(SubscriptionStatus::Cancelled) {
                    d.emit(SubscriptionEvent::SubscriptionCancelled { reason, at: now });
                }
            }
        }
        Ok(d.into_events())
    }
}

fn check_billing_gateway(
    services: &DomainServices,
    gateway: &GatewayId,
) -> Result<(), SubscriptionError> {
    match services.setup.gateway(gateway) {
        None => Err(SubscriptionError::UnknownGateway(gateway.to_string())),
        Some(g) if g.is_flexfactor() => {
            Err(SubscriptionError::BillingOnFlexFactor(gateway.to_string()))
        }
        Some(_) => Ok(()),
    }
}

fn advance(
    d: &mut Decision<'_>,
    order_id: OrderId,
    billing_gateway: GatewayId,
    via: AdvanceVia,
    now: DateTime<Utc>,
) {
    let from = d.state().cycle;
    let next_bill_at = crate::clock::days_after(now, d.state().interval_days());
    d.emit(SubscriptionEvent::CycleAdvanced {
        order_id,
        from_cycle: from,
        to_cycle: from + 1,
        billing_gateway,
        via,
        next_bill_at,
        at: now,
    });
}

/// Y1: the event scheduling re-attempt `attempt` of `plan`, its wait counted from now (the
/// previous attempt); none when the plan has no such attempt.
fn scheduled(
    plan: &RecyclePlan,
    order_id: OrderId,
    attempt: u32,
    now: DateTime<Utc>,
) -> Option<SubscriptionEvent> {
    let (Some(planned), Some(due_at)) = (plan.attempt(attempt), plan.due_at(attempt, now)) else {
        return None;
    };
    Some(SubscriptionEvent::RecycleAttemptScheduled {
        order_id,
        attempt,
        target: planned.target.clone(),
        due_at,
        at: now,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::clock::ManualClock;
    use crate::decline::{DeclineFacts, DeclineType, EffectiveDecline};
    use crate::money::{Currency, Money};
    use crate::setup::Setup;

    const SAMPLE: &str = include_str!("../../../examples/salvage.toml");

    fn services() -> (DomainServices, Arc<ManualClock>) {
        let setup = match Setup::from_toml_str(SAMPLE) {
            Ok(s) => s,
            Err(e) => panic!("the sample setup must be valid: {e}"),
        };
        let start = match Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0) {
            chrono::LocalResult::Single(t) => t,
            _ => panic!("a valid date"),
        };
        let clock = Arc::new(ManualClock::new(start));
        (DomainServices::new(Arc::new(setup), clock.clone()), clock)
    }

    fn run(s: &mut Subscription, services: &DomainServices, c: SubscriptionCommand) -> usize {
        let events = match s.decide(c, services) {
            Ok(e) => e,
            Err(e) => panic!("refused: {e}"),
        };
        let n = events.len();
        for e in events {
            s.apply(e);
        }
        n
    }

    fn approved(order: &str) -> SubscriptionCommand {
        SubscriptionCommand::RecordRebill {
            order_id: order.into(),
            outcome: RebillOutcome::Approved {
                gateway: "nmi-main".into(),
            },
        }
    }

    /// A subscription on nmi-main that advanced `rebills` cycles, rebills `r-1`..`r-{rebills}`.
    fn long_lived(rebills: u32) -> (Subscription, DomainServices, Arc<ManualClock>) {
        let (services, clock) = services();
        let mut s = Subscription::default();
        run(
            &mut s,
            &services,
            SubscriptionCommand::Create(Box::new(CreateSubscription {
                subscription_id: "sub-1".into(),
                origin_order_id: "o-1".into(),
                campaign_id: "skincare".into(),
                product_id: "serum-monthly".into(),
                price: Money {
                    amount_minor: 3999,
                    currency: Currency::USD,
                },
                billing_gateway: "nmi-main".into(),
                credential: CredentialKind::Token,
                terms: RecurringTerms {
                    interval_days: 30,
                    trial_days: None,
                },
                card: None,
            })),
        );
        for i in 1..=rebills {
            clock.advance(Duration::days(30));
            assert_eq!(run(&mut s, &services, approved(&format!("r-{i}"))), 1);
        }
        (s, services, clock)
    }

    #[test]
    fn o7_a_long_lived_subscription_still_settles_each_rebill_once() {
        let (mut s, services, clock) = long_lived(300);
        assert_eq!(s.cycle, 301);
        assert_eq!(s.settled_orders.len(), 300);
        let before = s.clone();
        // The oldest, a middle and the newest settled rebill: approving again is a no-op.
        for order in ["r-1", "r-150", "r-300"] {
            assert_eq!(s.decide(approved(order), &services), Ok(Vec::new()));
            // A late FlexFactor result for it is recorded and ignored, never a second advance.
            let late = s.decide(
                SubscriptionCommand::ApplySalvageOutcome {
                    order_id: order.into(),
                    succeeded: true,
                    declined_gateway: "nmi-main".into(),
                },
                &services,
            );
            assert!(matches!(
                late.as_deref(),
                Ok([SubscriptionEvent::SalvageResultIgnored { order_id, succeeded: true, .. }])
                    if order_id.as_str() == order
            ));
        }
        // Deciding never changes the aggregate.
        assert_eq!(s, before);
        // A new rebill advances exactly one cycle.
        clock.advance(Duration::days(30));
        assert_eq!(run(&mut s, &services, approved("r-301")), 1);
        assert_eq!(s.cycle, 302);
        assert_eq!(s.decide(approved("r-301"), &services), Ok(Vec::new()));
    }

    #[test]
    fn y1_a_soft_declined_rebill_schedules_the_first_attempt_of_its_plan() {
        let (mut s, services, _clock) = long_lived(3);
        let events = match s.decide(
            SubscriptionCommand::RecordRebill {
                order_id: "r-4".into(),
                outcome: RebillOutcome::Declined {
                    facts: DeclineFacts {
                        gateway: "nmi-main".into(),
                        response_code: "05".into(),
                        response_message: "Issuer unavailable".into(),
                        processor_verdict: DeclineType::Soft,
                        visa_category: None,
                        mastercard_advice_code: None,
                    },
                    effective: EffectiveDecline {
                        decline_type: DeclineType::Soft,
                        mapped_by: None,
                        customer_message: None,
                    },
                },
            },
            &services,
        ) {
            Ok(e) => e,
            Err(e) => panic!("refused: {e}"),
        };
        let [SubscriptionEvent::RebillDeclined { .. }, SubscriptionEvent::RecycleBillingStarted { plan, .. }, SubscriptionEvent::RecycleAttemptScheduled {
            attempt: 1,
            target,
            due_at,
            ..
        }] = events.as_slice()
        else {
            panic!("unexpected events: {events:?}");
        };
        let first = plan.attempt(1).map(|a| a.target.clone());
        assert_eq!(Some(target.clone()), first);
        assert_eq!(Some(*due_at), plan.due_at(1, services.clock.now()));
        for e in events {
            s.apply(e);
        }
        assert_eq!(s.status, Some(SubscriptionStatus::RecycleBilling));
        // The same rebill again while recycling: a no-op.
        assert_eq!(s.decide(approved("r-4"), &services), Ok(Vec::new()));
    }
}
