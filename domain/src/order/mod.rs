//! The Order aggregate: one CRM order (new sale, trial completion or rebill), its attempts, its
//! cascade, its FlexFactor salvages and what FlexFactor later reports about it.
//!
//! `handle` decides with a scratch state (every event counts as soon as it is decided, so later
//! decisions in the same command see it; the state is copied only if read after an event, see
//! `crate::decision`), then writes the events to the cqrs-es `EventSink`.

mod command;
mod error;
mod event;
mod status;

pub use command::{AttemptResult, FlexFactorResult, OrderCommand, PlaceOrder, ResultSource};
pub use error::OrderError;
pub use event::{
    CascadeOutcome, IgnoredBecause, OrderDetails, OrderEvent, RecurringLine, RecurringTerms,
    SalvageFailure, SalvageRoute,
};
pub use status::OrderStatus;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::idempotency::IdempotencyKey;
use crate::ids::{FlexFactorOrderId, GatewayId};
use crate::money::Money;
use crate::order_type::OrderType;
use crate::ports::{EvaluateAnswer, GatewayAnswer, SubmissionMode};
use crate::routing::{
    cascade_route, rerun_admissible, CascadeDecision, CascadeInput, CascadeRoute, RerunFacts,
};
use crate::services::DomainServices;

/// O8: how long after a salvage's expiry reconciliation keeps asking before it gives up and
/// records the salvage as failed.
pub const RECONCILE_GIVE_UP_DAYS: i64 = 3;

/// Where a FlexFactor salvage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalvageState {
    /// Recorded, the call made or about to be made; no answer yet.
    Submitted,
    /// FlexFactor took it for asynchronous work.
    Accepted,
    /// The call's outcome is unknown (F3): reconcile.
    OutcomeUnknown,
    /// F5: an answer not understood: reconcile.
    Unrecognized,
    /// Approved on authorization, awaiting capture.
    CaptureRequired,
    Succeeded,
    Failed,
}

impl SalvageState {
    /// Not yet resolved either way.
    pub fn is_open(self) -> bool {
        !matches!(self, SalvageState::Succeeded | SalvageState::Failed)
    }
}

/// The current (or last) FlexFactor salvage of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Salvage {
    pub attempt: u32,
    pub route: SalvageRoute,
    pub flexfactor_gateway: GatewayId,
    pub idempotency_key: IdempotencyKey,
    pub mode: SubmissionMode,
    pub amount: Money,
    pub flexfactor_order_id: Option<FlexFactorOrderId>,
    pub state: SalvageState,
    pub submitted_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub failure: Option<SalvageFailure>,
}

impl Salvage {
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match &self.mode {
            SubmissionMode::Mit { expires_at, .. } => Some(*expires_at),
            SubmissionMode::Cit { .. } => None,
        }
    }
}

/// A cascade in progress (or finished).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CascadeProgress {
    pub route: CascadeRoute,
    /// The 1-based step awaiting an answer; 0 before the first.
    pub current_step: u32,
    pub ended: bool,
}

/// The Order aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub details: Option<OrderDetails>,
    pub status: Option<OrderStatus>,
    /// D1: the first declined attempt (its gateway is "the declining gateway" of O4/O6).
    pub first_decline: Option<DeclineFacts>,
    /// The effective verdict of the latest declined attempt.
    pub last_decline: Option<EffectiveDecline>,
    pub cascade: Option<CascadeProgress>,
    pub salvage: Option<Salvage>,
    /// How many FlexFactor submissions this order has had.
    pub salvage_attempts: u32,
    /// The gateway that took the money, once paid.
    pub paid_by: Option<GatewayId>,
    pub fulfillment_requested: bool,
    pub refunded: bool,
    pub chargeback: bool,
    /// Refunds and chargebacks that arrived before the salvage's result (O7).
    #[serde(default)]
    pub deferred: Vec<(FlexFactorResult, ResultSource)>,
}

impl Order {
    pub fn is_paid(&self) -> bool {
        self.paid_by.is_some()
    }

    pub fn salvage_open(&self) -> bool {
        self.salvage.as_ref().is_some_and(|s| s.state.is_open())
    }

    /// The gateway that declined the order first: where a salvaged rebill or sale bills next
    /// (O4, O6). Never FlexFactor: first attempts on FlexFactor are refused (S3/S8).
    pub fn declining_gateway(&self) -> Option<&GatewayId> {
        self.first_decline.as_ref().map(|f| &f.gateway)
    }
}

