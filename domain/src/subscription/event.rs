//! Events of the Subscription aggregate.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::status::SubscriptionStatus;
use crate::customer::CredentialKind;
use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::idempotency::IdempotencyKey;
use crate::ids::{CampaignId, GatewayId, OrderId, ProductId, SubscriptionId};
use crate::money::Money;
use crate::network::{CardKey, NetworkBlock, NetworkRule};
use crate::order::RecurringTerms;
use crate::routing::{RecyclePlan, RecycleSlot, RecycleTarget};

/// What moved a subscription to its next cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdvanceVia {
    /// The CRM's own rebill was approved.
    Rebill,
    /// Y2: a recycle re-attempt on the billing gateway was approved.
    Recycle { attempt: u32 },
    /// O4: FlexFactor salvaged the rebill.
    #[serde(rename = "flexfactor")]
    FlexFactor,
}

/// Why a subscription is Recycle Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecycleFailure {
    /// D4: the rebill (or a re-attempt) was hard-declined.
    HardDecline,
    /// Y4: every re-attempt declined.
    Exhausted,
    /// Y4: the billing gateway has no recycle profile (no re-attempts at all).
    NoRecycleProfile,
    /// O5: FlexFactor did not recover the rebill (declined, expired, cancelled).
    FlexFactorFailed,
    /// N1, N7: the card network forbids every further attempt on the card.
    NetworkNeverRetry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum SubscriptionEvent {
    SubscriptionCreated {
        subscription_id: SubscriptionId,
        origin_order_id: OrderId,
        campaign_id: CampaignId,
        product_id: ProductId,
        price: Money,
        billing_gateway: GatewayId,
        credential: CredentialKind,
        terms: RecurringTerms,
        status: SubscriptionStatus,
        next_bill_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card: Option<CardKey>,
        at: DateTime<Utc>,
    },
    /// D1: the rebill's decline with its facts and the verdict after mapping.
    RebillDeclined {
        order_id: OrderId,
        facts: DeclineFacts,
        effective: EffectiveDecline,
        at: DateTime<Utc>,
    },
    /// Y1: recycle billing starts, with the plan it follows.
    RecycleBillingStarted {
        order_id: OrderId,
        declined_gateway: GatewayId,
        plan: RecyclePlan,
        at: DateTime<Utc>,
    },
    RecycleAttemptScheduled {
        order_id: OrderId,
        attempt: u32,
        target: RecycleTarget,
        due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Y2: a re-attempt on the billing gateway is being charged, under this key.
    RecycleAttemptStarted {
        order_id: OrderId,
        attempt: u32,
        gateway: GatewayId,
        idempotency_key: IdempotencyKey,
        at: DateTime<Utc>,
    },
    RecycleAttemptDeclined {
        order_id: OrderId,
        attempt: u32,
        facts: DeclineFacts,
        effective: EffectiveDecline,
        at: DateTime<Utc>,
    },
    /// The charge's answer never came back: awaits reconciliation, never charged again.
    RecycleAttemptOutcomeUnknown {
        order_id: OrderId,
        attempt: u32,
        detail: String,
        at: DateTime<Utc>,
    },
    /// N7: re-attempt `attempt` was not made: the card network forbids it now.
    RecycleAttemptBlocked {
        order_id: OrderId,
        attempt: u32,
        reason: NetworkBlock,
        rule: NetworkRule,
        at: DateTime<Utc>,
    },
    /// N4: re-attempt `attempt` waits for the network's advised time; it is moved, not dropped.
    RecycleAttemptDelayed {
        order_id: OrderId,
        attempt: u32,
        until: DateTime<Utc>,
        rule: NetworkRule,
        at: DateTime<Utc>,
    },
    /// Y3: the rebill goes to FlexFactor once; later slots are not used.
    RecycleHandedToFlexFactor {
        order_id: OrderId,
        attempt: u32,
        slot: RecycleSlot,
        flexfactor_gateway: GatewayId,
        at: DateTime<Utc>,
    },
    /// Exactly one per paid rebill: O4, Y2.
    CycleAdvanced {
        order_id: OrderId,
        from_cycle: u32,
        to_cycle: u32,
        /// O4: after a FlexFactor salvage, the gateway that declined; never FlexFactor (S8).
        billing_gateway: GatewayId,
        via: AdvanceVia,
        next_bill_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    RecycleFailed {
        order_id: OrderId,
        reason: RecycleFailure,
        at: DateTime<Utc>,
    },
    /// O7: a result for a rebill already settled changes nothing.
    SalvageResultIgnored {
        order_id: OrderId,
        succeeded: bool,
        at: DateTime<Utc>,
    },
    SubscriptionCancelled {
        reason: String,
        at: DateTime<Utc>,
    },
}

impl SubscriptionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SubscriptionEvent::SubscriptionCreated { .. } => "SubscriptionCreated",
            SubscriptionEvent::RebillDeclined { .. } => "RebillDeclined",
            SubscriptionEvent::RecycleBillingStarted { .. } => "RecycleBillingStarted",
            SubscriptionEvent::RecycleAttemptScheduled { .. } => "RecycleAttemptScheduled",
            SubscriptionEvent::RecycleAttemptStarted { .. } => "RecycleAttemptStarted",
            SubscriptionEvent::RecycleAttemptDeclined { .. } => "RecycleAttemptDeclined",
            SubscriptionEvent::RecycleAttemptOutcomeUnknown { .. } => {
                "RecycleAttemptOutcomeUnknown"
            }
            SubscriptionEvent::RecycleAttemptBlocked { .. } => "RecycleAttemptBlocked",
            SubscriptionEvent::RecycleAttemptDelayed { .. } => "RecycleAttemptDelayed",
            SubscriptionEvent::RecycleHandedToFlexFactor { .. } => "RecycleHandedToFlexFactor",
            SubscriptionEvent::CycleAdvanced { .. } => "CycleAdvanced",
            SubscriptionEvent::RecycleFailed { .. } => "RecycleFailed",
            SubscriptionEvent::SalvageResultIgnored { .. } => "SalvageResultIgnored",
            SubscriptionEvent::SubscriptionCancelled { .. } => "SubscriptionCancelled",
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            SubscriptionEvent::SubscriptionCreated { at, .. }
            | SubscriptionEvent::RebillDeclined { at, .. }
            | SubscriptionEvent::RecycleBillingStarted { at, .. }
            | SubscriptionEvent::RecycleAttemptScheduled { at, .. }
            | SubscriptionEvent::RecycleAttemptStarted { at, .. }
            | SubscriptionEvent::RecycleAttemptDeclined { at, .. }
            | SubscriptionEvent::RecycleAttemptOutcomeUnknown { at, .. }
            | SubscriptionEvent::RecycleAttemptBlocked { at, .. }
            | SubscriptionEvent::RecycleAttemptDelayed { at, .. }
            | SubscriptionEvent::RecycleHandedToFlexFactor { at, .. }
            | SubscriptionEvent::CycleAdvanced { at, .. }
            | SubscriptionEvent::RecycleFailed { at, .. }
            | SubscriptionEvent::SalvageResultIgnored { at, .. }
            | SubscriptionEvent::SubscriptionCancelled { at, .. } => *at,
        }
    }
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
