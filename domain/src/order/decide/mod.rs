//! `Order::decide`: the events of a command, dispatched to one decision per file.

mod answer;
mod cascade;
mod decision;
mod network;
mod placement;
mod rerun;
mod result;
mod submission;

pub use result::RECONCILE_GIVE_UP_DAYS;

use crate::order::command::OrderCommand;
use crate::order::error::OrderError;
use crate::order::event::{OrderEvent, SalvageRoute};
use crate::order::state::Order;
use crate::order_type::OrderType;
use crate::ports::SubmissionMode;
use crate::services::DomainServices;

use answer::record_flexfactor_answer;
use cascade::record_cascade_step;
use decision::Decision;
use placement::place;
use rerun::rerun;
use result::apply_result;
use submission::submit;

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