type Decision<'a> = crate::decision::Decision<'a, Order>;

impl Decision<'_> {
    fn details(&self) -> Result<&OrderDetails, OrderError> {
        self.state().details.as_ref().ok_or(OrderError::NotPlaced)
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
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
            OrderEvent::OrderPlaced { details, .. } => {
                self.details = Some(*details);
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::AttemptApproved { gateway, .. } => {
                self.paid_by = Some(gateway);
                self.status = Some(OrderStatus::Complete);
            }
            OrderEvent::AttemptDeclined {
                facts, effective, ..
            } => {
                if self.first_decline.is_none() {
                    self.first_decline = Some(facts);
                }
                self.last_decline = Some(effective);
                self.status = Some(OrderStatus::Declined);
            }
            OrderEvent::CascadeStarted { route, .. } => {
                self.cascade = Some(CascadeProgress {
                    route,
                    current_step: 0,
                    ended: false,
                });
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::CascadeSkipped { .. } => {}
            OrderEvent::CascadeStepStarted { step, .. } => {
                if let Some(c) = &mut self.cascade {
                    c.current_step = step;
                }
            }
            OrderEvent::CascadeStepDeclined { effective, .. } => {
                self.last_decline = Some(effective);
            }
            OrderEvent::CascadeEnded { outcome, .. } => {
                if let Some(c) = &mut self.cascade {
                    c.ended = true;
                }
                self.status = Some(match outcome {
                    CascadeOutcome::Approved { gateway } => {
                        self.paid_by = Some(gateway);
                        OrderStatus::Complete
                    }
                    CascadeOutcome::Declined => OrderStatus::Declined,
                    CascadeOutcome::Unknown { .. } => OrderStatus::Pending,
                });
            }
            OrderEvent::SalvageSubmitted {
                attempt,
                route,
                flexfactor_gateway,
                idempotency_key,
                mode,
                amount,
                at,
            } => {
                if let (SalvageRoute::Cascade { step }, Some(c)) = (&route, &mut self.cascade) {
                    c.current_step = *step;
                }
                let trial = self
                    .details
                    .as_ref()
                    .is_some_and(|d| d.order_type == OrderType::TrialCompletion);
                if !matches!(route, SalvageRoute::Cascade { .. }) && !trial {
                    // R2: salvage-pending. O3: a trial completion's status is left as it is.
                    self.status = Some(OrderStatus::SalvagePending);
                }
                self.salvage_attempts = self.salvage_attempts.max(attempt);
                self.salvage = Some(Salvage {
                    attempt,
                    route,
                    flexfactor_gateway,
                    idempotency_key,
                    mode,
                    amount,
                    flexfactor_order_id: None,
                    state: SalvageState::Submitted,
                    submitted_at: at,
                    resolved_at: None,
                    failure: None,
                });
            }
            OrderEvent::SalvageAccepted {
                flexfactor_order_id,
                ..
            } => {
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::Accepted;
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = flexfactor_order_id;
                    }
                }
            }
            OrderEvent::SalvageOutcomeUnknown { .. } => {
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::OutcomeUnknown;
                }
            }
            OrderEvent::SalvageAnswerUnrecognized { .. } => {
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::Unrecognized;
                }
            }
            OrderEvent::CaptureRequested {
                flexfactor_order_id,
                ..
            } => {
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::CaptureRequired;
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = flexfactor_order_id;
                    }
                }
            }
            OrderEvent::SalvageSucceeded {
                flexfactor_order_id,
                at,
                ..
            } => {
                self.deferred.clear();
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::Succeeded;
                    s.resolved_at = Some(at);
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = flexfactor_order_id;
                    }
                    self.paid_by = Some(s.flexfactor_gateway.clone());
                }
                self.status = Some(OrderStatus::Complete);
            }
            OrderEvent::SalvageFailed {
                route, reason, at, ..
            } => {
                self.deferred.clear();
                if let Some(s) = &mut self.salvage {
                    s.state = SalvageState::Failed;
                    s.resolved_at = Some(at);
                    s.failure = Some(reason);
                }
                let order_type = self.details.as_ref().map(|d| d.order_type);
                match (route, order_type) {
                    // The cascade's own end decides the status.
                    (SalvageRoute::Cascade { .. }, _) => {}
                    // O3: a trial completion's status is left exactly as it was.
                    (_, Some(OrderType::TrialCompletion)) => {}
                    // O2, O5: declined.
                    _ => self.status = Some(OrderStatus::Declined),
                }
            }
            OrderEvent::ExternalCancelRequested { .. } => {}
            OrderEvent::FulfillmentRequested { .. } => self.fulfillment_requested = true,
            OrderEvent::PaidByRecycle { gateway, .. } => {
                self.paid_by = Some(gateway);
                self.status = Some(OrderStatus::Complete);
            }
            OrderEvent::OrderRefunded { .. } => {
                self.refunded = true;
                self.status = Some(OrderStatus::Refunded);
            }
            OrderEvent::ChargebackRecorded { .. } => {
                self.chargeback = true;
                self.status = Some(OrderStatus::Chargeback);
            }
            OrderEvent::ResultDeferred { result, source, .. } => {
                self.deferred.push((result, source));
            }
            OrderEvent::ResultIgnored { .. } | OrderEvent::ReconciliationInconclusive { .. } => {}
        }
    }
}

