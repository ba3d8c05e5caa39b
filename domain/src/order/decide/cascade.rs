//! The cascade of a declined new sale: starting it, starting each step, and recording a step's
//! gateway answer.

use chrono::{DateTime, Utc};

use super::decision::Decision;
use super::network;
use super::submission::submit;
use crate::idempotency::IdempotencyKey;
use crate::ids::GatewayId;
use crate::network::{AttemptKind, NetworkBlock, Verdict};
use crate::order::error::OrderError;
use crate::order::event::{CascadeOutcome, OrderEvent, SalvageRoute};
use crate::ports::{GatewayAnswer, SubmissionMode};
use crate::routing::{cascade_route, CascadeDecision, CascadeInput};
use crate::services::DomainServices;

pub(super) fn start_cascade(
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

/// N1-N5, N9: records a step the card network forbids (N7) and answers true; the cascade then
/// moves on to its next step.
fn block_step(
    d: &mut Decision<'_>,
    services: &DomainServices,
    kind: AttemptKind,
    step: u32,
    gateway: &GatewayId,
    now: DateTime<Utc>,
) -> bool {
    match network::verdict(d, services, kind, now) {
        Verdict::Allow => false,
        Verdict::Block { reason, rule } => {
            d.emit(OrderEvent::AttemptBlocked {
                gateway: gateway.clone(),
                step: Some(step),
                reason,
                rule,
                at: now,
            });
            true
        }
        // A step that cannot wait is never told to (the guard blocks it with `network_wait`).
        Verdict::WaitUntil { rule, .. } => {
            d.emit(OrderEvent::AttemptBlocked {
                gateway: gateway.clone(),
                step: Some(step),
                reason: NetworkBlock::NetworkWait,
                rule,
                at: now,
            });
            true
        }
    }
}

/// Starts cascade step `step`, or ends the cascade declined when there is none.
pub(super) fn start_step(
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
        let kind = AttemptKind::FlexFactor {
            rules: services.setup.flexfactor_network_rules(&next.gateway),
        };
        if block_step(d, services, kind, step, &next.gateway, now) {
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
        // A cascade answers at once: a step cannot wait for N4's advised time.
        let kind = AttemptKind::Regular { can_wait: false };
        if block_step(d, services, kind, step, &next.gateway, now) {
            return start_step(d, step + 1, services, now);
        }
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

pub(super) fn record_cascade_step(
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
