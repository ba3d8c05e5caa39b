//! Commands of the Subscription aggregate.

use serde::{Deserialize, Serialize};

use crate::customer::CredentialKind;
use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::ids::{CampaignId, GatewayId, OrderId, ProductId, SubscriptionId};
use crate::money::Money;
use crate::network::CardKey;
use crate::order::RecurringTerms;
use crate::ports::GatewayAnswer;

/// A new subscription, from a paid new sale with a recurring product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSubscription {
    pub subscription_id: SubscriptionId,
    pub origin_order_id: OrderId,
    pub campaign_id: CampaignId,
    pub product_id: ProductId,
    pub price: Money,
    /// S8: never FlexFactor.
    pub billing_gateway: GatewayId,
    pub credential: CredentialKind,
    pub terms: RecurringTerms,
    /// The card the rebills charge (N8: its history is counted across aggregates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardKey>,
}

/// The outcome of a rebill (or trial completion) charged by the CRM's own billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RebillOutcome {
    Approved {
        gateway: GatewayId,
    },
    Declined {
        facts: DeclineFacts,
        effective: EffectiveDecline,
    },
}

/// Everything a Subscription can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SubscriptionCommand {
    Create(Box<CreateSubscription>),
    /// A rebill (order `order_id`) was approved or declined (Y1, D4).
    RecordRebill {
        order_id: OrderId,
        outcome: RebillOutcome,
    },
    /// The scheduler: re-attempt `attempt` is due (Y1-Y3).
    RunDueRecycleAttempt {
        order_id: OrderId,
        attempt: u32,
    },
    /// The billing gateway's answer to re-attempt `attempt` (Y2, Y4).
    RecordRecycleAttemptResult {
        order_id: OrderId,
        attempt: u32,
        answer: GatewayAnswer,
    },
    /// FlexFactor's final result for the rebill `order_id` (O4, O5) or the trial completion.
    ApplySalvageOutcome {
        order_id: OrderId,
        succeeded: bool,
        /// The gateway that declined the rebill: billing reverts to it (O4).
        declined_gateway: GatewayId,
    },
    Cancel {
        reason: String,
    },
}
