//! A CRM-requested rerun of a declined order on a FlexFactor gateway.

use chrono::{DateTime, Utc};

use super::decision::Decision;
use super::network;
use super::submission::submit;
use crate::ids::GatewayId;
use crate::network::{AttemptKind, NetworkBlock, Verdict};
use crate::order::error::OrderError;
use crate::order::event::{OrderEvent, SalvageRoute};
use crate::order::state::SalvageState;
use crate::order::status::OrderStatus;
use crate::order_type::OrderType;
use crate::ports::SubmissionMode;
use crate::routing::{rerun_admissible, RerunFacts};
use crate::services::DomainServices;

pub(super) fn rerun(
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
    // N1, N3 (N9: and every N rule when the gateway enforces them): a rerun the card network
    // forbids is not submitted; it is recorded with its reason (N7).
    let kind = AttemptKind::FlexFactor {
        rules: ff.network_rules,
    };
    match network::verdict(d, services, kind, now) {
        Verdict::Allow => submit(d, SalvageRoute::Rerun, gateway, mode, now),
        Verdict::Block { reason, rule } => {
            d.emit(OrderEvent::AttemptBlocked {
                gateway,
                step: None,
                reason,
                rule,
                at: now,
            });
            Ok(())
        }
        Verdict::WaitUntil { rule, .. } => {
            d.emit(OrderEvent::AttemptBlocked {
                gateway,
                step: None,
                reason: NetworkBlock::NetworkWait,
                rule,
                at: now,
            });
            Ok(())
        }
    }
}
