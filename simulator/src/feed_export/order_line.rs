//! Mapping one order event to its trace line, one small function per concern: the placement and
//! its first attempt, the regular-gateway cascade, the FlexFactor submission and its answer, the
//! salvage's result, and the results that come later (deferred, refunds, chargebacks, ignored).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::order::{
    AttemptResult, CascadeOutcome, FlexFactorResult, OrderDetails, OrderEvent, PlaceOrder,
    ResultSource, SalvageFailure, SalvageRoute,
};
use salvage_domain::ports::{EvaluateAnswer, GatewayAnswer};
use salvage_domain::{DeclineFacts, FlexFactorOrderId, GatewayId, OrderId};

use super::line::Line;
use super::order_track::{OrderTrack, Placed};
use crate::trace::TraceEntry;

/// Maps one event of order `id` (at feed `position`), updating what is remembered of the order.
pub(super) fn order_line(
    track: &mut OrderTrack,
    position: i64,
    id: &str,
    event: OrderEvent,
) -> Result<Line, String> {
    let order_id = &OrderId::new(id);
    Ok(match event {
        // The placement and its first attempt.
        OrderEvent::OrderPlaced { details, at } => placed(track, position, details, at),
        OrderEvent::AttemptApproved { .. } => first_attempt(track, AttemptResult::Approved)?,
        OrderEvent::AttemptDeclined { facts, .. } => {
            first_attempt(track, AttemptResult::Declined(facts))?
        }
        // The cascade on regular gateways.
        OrderEvent::CascadeStepStarted { step, .. } => cascade_step_started(track, step),
        OrderEvent::CascadeStepDeclined {
            step, facts, at, ..
        } => cascade_step_declined(track, order_id, step, facts, at),
        OrderEvent::CascadeEnded { outcome, at } => cascade_ended(track, order_id, outcome, at)?,
        // The FlexFactor submission and its answer.
        OrderEvent::SalvageSubmitted {
            route,
            flexfactor_gateway,
            at,
            ..
        } => submitted(order_id, route, flexfactor_gateway, at),
        OrderEvent::SalvageAccepted {
            attempt,
            flexfactor_order_id,
            status,
            at,
        } => accepted(order_id, attempt, flexfactor_order_id, &status, at)?,
        OrderEvent::SalvageOutcomeUnknown {
            attempt,
            detail,
            at,
        } => answer(order_id, at, attempt, EvaluateAnswer::Unknown { detail }),
        OrderEvent::SalvageAnswerUnrecognized {
            attempt,
            raw_status,
            at,
        } => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Unrecognized {
                raw_status,
                flexfactor_order_id: None,
            },
        ),
        OrderEvent::CaptureRequested {
            attempt,
            flexfactor_order_id,
            at,
            ..
        } => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::CaptureRequired {
                flexfactor_order_id,
            },
        ),
        // The salvage's result.
        OrderEvent::SalvageSucceeded {
            attempt,
            flexfactor_order_id,
            confirmation_id,
            source,
            at,
            ..
        } => succeeded(
            track,
            order_id,
            attempt,
            flexfactor_order_id,
            confirmation_id,
            source,
            at,
        ),
        OrderEvent::SalvageFailed {
            attempt,
            route,
            reason,
            source,
            at,
        } => failed(track, order_id, attempt, route, reason, source, at)?,
        // Results that come later.
        OrderEvent::ResultDeferred {
            result: r,
            source,
            at,
        } => deferred(track, order_id, r, source, at),
        OrderEvent::ReconciliationInconclusive { result: r, at, .. } => {
            result(order_id, at, r, Some(ResultSource::StatusPoll))
        }
        OrderEvent::OrderRefunded { source, at } => {
            unless_drained(track, order_id, at, FlexFactorResult::Refunded, source)?
        }
        OrderEvent::ChargebackRecorded { source, at } => {
            unless_drained(track, order_id, at, FlexFactorResult::Chargeback, source)?
        }
        OrderEvent::ResultIgnored {
            result: r,
            source,
            at,
            ..
        } => unless_drained(track, order_id, at, r, source)?,
        // Derived.
        OrderEvent::CascadeStarted { .. }
        | OrderEvent::CascadeSkipped { .. }
        | OrderEvent::AttemptBlocked { .. }
        | OrderEvent::ExternalCancelRequested { .. }
        | OrderEvent::FulfillmentRequested { .. }
        | OrderEvent::PaidByRecycle { .. } => None,
    })
}

/// A `flexfactor_answer` line.
fn answer(order_id: &OrderId, at: DateTime<Utc>, attempt: u32, answer: EvaluateAnswer) -> Line {
    Some((
        at,
        TraceEntry::FlexFactorAnswer {
            order_id: order_id.clone(),
            attempt,
            answer,
        },
    ))
}

