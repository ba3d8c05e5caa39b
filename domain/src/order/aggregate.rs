//! The cqrs-es `Aggregate` impl of the Order: `handle` (decide, then write to the `EventSink`)
//! and `apply` (how each event changes the state).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use super::card_facts;
use super::command::OrderCommand;
use super::error::OrderError;
use super::event::{CascadeOutcome, OrderEvent, SalvageRoute};
use super::state::{CascadeProgress, Order, Salvage, SalvageState};
use super::status::OrderStatus;
use crate::order_type::OrderType;
use crate::services::DomainServices;

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
        card_facts::record(&mut self.card_facts, &event);
        match event {
            OrderEvent::OrderPlaced { details, at } => {
                self.details = Some(details);
                self.placed_at = Some(at);
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::AttemptApproved { gateway, .. } => {
                self.paid_by = Some(gateway);
                self.status = Some(OrderStatus::Complete);
            }
            OrderEvent::AttemptDeclined {
                facts,
                effective,
                at,
                ..
            } => {
                if self.first_decline.is_none() {
                    self.first_decline = Some(facts);
                    self.declined_at = Some(at);
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
            OrderEvent::ExternalCancelRequested { .. } | OrderEvent::AttemptBlocked { .. } => {}
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
    /// [`Aggregate::apply`] of an event the caller keeps (a runtime that hands the committed
    /// event on after applying it): the same state change, copying only what the state keeps
    /// instead of the whole event. `apply_by_reference_is_apply` (in the simulator's tests)
    /// checks the two agree on every event of simulated runs.
    pub fn apply_ref(&mut self, event: &OrderEvent) {
        card_facts::record(&mut self.card_facts, event);
        match event {
            OrderEvent::OrderPlaced { details, at } => {
                self.details = Some(details.clone());
                self.placed_at = Some(*at);
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::AttemptApproved { gateway, .. } => {
                self.paid_by = Some(gateway.clone());
                self.status = Some(OrderStatus::Complete);
            }
            OrderEvent::AttemptDeclined {
                facts,
                effective,
                at,
                ..
            } => {
                if self.first_decline.is_none() {
                    self.first_decline = Some(facts.clone());
                    self.declined_at = Some(*at);
                }
                self.last_decline = Some(effective.clone());
                self.status = Some(OrderStatus::Declined);
            }
            OrderEvent::CascadeStarted { route, .. } => {
                self.cascade = Some(CascadeProgress {
                    route: route.clone(),
                    current_step: 0,
                    ended: false,
                });
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::CascadeSkipped { .. } => {}
            OrderEvent::CascadeStepStarted { step, .. } => {
                if let Some(c) = &mut self.cascade {
                    c.current_step = *step;
                }
            }
            OrderEvent::CascadeStepDeclined { effective, .. } => {
                self.last_decline = Some(effective.clone());
            }
            OrderEvent::CascadeEnded { outcome, .. } => {
                if let Some(c) = &mut self.cascade {
                    c.ended = true;
                }
                self.status = Some(match outcome {
                    CascadeOutcome::Approved { gateway } => {
                        self.paid_by = Some(gateway.clone());
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
                if let (SalvageRoute::Cascade { step }, Some(c)) = (route, &mut self.cascade) {
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
                self.salvage_attempts = self.salvage_attempts.max(*attempt);
                self.salvage = Some(Salvage {
                    attempt: *attempt,
                    route: route.clone(),
                    flexfactor_gateway: flexfactor_gateway.clone(),
                    idempotency_key: idempotency_key.clone(),
                    mode: mode.clone(),
                    amount: *amount,
                    flexfactor_order_id: None,
                    state: SalvageState::Submitted,
                    submitted_at: *at,
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
                        s.flexfactor_order_id = flexfactor_order_id.clone();
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
                        s.flexfactor_order_id = flexfactor_order_id.clone();
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
                    s.resolved_at = Some(*at);
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = flexfactor_order_id.clone();
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
                    s.resolved_at = Some(*at);
                    s.failure = Some(reason.clone());
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
            OrderEvent::ExternalCancelRequested { .. } | OrderEvent::AttemptBlocked { .. } => {}
            OrderEvent::FulfillmentRequested { .. } => self.fulfillment_requested = true,
            OrderEvent::PaidByRecycle { gateway, .. } => {
                self.paid_by = Some(gateway.clone());
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
                self.deferred.push((result.clone(), source.clone()));
            }
            OrderEvent::ResultIgnored { .. } | OrderEvent::ReconciliationInconclusive { .. } => {}
        }
    }
}