impl Order {
    /// Decides the events of a command without touching `self`.
    pub fn decide(
        &self,
        command: OrderCommand,
        services: &DomainServices,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let mut d = Decision::from(self);
        let now = services.clock.now();
        match command {
            OrderCommand::Place(cmd) => place(&mut d, *cmd, services, now)?,
            OrderCommand::RecordCascadeStep { step, answer } => {
                record_cascade_step(&mut d, step, answer, services, now)?
            }
            OrderCommand::RecordFlexFactorAnswer { attempt, answer } => {
                record_flexfactor_answer(&mut d, attempt, answer, services, now)?
            }
            OrderCommand::RequestRerun { gateway } => rerun(&mut d, gateway, services, now)?,
            OrderCommand::SubmitRecycleHandover {
                subscription_id,
                recycle_attempt,
                slot,
                flexfactor_gateway,
            } => {
                let details = d.details()?;
                if details.order_type != OrderType::Recurring {
                    return Err(OrderError::NotRecurring);
                }
                let already = d.state().salvage.as_ref().is_some_and(|s| {
                    matches!(&s.route, SalvageRoute::Recycle { recycle_attempt: a, .. } if *a == recycle_attempt)
                });
                // Idempotent: the same hand-over twice, a paid order, or a salvage already open.
                if !(already || d.state().is_paid() || d.state().salvage_open()) {
                    let ff = services
                        .setup
                        .flexfactor(&flexfactor_gateway)
                        .ok_or_else(|| OrderError::NotFlexFactor(flexfactor_gateway.to_string()))?;
                    let mode = SubmissionMode::Mit {
                        expires_at: crate::clock::days_after(now, ff.expiry_days),
                        recurring: true,
                    };
                    submit(
                        &mut d,
                        SalvageRoute::Recycle {
                            subscription_id,
                            recycle_attempt,
                            slot,
                        },
                        flexfactor_gateway,
                        mode,
                        now,
                    )?;
                }
            }
            OrderCommand::ApplyFlexFactorResult { result, source } => {
                apply_result(&mut d, result, source, services, now)?
            }
            OrderCommand::RecordPaidByRecycle {
                gateway,
                recycle_attempt,
            } => {
                let details = d.details()?;
                if details.order_type != OrderType::Recurring {
                    return Err(OrderError::NotRecurring);
                }
                if !d.state().is_paid() {
                    d.emit(OrderEvent::PaidByRecycle {
                        gateway,
                        recycle_attempt,
                        at: now,
                    });
                    d.emit(OrderEvent::FulfillmentRequested { at: now });
                }
            }
        }
        Ok(d.into_events())
    }
}

