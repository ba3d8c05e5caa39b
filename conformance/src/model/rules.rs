//! The rules of the sample setup (`examples/salvage.toml`), written out by hand for the
//! reference model, apart from the domain's setup model and routing code. When the sample setup
//! changes, this file must follow it (the `model_rules_match_the_sample_setup` test says so).

use salvage_domain::{DeclineType, OrderType};

pub const NMI_MAIN: &str = "nmi-main";
pub const NMI_BACKUP: &str = "nmi-backup";
pub const AUTHNET: &str = "authnet-1";
pub const STRIPE_EU: &str = "stripe-eu";
pub const FLEXFACTOR: &str = "flexfactor";
pub const ATRI_US: &str = "atri-us";
pub const ATRI_EU: &str = "atri-eu";

/// The regular gateways of the sample setup.
pub const REGULAR: [&str; 4] = [NMI_MAIN, NMI_BACKUP, AUTHNET, STRIPE_EU];

/// The ATRI gateway profiles.
pub const PROFILES: [&str; 2] = [ATRI_US, ATRI_EU];

pub const SKINCARE: &str = "skincare";
/// C4: Single Transaction.
pub const ONE_CLICK: &str = "one-click-bundle";

/// S2: the FlexFactor gateway's `expiry_days`.
pub const EXPIRY_DAYS: i64 = 21;
/// K1: `include_chargebacks` is on in the sample.
pub const INCLUDE_CHARGEBACKS: bool = true;

pub fn is_flexfactor(gateway: &str) -> bool {
    gateway == FLEXFACTOR
}

pub fn is_single_transaction(campaign: &str) -> bool {
    campaign == ONE_CLICK
}

/// The processor type of a regular gateway.
pub fn processor(gateway: &str) -> Option<&'static str> {
    match gateway {
        NMI_MAIN | NMI_BACKUP => Some("nmi"),
        AUTHNET => Some("authorize_net"),
        STRIPE_EU => Some("stripe"),
        _ => None,
    }
}

/// D2 with the sample's three mapping rules, in their order; D3: `true` when the effective
/// decline is soft.
pub fn effective_soft(
    gateway: &str,
    processor_verdict: DeclineType,
    message: &str,
    order_type: OrderType,
) -> bool {
    let m = message.to_lowercase();
    let nmi = processor(gateway) == Some("nmi");
    let recurring = matches!(
        order_type,
        OrderType::Recurring | OrderType::TrialCompletion
    );
    if nmi && m.contains("insufficient funds") {
        return true; // nmi-nsf-is-soft
    }
    if gateway == AUTHNET && recurring && m.contains("do not honor") {
        return true; // authnet-do-not-honor-rebills-soft
    }
    if nmi && order_type == OrderType::NewSale && m.contains("stolen") {
        return false; // stolen-is-hard
    }
    processor_verdict == DeclineType::Soft
}

/// C1: the gateways of the cascade route of a sale declined on `gateway` (routed through
/// `profile` if any), before C3/C4 and before the declining gateway is left out. `None`: no
/// cascade profile applies.
pub fn cascade_profile_gateways(gateway: &str, profile: Option<&str>) -> Option<Vec<&'static str>> {
    match profile {
        Some(ATRI_US) => Some(vec![FLEXFACTOR]),
        Some(_) => None,
        None if gateway == NMI_MAIN => Some(vec![NMI_BACKUP, FLEXFACTOR]),
        None => None,
    }
}

/// One re-attempt of a recycle plan: its wait and whether it is the FlexFactor hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStep {
    pub wait_days: i64,
    pub flexfactor: bool,
}

/// Y1/Y3: the re-attempts of a soft-declined rebill billing on `gateway`, up to and including
/// the first FlexFactor slot. Empty: no recycle profile (Y4 at once).
pub fn recycle_plan(gateway: &str) -> Vec<PlanStep> {
    let b = |wait_days| PlanStep {
        wait_days,
        flexfactor: false,
    };
    let f = |wait_days| PlanStep {
        wait_days,
        flexfactor: true,
    };
    match gateway {
        // recycle-standard: 1, 3, 3 days on the billing gateway, then FlexFactor at 4 (4-6).
        NMI_MAIN | NMI_BACKUP => vec![b(1), b(3), b(3), f(5)],
        // recycle-final-only: 2, 2 days, then FlexFactor at the final attempt.
        AUTHNET => vec![b(2), b(2), f(7)],
        _ => Vec::new(),
    }
}

/// N6: the Visa category of a decline without one, from its raw response code, as the shipped
/// table (`domain/src/network/visa_categories.toml`, `[default]`) has the codes the model uses;
/// the sample setup adds no table of its own, so the processor does not matter. A code found
/// nowhere is category 4.
pub fn visa_category(code: &str) -> u8 {
    match code {
        "04" | "41" | "43" | "46" => 1, // pick up, lost, stolen, closed: never approve
        "51" | "91" => 2,               // insufficient funds, issuer unavailable
        "54" | "82" => 3,               // expired card, CVV incorrect
        _ => 4,
    }
}
