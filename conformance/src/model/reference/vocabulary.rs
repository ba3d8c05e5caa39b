//! The reference model's vocabulary: what the transitions talk about (declines, attempts,
//! gateway and FlexFactor behaviours, deliveries, products, sales) and the transitions.

use std::fmt;

use salvage_domain::{DeclineType, OrderType};

use crate::model::rules;

pub const MINUTES_PER_DAY: i64 = 24 * 60;
/// The longest clock move of one transition (the system under test clamps the same way).
pub const MAX_ADVANCE: i64 = 400 * MINUTES_PER_DAY;
/// O8: reconciliation gives up this long after the expiry.
pub const GIVE_UP_AFTER_EXPIRY: i64 = 3 * MINUTES_PER_DAY;

/// A decline as a processor reports it: its verdict and message (D1); mapping (D2) may turn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineKind {
    /// "Issuer unavailable", soft.
    SoftIssuerUnavailable,
    /// "Pick up card", hard.
    HardPickUpCard,
    /// "Insufficient funds", hard: soft on NMI gateways (nmi-nsf-is-soft).
    HardInsufficientFunds,
    /// "Do not honor", hard: soft on authnet-1 for rebills and trial completions.
    HardDoNotHonor,
    /// "Stolen card", soft: hard on NMI gateways for new sales (stolen-is-hard).
    SoftStolenCard,
}

impl DeclineKind {
    pub const ALL: [DeclineKind; 5] = [
        DeclineKind::SoftIssuerUnavailable,
        DeclineKind::HardPickUpCard,
        DeclineKind::HardInsufficientFunds,
        DeclineKind::HardDoNotHonor,
        DeclineKind::SoftStolenCard,
    ];

    pub fn verdict(self) -> DeclineType {
        match self {
            DeclineKind::SoftIssuerUnavailable | DeclineKind::SoftStolenCard => DeclineType::Soft,
            _ => DeclineType::Hard,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            DeclineKind::SoftIssuerUnavailable => "Issuer unavailable",
            DeclineKind::HardPickUpCard => "Pick up card",
            DeclineKind::HardInsufficientFunds => "DECLINE: Insufficient Funds (51)",
            DeclineKind::HardDoNotHonor => "Do Not Honor",
            DeclineKind::SoftStolenCard => "Stolen card, pick up",
        }
    }

    /// D2/D3 for the sample setup.
    pub fn soft_on(self, gateway: &str, order_type: OrderType) -> bool {
        rules::effective_soft(gateway, self.verdict(), self.message(), order_type)
    }
}

/// The result of an order's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Approved,
    Declined(DeclineKind),
}

/// How the regular gateways answer charges (cascade steps, recycle re-attempts) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBehaviour {
    Approve,
    Decline(DeclineKind),
    /// The answer never comes back (it may have charged).
    Unknown,
}

/// How FlexFactor answers `/evaluate` for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfAnswer {
    Approved,
    Declined,
    Challenge,
    Submitted,
    CaptureRequired,
    /// A 400: not taken.
    Rejected,
    /// A timeout after sending (F3).
    Unknown,
}

/// A result FlexFactor reports later, by webhook or status poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Completed,
    Declined,
    Expired,
    Cancelled,
    CaptureRequired,
    Refunded,
    Chargeback,
    StillPending,
}

/// The products of the sample setup the model sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// skincare, one-time.
    Cleanser,
    /// skincare, 30-day subscription.
    Monthly,
    /// skincare, 30-day subscription with a 14-day trial.
    Trial,
    /// one-click-bundle (Single Transaction), one-time.
    Bundle,
}