fn place(
    d: &mut Decision<'_>,
    cmd: PlaceOrder,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    if d.state().details.is_some() {
        return Err(OrderError::AlreadyPlaced(cmd.order_id.to_string()));
    }
    let setup = &services.setup;
    if cmd.amount.amount_minor <= 0 {
        return Err(OrderError::ZeroAmount);
    }
    let campaign = setup
        .campaign(&cmd.campaign_id)
        .ok_or_else(|| OrderError::UnknownCampaign(cmd.campaign_id.to_string()))?;
    if campaign.currency != cmd.amount.currency {
        return Err(OrderError::CurrencyMismatch {
            order: cmd.amount.currency.to_string(),
            campaign: campaign.currency.to_string(),
        });
    }
    match setup.gateway(&cmd.gateway) {
        None => return Err(OrderError::UnknownGateway(cmd.gateway.to_string())),
        Some(g) if g.is_flexfactor() => {
            return Err(OrderError::FirstAttemptOnFlexFactor(
                cmd.gateway.to_string(),
            ))
        }
        Some(_) => {}
    }
    if cmd.order_type.is_recurring_billing() && cmd.subscription_id.is_none() {
        return Err(OrderError::MissingSubscription(cmd.order_type.as_str()));
    }
    let recurring_lines = cmd
        .items
        .iter()
        .filter_map(|item| {
            let product = campaign.product(&item.product_id)?;
            let recurring = product.recurring?;
            Some(RecurringLine {
                product_id: item.product_id.clone(),
                price: Money {
                    amount_minor: item
                        .price_minor
                        .saturating_mul(i64::from(item.quantity.max(1))),
                    currency: cmd.amount.currency,
                },
                recurring: recurring.into(),
            })
        })
        .collect();
    let details = OrderDetails {
        order_id: cmd.order_id,
        order_type: cmd.order_type,
        campaign_id: cmd.campaign_id,
        subscription_id: cmd.subscription_id,
        ip_address: cmd.ip_address.filter(|ip| !ip.trim().is_empty()),
        amount: cmd.amount,
        customer: cmd.customer,
        card: cmd.card,
        items: cmd.items,
        gateway: cmd.gateway.clone(),
        gateway_profile: cmd.gateway_profile,
        recurring_lines,
    };
    // Taken before OrderPlaced is decided, so the decision needs no scratch copy of the order.
    let order_type = details.order_type;
    d.emit(OrderEvent::OrderPlaced {
        details: Box::new(details),
        at: now,
    });
    match cmd.result {
        AttemptResult::Approved => {
            d.emit(OrderEvent::AttemptApproved {
                gateway: cmd.gateway,
                at: now,
            });
            d.emit(OrderEvent::FulfillmentRequested { at: now });
        }
        AttemptResult::Declined(mut facts) => {
            facts.gateway = cmd.gateway;
            let effective = setup.effective_decline(&facts, order_type);
            d.emit(OrderEvent::AttemptDeclined {
                facts,
                effective,
                at: now,
            });
            if order_type == OrderType::NewSale {
                start_cascade(d, services, now)?;
            }
        }
    }
    Ok(())
}

fn start_cascade(
    d: &mut Decision<'_>,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let details = d.details()?.clone();
    let Some(effective) = d.state().last_decline.clone() else {
        return Ok(());
    };
    let decision = cascade_route(
        &services.setup,
        &CascadeInput {
            order_type: details.order_type,
            campaign: &details.campaign_id,
            declined_gateway: &details.gateway,
            gateway_profile: details.gateway_profile.as_ref(),
            ip_address: details.ip_address.as_deref(),
            decline: &effective,
        },
    );
    match decision {
        CascadeDecision::NoCascade { reason } => {
            d.emit(OrderEvent::CascadeSkipped { reason, at: now });
        }
        CascadeDecision::Cascade(route) => {
            d.emit(OrderEvent::CascadeStarted { route, at: now });
            start_step(d, 1, services, now)?;
        }
    }
    Ok(())
}

/// Starts cascade step `step`, or ends the cascade declined when there is none.
fn start_step(
    d: &mut Decision<'_>,
    step: u32,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let next = d
        .state()
        .cascade
        .as_ref()
        .and_then(|c| c.route.steps.get(step as usize - 1))
        .cloned();
    let Some(next) = next else {
        d.emit(OrderEvent::CascadeEnded {
            outcome: CascadeOutcome::Declined,
            at: now,
        });
        return Ok(());
    };
    if next.flexfactor {
        let ip = d.details()?.ip_address.clone().unwrap_or_default();
        // The router left FlexFactor out without an ip_address (C3); keep that true here too.
        if ip.is_empty() || services.setup.flexfactor(&next.gateway).is_none() {
            return start_step(d, step + 1, services, now);
        }
        submit(
            d,
            SalvageRoute::Cascade { step },
            next.gateway,
            SubmissionMode::Cit { customer_ip: ip },
            now,
        )
    } else {
        let order_id = d.details()?.order_id.clone();
        d.emit(OrderEvent::CascadeStepStarted {
            step,
            gateway: next.gateway,
            idempotency_key: IdempotencyKey::cascade_charge(&order_id, step),
            at: now,
        });
        Ok(())
    }
}

