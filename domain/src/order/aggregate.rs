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

/// How an event changes the order, written once for [`Aggregate::apply`] (`moved`: the event is
/// owned, its fields move into the state) and [`Order::apply_ref`] (`copied`: the caller keeps
/// the event, the fields the state keeps are copied).
macro_rules! apply_order_event {
    ($order:ident, $event:expr, $own:ident) => {
        match $event {
            OrderEvent::OrderPlaced { details, at } => {
                $order.details = Some($own!(details));
                $order.placed_at = Some($own!(at));
                $order.status = Some(OrderStatus::Pending);
            }
            OrderEvent::AttemptApproved { gateway, .. } => {
                $order.paid_by = Some($own!(gateway));
                $order.status = Some(OrderStatus::Complete);
            }
            OrderEvent::AttemptDeclined {
                facts,
                effective,
                at,
                ..
            } => {
                if $order.first_decline.is_none() {
                    $order.first_decline = Some($own!(facts));
                    $order.declined_at = Some($own!(at));
                }
                $order.last_decline = Some($own!(effective));
                $order.status = Some(OrderStatus::Declined);
            }
            OrderEvent::CascadeStarted { route, .. } => {
                $order.cascade = Some(CascadeProgress {
                    route: $own!(route),
                    current_step: 0,
                    ended: false,
                });
                $order.status = Some(OrderStatus::Pending);
            }
            OrderEvent::CascadeSkipped { .. } => {}
            OrderEvent::CascadeStepStarted { step, .. } => {
                if let Some(c) = &mut $order.cascade {
                    c.current_step = $own!(step);
                }
            }
            OrderEvent::CascadeStepDeclined { effective, .. } => {
                $order.last_decline = Some($own!(effective));
            }
            OrderEvent::CascadeEnded { outcome, .. } => {
                if let Some(c) = &mut $order.cascade {
                    c.ended = true;
                }
                $order.status = Some(match outcome {
                    CascadeOutcome::Approved { gateway } => {
                        $order.paid_by = Some($own!(gateway));
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
                if let (SalvageRoute::Cascade { step }, Some(c)) = (&route, &mut $order.cascade) {
                    c.current_step = *step;
                }
                let trial = $order
                    .details
                    .as_ref()
                    .is_some_and(|d| d.order_type == OrderType::TrialCompletion);
                if !matches!(route, SalvageRoute::Cascade { .. }) && !trial {
                    // R2: salvage-pending. O3: a trial completion's status is left as it is.
                    $order.status = Some(OrderStatus::SalvagePending);
                }
                $order.salvage_attempts = $order.salvage_attempts.max($own!(attempt));
                $order.salvage = Some(Salvage {
                    attempt: $own!(attempt),
                    route: $own!(route),
                    flexfactor_gateway: $own!(flexfactor_gateway),
                    idempotency_key: $own!(idempotency_key),
                    mode: $own!(mode),
                    amount: $own!(amount),
                    flexfactor_order_id: None,
                    state: SalvageState::Submitted,
                    submitted_at: $own!(at),
                    resolved_at: None,
                    failure: None,
                });
            }
            OrderEvent::SalvageAccepted {
                flexfactor_order_id,
                ..
            } => {
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::Accepted;
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = $own!(flexfactor_order_id);
                    }
                }
            }
            OrderEvent::SalvageOutcomeUnknown { .. } => {
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::OutcomeUnknown;
                }
            }
            OrderEvent::SalvageAnswerUnrecognized { .. } => {
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::Unrecognized;
                }
            }
            OrderEvent::CaptureRequested {
                flexfactor_order_id,
                ..
            } => {
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::CaptureRequired;
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = $own!(flexfactor_order_id);
                    }
                }
            }
            OrderEvent::SalvageSucceeded {
                flexfactor_order_id,
                at,
                ..
            } => {
                $order.deferred.clear();
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::Succeeded;
                    s.resolved_at = Some($own!(at));
                    if flexfactor_order_id.is_some() {
                        s.flexfactor_order_id = $own!(flexfactor_order_id);
                    }
                    $order.paid_by = Some(s.flexfactor_gateway.clone());
                }
                $order.status = Some(OrderStatus::Complete);
            }
            OrderEvent::SalvageFailed {
                route, reason, at, ..
            } => {
                $order.deferred.clear();
                if let Some(s) = &mut $order.salvage {
                    s.state = SalvageState::Failed;
                    s.resolved_at = Some($own!(at));
                    s.failure = Some($own!(reason));
                }
                let order_type = $order.details.as_ref().map(|d| d.order_type);
                match (route, order_type) {
                    // The cascade's own end decides the status.
                    (SalvageRoute::Cascade { .. }, _) => {}
                    // O3: a trial completion's status is left exactly as it was.
                    (_, Some(OrderType::TrialCompletion)) => {}
                    // O2, O5: declined.
                    _ => $order.status = Some(OrderStatus::Declined),
                }
            }
            OrderEvent::ExternalCancelRequested { .. } | OrderEvent::AttemptBlocked { .. } => {}
            OrderEvent::FulfillmentRequested { .. } => $order.fulfillment_requested = true,
            OrderEvent::PaidByRecycle { gateway, .. } => {
                $order.paid_by = Some($own!(gateway));
                $order.status = Some(OrderStatus::Complete);
            }
            OrderEvent::OrderRefunded { .. } => {
                $order.refunded = true;
                $order.status = Some(OrderStatus::Refunded);
            }
            OrderEvent::ChargebackRecorded { .. } => {
                $order.chargeback = true;
                $order.status = Some(OrderStatus::Chargeback);
            }
            OrderEvent::ResultDeferred { result, source, .. } => {
                $order.deferred.push(($own!(result), $own!(source)));
            }
            OrderEvent::ResultIgnored { .. } | OrderEvent::ReconciliationInconclusive { .. } => {}
        }
    };
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

    // `moved!(x)` is `x`: `x: moved!(x)` in the shared body is `x: x` here.
    #[allow(clippy::redundant_field_names, clippy::redundant_locals)]
    fn apply(&mut self, event: Self::Event) {
        card_facts::record(&mut self.card_facts, &event);
        apply_order_event!(self, event, moved);
    }
}

impl Order {
    /// [`Aggregate::apply`] of an event the caller keeps (a runtime that hands the committed
    /// event on after applying it): the same state change (one body, `apply_order_event!`),
    /// copying only what the state keeps instead of the whole event.
    pub fn apply_ref(&mut self, event: &OrderEvent) {
        card_facts::record(&mut self.card_facts, event);
        apply_order_event!(self, event, copied);
    }
}
