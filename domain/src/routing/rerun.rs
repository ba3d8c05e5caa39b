//! R1, R3, R5: whether a declined sale may be rerun on FlexFactor.

use serde::{Deserialize, Serialize};

use crate::decline::EffectiveDecline;
use crate::ids::GatewayId;
use crate::order_type::OrderType;
use crate::setup::Setup;

/// What the rerun check needs to know about the order.
#[derive(Debug, Clone)]
pub struct RerunFacts<'a> {
    pub order_type: OrderType,
    /// True when the order's status is `declined` (or, for a trial completion, when its
    /// last attempt was declined and it has not been paid since).
    pub declined: bool,
    /// True while a FlexFactor salvage of this order is pending.
    pub salvage_pending: bool,
    /// True once the order has been paid (by any gateway or by FlexFactor).
    pub paid: bool,
    /// The effective decline of the order's last declined attempt.
    pub decline: Option<&'a EffectiveDecline>,
}

/// Why a rerun is refused; `code()` is the stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RerunRefusal {
    #[error("R1: {0} is an ATRI gateway profile; rerun on the FlexFactor gateway itself")]
    RerunOnGatewayProfile(String),
    #[error("R1: gateway {0} is not a FlexFactor gateway; Salvage reruns declined sales on FlexFactor only")]
    NotFlexFactorGateway(String),
    #[error("gateway {0} is not in the setup")]
    UnknownGateway(String),
    #[error("R3: the order was hard-declined (after decline mapping); only soft declines go to FlexFactor")]
    HardDecline,
    #[error("R5: the order is {0}; only declined orders can be rerun")]
    NotDeclined(&'static str),
    #[error("R5: a FlexFactor salvage of this order is already pending")]
    AlreadyPending,
    #[error("rebills are not rerun; they go to FlexFactor through recycle billing")]
    RecurringOrder,
}

impl RerunRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RerunRefusal::RerunOnGatewayProfile(_) => "rerun_on_gateway_profile",
            RerunRefusal::NotFlexFactorGateway(_) => "not_flexfactor_gateway",
            RerunRefusal::UnknownGateway(_) => "unknown_gateway",
            RerunRefusal::HardDecline => "hard_decline",
            RerunRefusal::NotDeclined(_) => "not_declined",
            RerunRefusal::AlreadyPending => "salvage_pending",
            RerunRefusal::RecurringOrder => "recurring_order",
        }
    }
}

/// R1 (the FlexFactor gateway itself, never an ATRI profile), R5 (only declined orders, not
/// pending, paid or already salvaged) and R3 (only effective-soft declines), in that order.
pub fn rerun_admissible(
    setup: &Setup,
    facts: &RerunFacts<'_>,
    gateway: &GatewayId,
) -> Result<(), RerunRefusal> {
    if setup
        .gateway_profiles
        .iter()
        .any(|p| p.id.as_str() == gateway.as_str())
    {
        return Err(RerunRefusal::RerunOnGatewayProfile(gateway.to_string()));
    }
    match setup.gateway(gateway) {
        None => return Err(RerunRefusal::UnknownGateway(gateway.to_string())),
        Some(g) if !g.is_flexfactor() => {
            return Err(RerunRefusal::NotFlexFactorGateway(gateway.to_string()))
        }
        Some(_) => {}
    }
    if facts.order_type == OrderType::Recurring {
        return Err(RerunRefusal::RecurringOrder);
    }
    if facts.salvage_pending {
        return Err(RerunRefusal::AlreadyPending);
    }
    if facts.paid {
        return Err(RerunRefusal::NotDeclined("complete"));
    }
    if !facts.declined {
        return Err(RerunRefusal::NotDeclined("pending"));
    }
    match facts.decline {
        Some(d) if d.may_go_to_flexfactor() => Ok(()),
        _ => Err(RerunRefusal::HardDecline),
    }
}