fn submit(
    d: &mut Decision<'_>,
    route: SalvageRoute,
    flexfactor_gateway: GatewayId,
    mode: SubmissionMode,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let details = d.details()?;
    let attempt = d.state().salvage_attempts + 1;
    let e = OrderEvent::SalvageSubmitted {
        attempt,
        idempotency_key: IdempotencyKey::salvage(&details.order_id, attempt),
        amount: details.amount,
        route,
        flexfactor_gateway,
        mode,
        at: now,
    };
    d.emit(e);
    Ok(())
}

fn record_cascade_step(
    d: &mut Decision<'_>,
    step: u32,
    answer: GatewayAnswer,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let awaiting = d.state().cascade.as_ref().and_then(|c| {
        let s = c
            .route
            .steps
            .get((c.current_step as usize).checked_sub(1)?)?;
        (!c.ended && c.current_step == step && !s.flexfactor).then(|| s.gateway.clone())
    });
    let Some(gateway) = awaiting else {
        return Err(OrderError::UnexpectedCascadeStep(step));
    };
    match answer {
        GatewayAnswer::Approved { .. } => {
            d.emit(OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Approved { gateway },
                at: now,
            });
            d.emit(OrderEvent::FulfillmentRequested { at: now });
        }
        GatewayAnswer::Declined(mut facts) => {
            facts.gateway = gateway;
            let effective = services
                .setup
                .effective_decline(&facts, d.details()?.order_type);
            let hard = !effective.may_go_to_flexfactor();
            d.emit(OrderEvent::CascadeStepDeclined {
                step,
                facts,
                effective,
                at: now,
            });
            if hard {
                // Hard declines do not cascade further (D3).
                d.emit(OrderEvent::CascadeEnded {
                    outcome: CascadeOutcome::Declined,
                    at: now,
                });
            } else {
                start_step(d, step + 1, services, now)?;
            }
        }
        GatewayAnswer::Pending { .. } | GatewayAnswer::Unknown { .. } => {
            d.emit(OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Unknown { gateway },
                at: now,
            });
        }
    }
    Ok(())
}

fn record_flexfactor_answer(
    d: &mut Decision<'_>,
    attempt: u32,
    answer: EvaluateAnswer,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let Some(salvage) = d.state().salvage.clone() else {
        return Err(OrderError::UnexpectedSubmission(attempt));
    };
    if salvage.attempt != attempt {
        return Err(OrderError::UnexpectedSubmission(attempt));
    }
    if !salvage.state.is_open() {
        // A webhook or a poll already resolved it: the late answer changes nothing (O7).
        return Ok(());
    }
    let ff_id = answer.flexfactor_order_id().cloned();
    match (&salvage.route, answer) {
        (
            _,
            EvaluateAnswer::Approved {
                confirmation_id, ..
            },
        ) => succeed(d, &salvage, ff_id, confirmation_id, None, services, now)?,
        (_, EvaluateAnswer::CaptureRequired { .. }) => {
            d.emit(OrderEvent::CaptureRequested {
                attempt,
                flexfactor_order_id: ff_id,
                amount: salvage.amount,
                at: now,
            });
        }
        (SalvageRoute::Cascade { step }, other) => {
            // C5: anything but APPROVED declines the cascade step; an answer that could still
            // turn into a charge later is cancelled at FlexFactor.
            let (reason, cancel) = match other {
                EvaluateAnswer::Declined { .. } => (SalvageFailure::Declined, false),
                EvaluateAnswer::Challenge { .. } => (SalvageFailure::Challenge, true),
                EvaluateAnswer::Rejected { .. } => (SalvageFailure::Rejected, false),
                EvaluateAnswer::Unknown { .. } => (SalvageFailure::OutcomeUnknown, true),
                _ => (SalvageFailure::NotApproved, true),
            };
            let step = *step;
            d.emit(OrderEvent::SalvageFailed {
                attempt,
                route: salvage.route.clone(),
                reason,
                source: None,
                at: now,
            });
            if cancel {
                d.emit(OrderEvent::ExternalCancelRequested {
                    attempt,
                    flexfactor_gateway: salvage.flexfactor_gateway.clone(),
                    at: now,
                });
            }
            start_step(d, step + 1, services, now)?;
        }
        (_, accepted @ EvaluateAnswer::Submitted { .. })
        | (_, accepted @ EvaluateAnswer::Processing { .. })
        | (_, accepted @ EvaluateAnswer::Challenge { .. }) => {
            let status = match accepted {
                EvaluateAnswer::Submitted { .. } => "SUBMITTED",
                EvaluateAnswer::Processing { .. } => "PROCESSING",
                _ => "CHALLENGE",
            }
            .to_string();
            d.emit(OrderEvent::SalvageAccepted {
                attempt,
                flexfactor_order_id: ff_id,
                status,
                at: now,
            });
        }
        (_, EvaluateAnswer::Declined { .. }) => {
            fail(d, &salvage, SalvageFailure::Declined, None, now)
        }
        (_, EvaluateAnswer::Rejected { .. }) => {
            fail(d, &salvage, SalvageFailure::Rejected, None, now)
        }
        (_, EvaluateAnswer::Unrecognized { raw_status, .. }) => {
            d.emit(OrderEvent::SalvageAnswerUnrecognized {
                attempt,
                raw_status,
                at: now,
            });
        }
        (_, EvaluateAnswer::Unknown { detail }) => {
            d.emit(OrderEvent::SalvageOutcomeUnknown {
                attempt,
                detail,
                at: now,
            });
        }
    }
    Ok(())
}

