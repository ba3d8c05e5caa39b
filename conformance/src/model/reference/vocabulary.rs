//! The reference model's vocabulary: what the transitions talk about (declines, attempts,
//! gateway and FlexFactor behaviours, deliveries, products, sales) and the transitions.

use std::fmt;

use salvage_domain::{DeclineType, OrderType};

use crate::model::network::Network;
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

/// The network's advice a decline carries (D1), or the raw code the Visa category is read from
/// (N6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Response code 05 and no advice: Visa category 4 (05 is in no table).
    None,
    /// No category, response code `.0`: the shipped table decides (N6).
    VisaCode(&'static str),
    /// A Visa decline category (1-4).
    VisaCategory(u8),
    /// A Mastercard merchant advice code.
    Mac(&'static str),
}

impl Advice {
    /// The raw response code.
    pub fn response_code(self) -> &'static str {
        match self {
            Advice::VisaCode(code) => code,
            _ => "05",
        }
    }

    pub fn visa_category(self) -> Option<u8> {
        match self {
            Advice::VisaCategory(c) => Some(c),
            _ => None,
        }
    }

    pub fn mastercard_advice_code(self) -> Option<&'static str> {
        match self {
            Advice::Mac(m) => Some(m),
            _ => None,
        }
    }
}

/// A decline: how the processor reports it (D1, D2) and the network's advice (N1-N6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    pub kind: DeclineKind,
    pub advice: Advice,
}

impl Decline {
    /// D2/D3 for the sample setup.
    pub fn soft_on(self, gateway: &str, order_type: OrderType) -> bool {
        self.kind.soft_on(gateway, order_type)
    }
}

impl From<DeclineKind> for Decline {
    fn from(kind: DeclineKind) -> Decline {
        Decline {
            kind,
            advice: Advice::None,
        }
    }
}

/// The cards the model pays with: several orders and subscriptions share one card (N8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Card {
    VisaA,
    VisaB,
    Mastercard,
    /// American Express: no network rule of Visa's or Mastercard's applies.
    Amex,
}

impl Card {
    pub const ALL: [Card; 4] = [Card::VisaA, Card::VisaB, Card::Mastercard, Card::Amex];

    /// The card's token (the ledger's key for it).
    pub fn token(self) -> &'static str {
        match self {
            Card::VisaA => "tok_visa_a",
            Card::VisaB => "tok_visa_b",
            Card::Mastercard => "tok_mastercard",
            Card::Amex => "tok_amex",
        }
    }

    pub fn bin(self) -> &'static str {
        match self {
            Card::VisaA => "411111",
            Card::VisaB => "400030",
            Card::Mastercard => "510026",
            Card::Amex => "378282",
        }
    }

    pub fn last4(self) -> &'static str {
        match self {
            Card::VisaA => "1111",
            Card::VisaB => "2220",
            Card::Mastercard => "5851",
            Card::Amex => "0005",
        }
    }

    /// Its network, by hand (not from the BIN ranges the domain reads).
    pub fn network(self) -> Network {
        match self {
            Card::VisaA | Card::VisaB => Network::Visa,
            Card::Mastercard => Network::Mastercard,
            Card::Amex => Network::Other,
        }
    }
}

/// The result of an order's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Approved,
    Declined(Decline),
}

/// How the regular gateways answer charges (cascade steps, recycle re-attempts) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBehaviour {
    Approve,
    Decline(Decline),
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
    pub card: Card,
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
        card: Card,
        result: Attempt,
    },
    /// A rebill from the CRM's own billing (Y1, D4).
    PlaceRebill {
        order: String,
        subscription: String,
        gateway: &'static str,
        card: Card,
        result: Attempt,
    },
    /// The CRM reports `count` sales of `card` declined on stripe-eu (no cascade) at once: the
    /// card's history grows by attempts Salvage did not make (N2, N5, N8). Orders
    /// `h{n}-{i}`.
    CrmDeclines {
        prefix: String,
        card: Card,
        count: u32,
        decline: Decline,
    },
    /// The service restarts: every aggregate is loaded again from its stored events (N8: the
    /// card's history comes from them); timers, being stored, survive.
    Restart,
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
                "PlaceSale({} {:?} on {}{} ip={:?} sub={:?} {:?} {:?})",
                s.order,
                s.product,
                s.gateway,
                s.profile.map(|p| format!(" via {p}")).unwrap_or_default(),
                s.ip,
                s.subscription,
                s.card,
                s.result
            ),
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                card,
                result,
            } => write!(
                f,
                "PlaceTrialCompletion({order} of {subscription} on {gateway} {card:?} {result:?})"
            ),
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                card,
                result,
            } => write!(
                f,
                "PlaceRebill({order} of {subscription} on {gateway} {card:?} {result:?})"
            ),
            Transition::CrmDeclines {
                prefix,
                card,
                count,
                decline,
            } => write!(f, "CrmDeclines({prefix}-1..={count} {card:?} {decline:?})"),
            Transition::Restart => write!(f, "Restart"),
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
