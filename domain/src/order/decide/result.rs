//! A salvage's result: success, failure, and what FlexFactor later reports (webhooks, polls,
//! reconciliation), with the refunds and chargebacks deferred until the result (O7).

use chrono::{DateTime, Utc};

use super::cascade::start_step;
use super::decision::Decision;
use crate::ids::FlexFactorOrderId;
use crate::order::command::{FlexFactorResult, ResultSource};
use crate::order::error::OrderError;
use crate::order::event::{
    CascadeOutcome, IgnoredBecause, OrderEvent, SalvageFailure, SalvageRoute,
};
use crate::order::state::{Salvage, SalvageState};
use crate::services::DomainServices;

/// O8: how long after a salvage's expiry reconciliation keeps asking before it gives up and
/// records the salvage as failed.
pub const RECONCILE_GIVE_UP_DAYS: i64 = 3;

pub(super) fn succeed(
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

pub(super) fn fail(
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

pub(super) fn apply_result(
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