fn succeed(
    d: &mut Decision<'_>,
    salvage: &Salvage,
    flexfactor_order_id: Option<FlexFactorOrderId>,
    confirmation_id: Option<String>,
    source: Option<ResultSource>,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let deferred = d.state().deferred.clone();
    d.emit(OrderEvent::SalvageSucceeded {
        attempt: salvage.attempt,
        route: salvage.route.clone(),
        flexfactor_order_id,
        confirmation_id,
        source,
        at: now,
    });
    if matches!(salvage.route, SalvageRoute::Cascade { .. }) {
        d.emit(OrderEvent::CascadeEnded {
            outcome: CascadeOutcome::Approved {
                gateway: salvage.flexfactor_gateway.clone(),
            },
            at: now,
        });
    }
    d.emit(OrderEvent::FulfillmentRequested { at: now });
    apply_deferred(d, deferred, services, now)
}

/// Applies the refunds and chargebacks that arrived before the salvage's result (O7).
fn apply_deferred(
    d: &mut Decision<'_>,
    deferred: Vec<(FlexFactorResult, ResultSource)>,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    for (result, source) in deferred {
        apply_result(d, result, source, services, now)?;
    }
    Ok(())
}

fn fail(
    d: &mut Decision<'_>,
    salvage: &Salvage,
    reason: SalvageFailure,
    source: Option<ResultSource>,
    now: DateTime<Utc>,
) {
    let deferred = d.state().deferred.clone();
    d.emit(OrderEvent::SalvageFailed {
        attempt: salvage.attempt,
        route: salvage.route.clone(),
        reason,
        source,
        at: now,
    });
    // A refund or chargeback that came first has nothing to apply to.
    for (result, source) in deferred {
        d.emit(OrderEvent::ResultIgnored {
            result,
            reason: IgnoredBecause::NotApplicable,
            source,
            at: now,
        });
    }
}

fn rerun(
    d: &mut Decision<'_>,
    gateway: GatewayId,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let details = d.details()?.clone();
    // R5: repeating the same rerun while it is pending, or after it succeeded, is a no-op.
    if let Some(s) = &d.state().salvage {
        if s.route == SalvageRoute::Rerun
            && s.flexfactor_gateway == gateway
            && s.state != SalvageState::Failed
        {
            return Ok(());
        }
    }
    let declined = match details.order_type {
        OrderType::TrialCompletion => d.state().last_decline.is_some() && !d.state().is_paid(),
        _ => d.state().status == Some(OrderStatus::Declined),
    };
    let facts = RerunFacts {
        order_type: details.order_type,
        declined,
        salvage_pending: d.state().salvage_open(),
        paid: d.state().is_paid(),
        decline: d.state().last_decline.as_ref(),
    };
    rerun_admissible(&services.setup, &facts, &gateway).map_err(OrderError::RerunRefused)?;
    let ff = services
        .setup
        .flexfactor(&gateway)
        .ok_or_else(|| OrderError::NotFlexFactor(gateway.to_string()))?;
    let mode = SubmissionMode::Mit {
        expires_at: crate::clock::days_after(now, ff.expiry_days),
        recurring: details.order_type.is_recurring_billing(),
    };
    submit(d, SalvageRoute::Rerun, gateway, mode, now)
}

