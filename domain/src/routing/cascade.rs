//! C1-C4: the cascade route of a soft-declined new sale.

use serde::{Deserialize, Serialize};

use crate::decline::EffectiveDecline;
use crate::ids::{CampaignId, CascadeProfileId, GatewayId, GatewayProfileId};
use crate::order_type::OrderType;
use crate::setup::Setup;

/// What the router needs to know about a declined sale.
#[derive(Debug, Clone)]
pub struct CascadeInput<'a> {
    pub order_type: OrderType,
    pub campaign: &'a CampaignId,
    /// The gateway that declined.
    pub declined_gateway: &'a GatewayId,
    /// The ATRI gateway profile the sale was routed through, if any.
    pub gateway_profile: Option<&'a GatewayProfileId>,
    pub ip_address: Option<&'a str>,
    pub decline: &'a EffectiveDecline,
}

/// Where the route came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CascadeSource {
    /// The declining gateway's direct cascade profile.
    Direct { cascade_profile: CascadeProfileId },
    /// The cascade profile of the ATRI gateway profile the sale went through.
    GatewayProfile {
        gateway_profile: GatewayProfileId,
        cascade_profile: CascadeProfileId,
    },
    /// C2: the FlexFactor gateway's `cascade_all` option.
    CascadeAll,
}

/// One step of a cascade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CascadeStep {
    pub gateway: GatewayId,
    pub flexfactor: bool,
}

/// The ordered steps of a cascade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CascadeRoute {
    pub source: CascadeSource,
    pub steps: Vec<CascadeStep>,
    /// Set when the profile held FlexFactor but it was left out (C3, C4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flexfactor_skipped: Option<NoCascadeReason>,
}

/// Why a sale does not cascade (or why its route leaves FlexFactor out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoCascadeReason {
    /// Only new sales cascade.
    NotNewSale,
    /// Hard declines do not cascade (D3).
    HardDecline,
    /// No cascade profile applies and `cascade_all` is off.
    NoCascadeProfile,
    /// C3: FlexFactor needs the order's ip_address.
    MissingIpAddress,
    /// C4: the campaign uses Single Transaction.
    SingleTransactionCampaign,
    /// The campaign is not in the setup.
    UnknownCampaign,
}

impl NoCascadeReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoCascadeReason::NotNewSale => "not_new_sale",
            NoCascadeReason::HardDecline => "hard_decline",
            NoCascadeReason::NoCascadeProfile => "no_cascade_profile",
            NoCascadeReason::MissingIpAddress => "missing_ip_address",
            NoCascadeReason::SingleTransactionCampaign => "single_transaction_campaign",
            NoCascadeReason::UnknownCampaign => "unknown_campaign",
        }
    }
}

/// The router's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CascadeDecision {
    Cascade(CascadeRoute),
    NoCascade { reason: NoCascadeReason },
}

/// C1-C4. The route of a declined sale:
/// - only effective-soft new sales cascade;
/// - C2: a FlexFactor gateway with `cascade_all` sends it straight (and only) to FlexFactor,
///   overriding every cascade profile;
/// - C1: otherwise the ATRI profile's cascade profile when the sale went through one, else the
///   declining gateway's direct cascade profile; its gateways in order, without the gateway that
///   just declined;
/// - C4 then C3: FlexFactor is left out on a Single Transaction campaign or without ip_address;
///   the reason is kept, and when nothing else is left the sale does not cascade at all.
pub fn cascade_route(setup: &Setup, input: &CascadeInput<'_>) -> CascadeDecision {
    let no = |reason| CascadeDecision::NoCascade { reason };
    if input.order_type != OrderType::NewSale {
        return no(NoCascadeReason::NotNewSale);
    }
    if !input.decline.may_go_to_flexfactor() {
        return no(NoCascadeReason::HardDecline);
    }
    let Some(campaign) = setup.campaign(input.campaign) else {
        return no(NoCascadeReason::UnknownCampaign);
    };
    let flexfactor_block = if campaign.single_transaction {
        Some(NoCascadeReason::SingleTransactionCampaign)
    } else if input.ip_address.is_none_or(|ip| ip.trim().is_empty()) {
        Some(NoCascadeReason::MissingIpAddress)
    } else {
        None
    };

    let (source, gateways): (CascadeSource, Vec<GatewayId>) =
        if let Some(ff) = setup.cascade_all_gateway() {
            (CascadeSource::CascadeAll, vec![ff.id.clone()])
        } else {
            let from_profile = input
                .gateway_profile
                .and_then(|gp| setup.gateway_profile(gp))
                .and_then(|gp| {
                    let cp = gp.cascade_profile.as_ref()?;
                    Some((
                        CascadeSource::GatewayProfile {
                            gateway_profile: gp.id.clone(),
                            cascade_profile: cp.clone(),
                        },
                        cp,
                    ))
                });
            let chosen = match (input.gateway_profile, from_profile) {
                (_, Some(found)) => Some(found),
                // Routed through a profile without a cascade profile: no direct fallback.
                (Some(_), None) => None,
                (None, None) => setup
                    .gateway(input.declined_gateway)
                    .and_then(|g| g.as_regular())
                    .and_then(|g| g.cascade_profile.as_ref())
                    .map(|cp| {
                        (
                            CascadeSource::Direct {
                                cascade_profile: cp.clone(),
                            },
                            cp,
                        )
                    }),
            };
            let Some((source, cp_id)) = chosen else {
                return no(NoCascadeReason::NoCascadeProfile);
            };
            let Some(cp) = setup.cascade_profile(cp_id) else {
                return no(NoCascadeReason::NoCascadeProfile);
            };
            (source, cp.gateways.clone())
        };

    let mut steps = Vec::new();
    let mut skipped = None;
    for g in gateways {
        if &g == input.declined_gateway || steps.iter().any(|s: &CascadeStep| s.gateway == g) {
            continue;
        }
        let flexfactor = setup.is_flexfactor(&g);
        if flexfactor {
            if let Some(reason) = flexfactor_block {
                skipped = Some(reason);
                continue;
            }
        }
        steps.push(CascadeStep {
            gateway: g,
            flexfactor,
        });
    }
    if steps.is_empty() {
        return no(skipped.unwrap_or(NoCascadeReason::NoCascadeProfile));
    }
    CascadeDecision::Cascade(CascadeRoute {
        source,
        steps,
        flexfactor_skipped: skipped,
    })
}