impl Product {
    pub fn id(self) -> &'static str {
        match self {
            Product::Cleanser => "cleanser",
            Product::Monthly => "serum-monthly",
            Product::Trial => "serum-trial",
            Product::Bundle => "bundle",
        }
    }

    pub fn price_minor(self) -> i64 {
        match self {
            Product::Cleanser => 1999,
            Product::Monthly => 3999,
            Product::Trial => 499,
            Product::Bundle => 8999,
        }
    }

    pub fn campaign(self) -> &'static str {
        match self {
            Product::Bundle => rules::ONE_CLICK,
            _ => rules::SKINCARE,
        }
    }

    pub fn recurring(self) -> bool {
        matches!(self, Product::Monthly | Product::Trial)
    }
}

/// The `ip_address` of a sale (C3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    Present,
    Missing,
    /// Present but blank: as good as missing.
    Blank,
}

/// A new sale reported by the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub order: String,
    pub product: Product,
    pub gateway: &'static str,
    pub profile: Option<&'static str>,
    pub ip: Ip,
    /// The CRM's subscription id; without it a recurring product's subscription is
    /// `{order}-{product}`.
    pub subscription: Option<String>,
    pub result: Attempt,
}

/// One step of a model test.
#[derive(Clone, PartialEq, Eq)]
pub enum Transition {
    /// `POST /v1/orders` for a new sale (C1-C6, S3).
    PlaceSale(Sale),
    /// The first billing after a trial, reported by the CRM.
    PlaceTrialCompletion {
        order: String,
        subscription: String,
        gateway: &'static str,
        result: Attempt,
    },
    /// A rebill from the CRM's own billing (Y1, D4).
    PlaceRebill {
        order: String,
        subscription: String,
        gateway: &'static str,
        result: Attempt,
    },
    /// R1-R5.
    Rerun {
        order: String,
        gateway: &'static str,
    },
    /// A webhook (possibly resent) or a status poll (O1-O8, K1-K3).
    Deliver {
        order: String,
        delivery: Delivery,
        poll: bool,
        resent: bool,
    },
    /// FlexFactor's answer to `/evaluate` arriving late (after a timeout), for the current
    /// submission or, `stale`, for one that is not awaited (F3, O7).
    EvaluateAnswerArrives {
        order: String,
        stale: bool,
        answer: FfAnswer,
    },
    /// The clock moves on; due timers run (Y1-Y3, O8).
    Advance {
        minutes: i64,
    },
    SetGateways(GatewayBehaviour),
    SetFlexFactor(FfAnswer),
    Cancel {
        subscription: String,
    },
}

impl fmt::Debug for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::PlaceSale(s) => write!(
                f,
                "PlaceSale({} {:?} on {}{} ip={:?} sub={:?} {:?})",
                s.order,
                s.product,
                s.gateway,
                s.profile.map(|p| format!(" via {p}")).unwrap_or_default(),
                s.ip,
                s.subscription,
                s.result
            ),
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                result,
            } => write!(
                f,
                "PlaceTrialCompletion({order} of {subscription} on {gateway} {result:?})"
            ),
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                result,
            } => write!(
                f,
                "PlaceRebill({order} of {subscription} on {gateway} {result:?})"
            ),
            Transition::Rerun { order, gateway } => write!(f, "Rerun({order} on {gateway})"),
            Transition::Deliver {
                order,
                delivery,
                poll,
                resent,
            } => write!(
                f,
                "Deliver({order} {delivery:?}{}{})",
                if *poll { " by poll" } else { " by webhook" },
                if *resent { " resent" } else { "" }
            ),
            Transition::EvaluateAnswerArrives {
                order,
                stale,
                answer,
            } => write!(
                f,
                "EvaluateAnswerArrives({order} {answer:?}{})",
                if *stale { " for a stale attempt" } else { "" }
            ),
            Transition::Advance { minutes } => {
                write!(
                    f,
                    "Advance({}d {}m)",
                    minutes / MINUTES_PER_DAY,
                    minutes % MINUTES_PER_DAY
                )
            }
            Transition::SetGateways(b) => write!(f, "SetGateways({b:?})"),
            Transition::SetFlexFactor(a) => write!(f, "SetFlexFactor({a:?})"),
            Transition::Cancel { subscription } => write!(f, "Cancel({subscription})"),
        }
    }
}
