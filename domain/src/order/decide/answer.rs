//! Recording FlexFactor's answer to a salvage submission.

use chrono::{DateTime, Utc};

use super::cascade::start_step;
use super::decision::Decision;
use super::result::{fail, succeed};
use crate::order::error::OrderError;
use crate::order::event::{OrderEvent, SalvageFailure, SalvageRoute};
use crate::ports::EvaluateAnswer;
use crate::services::DomainServices;

pub(super) fn record_flexfactor_answer(
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
