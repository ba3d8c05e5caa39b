//! The Subscription aggregate: billing gateway, cycle, next bill date, status, payment
//! credential and the recycle position of a declined rebill.

mod command;
mod error;
mod event;
mod status;

pub use command::{CreateSubscription, RebillOutcome, SubscriptionCommand};
pub use error::SubscriptionError;
pub use event::{AdvanceVia, RecycleFailure, SubscriptionEvent};
pub use status::SubscriptionStatus;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::customer::CredentialKind;
use crate::idempotency::IdempotencyKey;
use crate::ids::{CampaignId, GatewayId, OrderId, ProductId, SubscriptionId};
use crate::money::Money;
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
}

type Decision = crate::decision::Decision<Subscription>;

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

    fn apply(&mut self, event: Self::Event) {
        match event {
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
                ..
            } => {
                self.id = Some(subscription_id);
                self.origin_order_id = Some(origin_order_id);
                self.campaign_id = Some(campaign_id);
                self.product_id = Some(product_id);
                self.price = Some(price);
                self.billing_gateway = Some(billing_gateway);
                self.credential = Some(credential);
                self.terms = Some(terms);
                self.status = Some(status);
                self.cycle = 1;
                self.next_bill_at = Some(next_bill_at);
            }
            SubscriptionEvent::RebillDeclined { .. } => {}
            SubscriptionEvent::RecycleBillingStarted {
                order_id,
                declined_gateway,
                plan,
                ..
            } => {
                self.status = Some(SubscriptionStatus::RecycleBilling);
                self.recycle = Some(RecycleState {
                    order_id,
                    declined_gateway,
                    plan,
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
                if let Some(r) = &mut self.recycle {
                    r.next_attempt = attempt;
                    r.next_target = Some(target);
                    r.due_at = Some(due_at);
                    r.in_flight = None;
                }
            }
            SubscriptionEvent::RecycleAttemptStarted { attempt, .. } => {
                if let Some(r) = &mut self.recycle {
                    r.in_flight = Some(attempt);
                }
            }
            SubscriptionEvent::RecycleAttemptDeclined { .. }
            | SubscriptionEvent::RecycleAttemptOutcomeUnknown { .. } => {}
            SubscriptionEvent::RecycleHandedToFlexFactor { slot, .. } => {
                if let Some(r) = &mut self.recycle {
                    r.handed_over = Some(slot);
                    r.due_at = None;
                }
            }
            SubscriptionEvent::CycleAdvanced {
                order_id,
                to_cycle,
                billing_gateway,
                next_bill_at,
                ..
            } => {
                self.cycle = to_cycle;
                self.billing_gateway = Some(billing_gateway);
                self.next_bill_at = Some(next_bill_at);
                self.status = Some(SubscriptionStatus::Active);
                self.recycle = None;
                self.settled_orders.push(order_id);
            }
            SubscriptionEvent::RecycleFailed { order_id, .. } => {
                self.status = Some(SubscriptionStatus::RecycleFailed);
                if let Some(r) = &mut self.recycle {
                    r.due_at = None;
                    r.in_flight = None;
                }
                self.settled_orders.push(order_id);
            }
            SubscriptionEvent::SalvageResultIgnored { .. } => {}
            SubscriptionEvent::SubscriptionCancelled { .. } => {
                self.status = Some(SubscriptionStatus::Cancelled);
                self.recycle = None;
            }
        }
    }
}

