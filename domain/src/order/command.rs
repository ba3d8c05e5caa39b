//! Commands of the Order aggregate.

use serde::{Deserialize, Serialize};

use crate::customer::{CardToken, Customer, OrderItem};
use crate::decline::DeclineFacts;
use crate::ids::{CampaignId, GatewayId, GatewayProfileId, OrderId, SubscriptionId};
use crate::money::Money;
use crate::order_type::OrderType;
use crate::ports::{EvaluateAnswer, FlexFactorOrderStatus, GatewayAnswer};
use crate::routing::RecycleSlot;

/// The result of the first attempt, as the CRM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AttemptResult {
    Approved,
    Declined(DeclineFacts),
}

/// An order and the result of its first attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub order_type: OrderType,
    pub campaign_id: CampaignId,
    #[serde(default)]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(default)]
    pub ip_address: Option<String>,
    pub amount: Money,
    pub customer: Customer,
    pub card: CardToken,
    pub items: Vec<OrderItem>,
    /// The gateway of the first attempt.
    pub gateway: GatewayId,
    /// The ATRI gateway profile the sale was routed through, if any.
    #[serde(default)]
    pub gateway_profile: Option<GatewayProfileId>,
    pub result: AttemptResult,
}

/// Where a FlexFactor result comes from, for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultSource {
    /// A verified webhook delivery.
    Webhook {
        delivery_id: String,
        #[serde(default)]
        resent: bool,
    },
    /// `GET /orders/{id}` during reconciliation (O8).
    StatusPoll,
    /// A recorded trace replayed through the domain.
    Replay,
}

/// A result FlexFactor reported about an order after the submission (webhook or poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FlexFactorResult {
    Completed {
        #[serde(default)]
        flexfactor_order_id: Option<crate::ids::FlexFactorOrderId>,
        #[serde(default)]
        confirmation_id: Option<String>,
    },
    Declined,
    Expired,
    Cancelled,
    CaptureRequired,
    Refunded,
    Chargeback,
    /// A poll that says FlexFactor is still working on it.
    StillPending,
    /// F5: a status not understood; kept, never taken for success or pending.
    Unrecognized {
        raw_status: String,
    },
}

impl FlexFactorResult {
    /// The result a status poll gives (O8).
    pub fn from_status(status: &FlexFactorOrderStatus) -> Self {
        match status {
            FlexFactorOrderStatus::Pending => FlexFactorResult::StillPending,
            FlexFactorOrderStatus::Completed { confirmation_id } => FlexFactorResult::Completed {
                flexfactor_order_id: None,
                confirmation_id: confirmation_id.clone(),
            },
            FlexFactorOrderStatus::Declined => FlexFactorResult::Declined,
            FlexFactorOrderStatus::Expired => FlexFactorResult::Expired,
            FlexFactorOrderStatus::Cancelled => FlexFactorResult::Cancelled,
            FlexFactorOrderStatus::Refunded => FlexFactorResult::Refunded,
            FlexFactorOrderStatus::CaptureRequired => FlexFactorResult::CaptureRequired,
            FlexFactorOrderStatus::Unrecognized { raw_status } => FlexFactorResult::Unrecognized {
                raw_status: raw_status.clone(),
            },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FlexFactorResult::Completed { .. } => "completed",
            FlexFactorResult::Declined => "declined",
            FlexFactorResult::Expired => "expired",
            FlexFactorResult::Cancelled => "cancelled",
            FlexFactorResult::CaptureRequired => "capture_required",
            FlexFactorResult::Refunded => "refunded",
            FlexFactorResult::Chargeback => "chargeback",
            FlexFactorResult::StillPending => "still_pending",
            FlexFactorResult::Unrecognized { .. } => "unrecognized",
        }
    }
}

/// Everything an Order can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OrderCommand {
    /// Report an order and its first attempt. A soft-declined new sale starts its cascade.
    Place(Box<PlaceOrder>),
    /// The answer of a regular gateway to cascade step `step`.
    RecordCascadeStep { step: u32, answer: GatewayAnswer },
    /// FlexFactor's answer to `/evaluate` (or `/capture`) for submission `attempt`.
    RecordFlexFactorAnswer {
        attempt: u32,
        answer: EvaluateAnswer,
    },
    /// R1-R5: rerun the declined order on the FlexFactor gateway `gateway`.
    RequestRerun { gateway: GatewayId },
    /// Y3: recycle billing reached a FlexFactor slot: submit this rebill once.
    SubmitRecycleHandover {
        subscription_id: SubscriptionId,
        recycle_attempt: u32,
        slot: RecycleSlot,
        flexfactor_gateway: GatewayId,
    },
    /// A result delivered by webhook or found by a status poll (O1-O8, K1-K3).
    ApplyFlexFactorResult {
        result: FlexFactorResult,
        source: ResultSource,
    },
    /// Y2: a recycle re-attempt on the billing gateway paid this rebill.
    RecordPaidByRecycle {
        gateway: GatewayId,
        recycle_attempt: u32,
    },
}