fn apply_result(
    d: &mut Decision<'_>,
    result: FlexFactorResult,
    source: ResultSource,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    d.details()?;
    let ignore = |d: &mut Decision<'_>, result: FlexFactorResult, reason: IgnoredBecause| {
        d.emit(OrderEvent::ResultIgnored {
            result,
            reason,
            source: source.clone(),
            at: now,
        });
    };
    let Some(salvage) = d.state().salvage.clone() else {
        ignore(d, result, IgnoredBecause::NoSalvage);
        return Ok(());
    };
    let open = salvage.state.is_open();
    let outcome_reason = |r: &FlexFactorResult| match r {
        FlexFactorResult::Declined => Some(SalvageFailure::Declined),
        FlexFactorResult::Expired => Some(SalvageFailure::Expired),
        FlexFactorResult::Cancelled => Some(SalvageFailure::Cancelled),
        _ => None,
    };
    match &result {
        FlexFactorResult::Completed {
            flexfactor_order_id,
            confirmation_id,
        } if open => {
            let id = flexfactor_order_id
                .clone()
                .or(salvage.flexfactor_order_id.clone());
            succeed(
                d,
                &salvage,
                id,
                confirmation_id.clone(),
                Some(source.clone()),
                services,
                now,
            )?;
        }
        r if open && outcome_reason(r).is_some() => {
            let reason = outcome_reason(r).unwrap_or(SalvageFailure::Declined);
            fail(d, &salvage, reason, Some(source.clone()), now);
            if let SalvageRoute::Cascade { step } = salvage.route {
                start_step(d, step + 1, services, now)?;
            }
        }
        FlexFactorResult::CaptureRequired
            if open && salvage.state != SalvageState::CaptureRequired =>
        {
            d.emit(OrderEvent::CaptureRequested {
                attempt: salvage.attempt,
                flexfactor_order_id: salvage.flexfactor_order_id.clone(),
                amount: salvage.amount,
                at: now,
            });
        }
        FlexFactorResult::StillPending | FlexFactorResult::Unrecognized { .. } if open => {
            let give_up = salvage
                .expires_at()
                .map(|e| crate::clock::days_after(e, RECONCILE_GIVE_UP_DAYS));
            if give_up.is_some_and(|g| now >= g) {
                // O8: never pending forever.
                fail(
                    d,
                    &salvage,
                    SalvageFailure::ExpiredUnreconciled,
                    Some(source.clone()),
                    now,
                );
            } else {
                d.emit(OrderEvent::ReconciliationInconclusive {
                    attempt: salvage.attempt,
                    result,
                    at: now,
                });
            }
        }
        FlexFactorResult::Refunded
            if salvage.state == SalvageState::Succeeded && !d.state().refunded =>
        {
            d.emit(OrderEvent::OrderRefunded {
                source: source.clone(),
                at: now,
            });
        }
        FlexFactorResult::Chargeback
            if salvage.state == SalvageState::Succeeded && !d.state().chargeback =>
        {
            let included = services
                .setup
                .flexfactor(&salvage.flexfactor_gateway)
                .is_some_and(|g| g.include_chargebacks);
            if included {
                d.emit(OrderEvent::ChargebackRecorded {
                    source: source.clone(),
                    at: now,
                });
            } else {
                ignore(d, result, IgnoredBecause::ChargebacksNotIncluded);
            }
        }
        // O7: it came before the salvage's own result; kept until that result arrives.
        FlexFactorResult::Refunded | FlexFactorResult::Chargeback if open => {
            d.emit(OrderEvent::ResultDeferred {
                result,
                source,
                at: now,
            });
        }
        FlexFactorResult::Refunded | FlexFactorResult::Chargeback => {
            ignore(d, result, IgnoredBecause::NotApplicable)
        }
        _ => ignore(d, result, IgnoredBecause::AlreadyResolved),
    }
    Ok(())
}