impl Subscription {
    fn is_settled(&self, order: &OrderId) -> bool {
        self.settled_orders.iter().any(|o| o == order)
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
                    at: now,
                });
            }
            SubscriptionCommand::RecordRebill { order_id, outcome } => {
                if d.state.is_settled(&order_id) {
                    return Ok(Vec::new());
                }
                if let Some(r) = &d.state.recycle {
                    if r.order_id == order_id
                        && d.state.status == Some(SubscriptionStatus::RecycleBilling)
                    {
                        return Ok(Vec::new());
                    }
                }
                match d.state.status {
                    Some(SubscriptionStatus::Cancelled) => {
                        return Err(SubscriptionError::NotBilling("cancelled"))
                    }
                    Some(SubscriptionStatus::RecycleFailed) => {
                        return Err(SubscriptionError::NotBilling("recycle_failed"))
                    }
                    Some(SubscriptionStatus::RecycleBilling) => {
                        let current = d
                            .state
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
                            let billing = d
                                .state
                                .billing_gateway
                                .clone()
                                .unwrap_or(declined_gateway.clone());
                            let plan = recycle_plan(setup.recycle_profile_for(&billing));
                            if plan.is_empty() {
                                d.emit(SubscriptionEvent::RecycleFailed {
                                    order_id,
                                    reason: RecycleFailure::NoRecycleProfile,
                                    at: now,
                                });
                            } else {
                                d.emit(SubscriptionEvent::RecycleBillingStarted {
                                    order_id: order_id.clone(),
                                    declined_gateway,
                                    plan,
                                    at: now,
                                });
                                schedule(&mut d, order_id, 1, now);
                            }
                        }
                    }
                }
            }
            SubscriptionCommand::RunDueRecycleAttempt { order_id, attempt } => {
                let Some(r) = d.state.recycle.clone() else {
                    return Err(SubscriptionError::NotRecycling(order_id.to_string()));
                };
                if r.order_id != order_id
                    || d.state.status != Some(SubscriptionStatus::RecycleBilling)
                {
                    if d.state.is_settled(&order_id) {
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
                match r.next_target {
                    Some(RecycleTarget::FlexFactor { gateway, slot }) => {
                        d.emit(SubscriptionEvent::RecycleHandedToFlexFactor {
                            order_id,
                            attempt,
                            slot,
                            flexfactor_gateway: gateway,
                            at: now,
                        });
                    }
                    _ => {
                        let gateway = d
                            .state
                            .billing_gateway
                            .clone()
                            .unwrap_or(r.declined_gateway.clone());
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
                if d.state.is_settled(&order_id) {
                    return Ok(Vec::new());
                }
                let Some(r) = d.state.recycle.clone() else {
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
                    .state
                    .billing_gateway
                    .clone()
                    .unwrap_or(r.declined_gateway.clone());
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
                            schedule(&mut d, order_id, attempt + 1, now);
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
                    .state
                    .recycle
                    .as_ref()
                    .is_some_and(|r| r.order_id == order_id)
                    && d.state.status == Some(SubscriptionStatus::RecycleBilling);
                let in_trial = d.state.status == Some(SubscriptionStatus::Trial);
                if d.state.is_settled(&order_id) {
                    d.emit(SubscriptionEvent::SalvageResultIgnored {
                        order_id,
                        succeeded,
                        at: now,
                    });
                } else if succeeded && (recycling_this || in_trial) {
                    // O4: next cycle, billing back on the declining gateway; S8: never FlexFactor.
                    let gateway = if setup.is_flexfactor(&declined_gateway) {
                        d.state.billing_gateway.clone().unwrap_or(declined_gateway)
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
                if d.state.status != Some(SubscriptionStatus::Cancelled) {
                    d.emit(SubscriptionEvent::SubscriptionCancelled { reason, at: now });
                }
            }
        }
        Ok(d.events)
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
    d: &mut Decision,
    order_id: OrderId,
    billing_gateway: GatewayId,
    via: AdvanceVia,
    now: DateTime<Utc>,
) {
    let from = d.state.cycle;
    let next_bill_at = crate::clock::days_after(now, d.state.interval_days());
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

/// Y1: schedules re-attempt `attempt`, its wait counted from now (the previous attempt).
fn schedule(d: &mut Decision, order_id: OrderId, attempt: u32, now: DateTime<Utc>) {
    let Some(plan) = d.state.recycle.as_ref().map(|r| r.plan.clone()) else {
        return;
    };
    let (Some(planned), Some(due_at)) = (plan.attempt(attempt), plan.due_at(attempt, now)) else {
        return;
    };
    d.emit(SubscriptionEvent::RecycleAttemptScheduled {
        order_id,
        attempt,
        target: planned.target.clone(),
        due_at,
        at: now,
    });
}