/// A `flexfactor_result` line.
fn result(
    order_id: &OrderId,
    at: DateTime<Utc>,
    result: FlexFactorResult,
    source: Option<ResultSource>,
) -> Line {
    Some((
        at,
        TraceEntry::FlexFactorResult {
            order_id: order_id.clone(),
            result,
            source,
        },
    ))
}

/// A `cascade_answer` line.
fn cascade(order_id: &OrderId, at: DateTime<Utc>, step: u32, answer: GatewayAnswer) -> Line {
    Some((
        at,
        TraceEntry::CascadeAnswer {
            order_id: order_id.clone(),
            step,
            answer,
        },
    ))
}

/// `OrderPlaced`: kept until the attempt result recorded with it.
fn placed(
    track: &mut OrderTrack,
    position: i64,
    details: Arc<OrderDetails>,
    at: DateTime<Utc>,
) -> Line {
    track.placed = Some(Placed {
        position,
        at,
        details,
    });
    None
}

/// `AttemptApproved` / `AttemptDeclined`: with the `OrderPlaced` before it, a `place_order` at
/// the placement's time.
fn first_attempt(track: &mut OrderTrack, result: AttemptResult) -> Result<Line, String> {
    let placed = track.placed.take().ok_or_else(|| {
        track.needs_history("the attempt result of an order placed before the feed starts")
    })?;
    let d = Arc::unwrap_or_clone(placed.details);
    Ok(Some((
        placed.at,
        TraceEntry::PlaceOrder {
            order: Box::new(PlaceOrder {
                order_id: d.order_id,
                order_type: d.order_type,
                campaign_id: d.campaign_id,
                subscription_id: d.subscription_id,
                ip_address: d.ip_address,
                amount: d.amount,
                customer: d.customer,
                card: d.card,
                items: d.items,
                gateway: d.gateway,
                gateway_profile: d.gateway_profile,
                result,
            }),
        },
    )))
}

/// `CascadeStepStarted`: derived; the step now awaits its answer.
fn cascade_step_started(track: &mut OrderTrack, step: u32) -> Line {
    track.cascade_step = Some(step);
    None
}

/// `CascadeStepDeclined`: the step's declined answer.
fn cascade_step_declined(
    track: &mut OrderTrack,
    order_id: &OrderId,
    step: u32,
    facts: DeclineFacts,
    at: DateTime<Utc>,
) -> Line {
    track.cascade_step = None;
    cascade(order_id, at, step, GatewayAnswer::Declined(facts))
}

/// `CascadeEnded`: an approval or an unknown outcome on a regular gateway is the answer of the
/// step awaiting it; a decline, or an approval after FlexFactor's success, is derived.
fn cascade_ended(
    track: &mut OrderTrack,
    order_id: &OrderId,
    outcome: CascadeOutcome,
    at: DateTime<Utc>,
) -> Result<Line, String> {
    Ok(match &outcome {
        CascadeOutcome::Declined => None,
        CascadeOutcome::Approved { .. } if track.previous == Some("SalvageSucceeded") => None,
        CascadeOutcome::Approved { gateway } | CascadeOutcome::Unknown { gateway } => {
            if track.previous.is_none() {
                return Err(track.needs_history("the end of a cascade"));
            }
            let step = track.cascade_step.take().ok_or_else(|| {
                track.needs_history(&format!("no cascade step on {gateway} awaits an answer"))
            })?;
            let answer = match outcome {
                CascadeOutcome::Approved { .. } => GatewayAnswer::Approved {
                    transaction_id: None,
                },
                _ => GatewayAnswer::Unknown {
                    detail: format!("{gateway}: outcome unknown (from the service's feed)"),
                },
            };
            cascade(order_id, at, step, answer)
        }
    })
}

/// `SalvageSubmitted`: a rerun is the CRM's request; a cascade step or a recycle hand-over is
/// derived.
fn submitted(
    order_id: &OrderId,
    route: SalvageRoute,
    flexfactor_gateway: GatewayId,
    at: DateTime<Utc>,
) -> Line {
    match route {
        SalvageRoute::Rerun => Some((
            at,
            TraceEntry::Rerun {
                order_id: order_id.clone(),
                gateway: flexfactor_gateway,
            },
        )),
        SalvageRoute::Cascade { .. } | SalvageRoute::Recycle { .. } => None,
    }
}

/// `SalvageAccepted`: FlexFactor's answer with its recorded status.
fn accepted(
    order_id: &OrderId,
    attempt: u32,
    flexfactor_order_id: Option<FlexFactorOrderId>,
    status: &str,
    at: DateTime<Utc>,
) -> Result<Line, String> {
    let accepted = match status {
        "SUBMITTED" => EvaluateAnswer::Submitted {
            flexfactor_order_id,
        },
        "PROCESSING" => EvaluateAnswer::Processing {
            flexfactor_order_id,
        },
        "CHALLENGE" => EvaluateAnswer::Challenge {
            flexfactor_order_id,
        },
        other => {
            return Err(format!(
                "status {other:?} is not SUBMITTED, PROCESSING or CHALLENGE"
            ))
        }
    };
    Ok(answer(order_id, at, attempt, accepted))
}

/// `SalvageSucceeded`: a delivered or polled result with its source, else FlexFactor's answer.
fn succeeded(
    track: &mut OrderTrack,
    order_id: &OrderId,
    attempt: u32,
    flexfactor_order_id: Option<FlexFactorOrderId>,
    confirmation_id: Option<String>,
    source: Option<ResultSource>,
    at: DateTime<Utc>,
) -> Line {
    track.resolve(at);
    match source {
        Some(source) => result(
            order_id,
            at,
            FlexFactorResult::Completed {
                flexfactor_order_id,
                confirmation_id,
            },
            Some(source),
        ),
        None => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Approved {
                flexfactor_order_id,
                confirmation_id,
            },
        ),
    }
}

/// `SalvageFailed`: a delivered or polled result with its source, else the answer that failed
/// it; a combination the domain never records is refused.
fn failed(
    track: &mut OrderTrack,
    order_id: &OrderId,
    attempt: u32,
    route: SalvageRoute,
    reason: SalvageFailure,
    source: Option<ResultSource>,
    at: DateTime<Utc>,
) -> Result<Line, String> {
    track.resolve(at);
    let is_cascade = matches!(route, SalvageRoute::Cascade { .. });
    Ok(match (source, reason) {
        (Some(source), reason) => {
            let r = match reason {
                SalvageFailure::Declined => FlexFactorResult::Declined,
                SalvageFailure::Expired => FlexFactorResult::Expired,
                SalvageFailure::Cancelled => FlexFactorResult::Cancelled,
                SalvageFailure::ExpiredUnreconciled => FlexFactorResult::StillPending,
                other => {
                    return Err(format!(
                        "a failure {other:?} from a delivery or a poll is not one the \
                         domain records"
                    ))
                }
            };
            result(order_id, at, r, Some(source))
        }
        (None, SalvageFailure::Declined) => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Declined {
                flexfactor_order_id: None,
            },
        ),
        (None, SalvageFailure::Rejected) => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Rejected {
                reason: "FlexFactor refused the request (from the service's feed)".into(),
            },
        ),
        (None, SalvageFailure::Challenge) if is_cascade => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Challenge {
                flexfactor_order_id: None,
            },
        ),
        (None, SalvageFailure::OutcomeUnknown) if is_cascade => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Unknown {
                detail: "no answer (from the service's feed)".into(),
            },
        ),
        (None, SalvageFailure::NotApproved) if is_cascade => answer(
            order_id,
            at,
            attempt,
            EvaluateAnswer::Submitted {
                flexfactor_order_id: None,
            },
        ),
        (None, other) => {
            return Err(format!(
                "a {} salvage failed {other:?} without a source is not one the domain \
                 records",
                route.name()
            ))
        }
    })
}

/// `ResultDeferred`: the result as delivered; it waits for the salvage's resolution (O7).
fn deferred(
    track: &mut OrderTrack,
    order_id: &OrderId,
    r: FlexFactorResult,
    source: ResultSource,
    at: DateTime<Utc>,
) -> Line {
    track.deferred = track.deferred.map(|n| n + 1);
    result(order_id, at, r, Some(source))
}

/// `OrderRefunded`, `ChargebackRecorded`, `ResultIgnored`: the result as delivered, unless the
/// salvage's resolution derived it from a deferred one.
fn unless_drained(
    track: &mut OrderTrack,
    order_id: &OrderId,
    at: DateTime<Utc>,
    r: FlexFactorResult,
    source: ResultSource,
) -> Result<Line, String> {
    Ok(if track.drained(at)? {
        None
    } else {
        result(order_id, at, r, Some(source))
    })
}

#[cfg(test)]
mod tests {
    use salvage_gateway::feed::FeedEvent;

    use crate::feed_export::exporter::export;
    use crate::feed_export::test_support::{feed_of_text, stories};

    #[test]
    fn a_feed_starting_mid_history_maps_what_it_can_and_names_what_it_cannot() {
        let feed = feed_of_text(&stories());
        // c-1's cascade answer is at its third-to-last event; start after its step started.
        let started = feed
            .iter()
            .position(|e| e.aggregate_id == "c-1" && e.event_type == "CascadeStepStarted")
            .expect("c-1 cascades");
        let tail: Vec<FeedEvent> = feed[started + 1..].to_vec();
        let text = export(&tail).unwrap_err().to_string();
        assert!(text.contains("CascadeEnded of order c-1"), "{text}");
        assert!(
            text.contains("export the feed from its beginning"),
            "{text}"
        );
        // From a clean cut (after c-1's last event), everything maps.
        let last_c1 = feed
            .iter()
            .rposition(|e| e.aggregate_id == "c-1")
            .expect("c-1");
        assert!(export(&feed[last_c1 + 1..]).is_ok());
    }
}
