//! Events of the Order aggregate. Each carries what an auditor needs and the time from the
//! Clock; `event_type` names are stable and versioned.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::command::{FlexFactorResult, ResultSource};
use crate::customer::{CardToken, Customer, OrderItem};
use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::idempotency::IdempotencyKey;
use crate::ids::{
    CampaignId, FlexFactorOrderId, GatewayId, GatewayProfileId, OrderId, ProductId, SubscriptionId,
};
use crate::money::Money;
use crate::network::{NetworkBlock, NetworkRule};
use crate::order_type::OrderType;
use crate::ports::SubmissionMode;
use crate::routing::{CascadeRoute, NoCascadeReason, RecycleSlot};
use crate::setup::Recurring;

/// A recurring product bought by the order (O6 needs them to create subscriptions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringLine {
    pub product_id: ProductId,
    pub price: Money,
    pub recurring: RecurringTerms,
}

/// The recurring terms of a product, copied at placement so later setup changes do not rewrite
/// history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringTerms {
    pub interval_days: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<i64>,
}

impl From<Recurring> for RecurringTerms {
    fn from(r: Recurring) -> Self {
        RecurringTerms {
            interval_days: r.interval_days,
            trial_days: r.trial_days,
        }
    }
}

/// The facts of an order fixed at placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    pub order_id: OrderId,
    pub order_type: OrderType,
    pub campaign_id: CampaignId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub amount: Money,
    pub customer: Customer,
    pub card: CardToken,
    pub items: Vec<OrderItem>,
    /// The gateway of the first attempt.
    pub gateway: GatewayId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_profile: Option<GatewayProfileId>,
    /// The recurring products of the order (O6).
    #[serde(default)]
    pub recurring_lines: Vec<RecurringLine>,
}

/// How a salvage reached FlexFactor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum SalvageRoute {
    /// C5: synchronous, customer-initiated, at cascade step `step`.
    Cascade { step: u32 },
    /// R2: asynchronous rerun of a declined sale.
    Rerun,
    /// Y3: asynchronous hand-over from recycle billing.
    Recycle {
        subscription_id: SubscriptionId,
        recycle_attempt: u32,
        slot: RecycleSlot,
    },
}

impl SalvageRoute {
    pub fn name(&self) -> &'static str {
        match self {
            SalvageRoute::Cascade { .. } => "cascade",
            SalvageRoute::Rerun => "rerun",
            SalvageRoute::Recycle { .. } => "recycle",
        }
    }
}

/// Why a salvage failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalvageFailure {
    Declined,
    /// C5: a cascade has no challenge widget.
    Challenge,
    Expired,
    Cancelled,
    /// FlexFactor refused the request (400).
    Rejected,
    /// C5: a cascade's outcome is unknown; the order is declined and cancelled at FlexFactor.
    OutcomeUnknown,
    /// C5: any other answer to a cascade.
    NotApproved,
    /// O8: the expiry passed long ago and reconciliation still has no final answer.
    ExpiredUnreconciled,
}

/// How a cascade ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CascadeOutcome {
    Approved {
        gateway: GatewayId,
    },
    Declined,
    /// A regular gateway's answer never came back: the order stays pending for the CRM to
    /// reconcile (it may have been charged).
    Unknown {
        gateway: GatewayId,
    },
}

/// Why a FlexFactor result changed nothing (O7, K2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoredBecause {
    /// The salvage's outcome was already applied.
    AlreadyResolved,
    /// No FlexFactor salvage of this order exists.
    NoSalvage,
    /// A refund or chargeback for an order that FlexFactor did not salvage, or already applied.
    NotApplicable,
    /// K2: `include_chargebacks` is off.
    ChargebacksNotIncluded,
}

/// Every event of an Order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum OrderEvent {
    OrderPlaced {
        /// Shared with the order's state once applied (`Order::details`), so that a copy of
        /// the event costs a count, not the order's strings (serialized as the details
        /// themselves).
        details: Arc<OrderDetails>,
        at: DateTime<Utc>,
    },
    AttemptApproved {
        gateway: GatewayId,
        at: DateTime<Utc>,
    },
    /// D1: every declined attempt with its facts and the verdict after mapping.
    AttemptDeclined {
        facts: DeclineFacts,
        effective: EffectiveDecline,
        at: DateTime<Utc>,
    },
    CascadeStarted {
        route: CascadeRoute,
        at: DateTime<Utc>,
    },
    /// C3/C4 and the rest: the sale does not cascade, and why.
    CascadeSkipped {
        reason: NoCascadeReason,
        at: DateTime<Utc>,
    },
    CascadeStepStarted {
        step: u32,
        gateway: GatewayId,
        idempotency_key: IdempotencyKey,
        at: DateTime<Utc>,
    },
    CascadeStepDeclined {
        step: u32,
        facts: DeclineFacts,
        effective: EffectiveDecline,
        at: DateTime<Utc>,
    },
    CascadeEnded {
        outcome: CascadeOutcome,
        at: DateTime<Utc>,
    },
    /// N7: an attempt on `gateway` (cascade step `step`, or a rerun when there is no step) was
    /// not made: the card network forbids it now.
    AttemptBlocked {
        gateway: GatewayId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<u32>,
        reason: NetworkBlock,
        rule: NetworkRule,
        at: DateTime<Utc>,
    },
    /// F3: recorded before FlexFactor is called, with the key every retry reuses.
    SalvageSubmitted {
        attempt: u32,
        route: SalvageRoute,
        flexfactor_gateway: GatewayId,
        idempotency_key: IdempotencyKey,
        mode: SubmissionMode,
        amount: Money,
        at: DateTime<Utc>,
    },
    /// FlexFactor took the submission for asynchronous work.
    SalvageAccepted {
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flexfactor_order_id: Option<FlexFactorOrderId>,
        status: String,
        at: DateTime<Utc>,
    },
    /// F3: sent, no answer: reconcile, never resubmit under a new key.
    SalvageOutcomeUnknown {
        attempt: u32,
        detail: String,
        at: DateTime<Utc>,
    },
    /// F5: an answer this version does not understand, kept as such.
    SalvageAnswerUnrecognized {
        attempt: u32,
        raw_status: String,
        at: DateTime<Utc>,
    },
    CaptureRequested {
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flexfactor_order_id: Option<FlexFactorOrderId>,
        amount: Money,
        at: DateTime<Utc>,
    },
    SalvageSucceeded {
        attempt: u32,
        route: SalvageRoute,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flexfactor_order_id: Option<FlexFactorOrderId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmation_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<ResultSource>,
        at: DateTime<Utc>,
    },
    SalvageFailed {
        attempt: u32,
        route: SalvageRoute,
        reason: SalvageFailure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<ResultSource>,
        at: DateTime<Utc>,
    },
    /// C5: a cascade whose outcome is unknown is cancelled at FlexFactor.
    ExternalCancelRequested {
        attempt: u32,
        flexfactor_gateway: GatewayId,
        at: DateTime<Utc>,
    },
    /// O1/O4: fulfillment of the order is requested from the CRM.
    FulfillmentRequested { at: DateTime<Utc> },
    /// Y2: the rebill was paid by a recycle re-attempt on the billing gateway.
    PaidByRecycle {
        gateway: GatewayId,
        recycle_attempt: u32,
        at: DateTime<Utc>,
    },
    /// K3.
    OrderRefunded {
        source: ResultSource,
        at: DateTime<Utc>,
    },
    /// K1.
    ChargebackRecorded {
        source: ResultSource,
        at: DateTime<Utc>,
    },
    /// O7, K2: a result that changed nothing, and why.
    ResultIgnored {
        result: FlexFactorResult,
        reason: IgnoredBecause,
        source: ResultSource,
        at: DateTime<Utc>,
    },
    /// O7: a refund or chargeback that arrived before the salvage's own result (reordered
    /// deliveries); applied as soon as the salvage succeeds.
    ResultDeferred {
        result: FlexFactorResult,
        source: ResultSource,
        at: DateTime<Utc>,
    },
    /// O8: a poll without a final answer before the give-up time.
    ReconciliationInconclusive {
        attempt: u32,
        result: FlexFactorResult,
        at: DateTime<Utc>,
    },
}

impl OrderEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrderEvent::OrderPlaced { at, .. }
            | OrderEvent::AttemptApproved { at, .. }
            | OrderEvent::AttemptDeclined { at, .. }
            | OrderEvent::CascadeStarted { at, .. }
            | OrderEvent::CascadeSkipped { at, .. }
            | OrderEvent::CascadeStepStarted { at, .. }
            | OrderEvent::CascadeStepDeclined { at, .. }
            | OrderEvent::CascadeEnded { at, .. }
            | OrderEvent::AttemptBlocked { at, .. }
            | OrderEvent::SalvageSubmitted { at, .. }
            | OrderEvent::SalvageAccepted { at, .. }
            | OrderEvent::SalvageOutcomeUnknown { at, .. }
            | OrderEvent::SalvageAnswerUnrecognized { at, .. }
            | OrderEvent::CaptureRequested { at, .. }
            | OrderEvent::SalvageSucceeded { at, .. }
            | OrderEvent::SalvageFailed { at, .. }
            | OrderEvent::ExternalCancelRequested { at, .. }
            | OrderEvent::FulfillmentRequested { at }
            | OrderEvent::PaidByRecycle { at, .. }
            | OrderEvent::OrderRefunded { at, .. }
            | OrderEvent::ChargebackRecorded { at, .. }
            | OrderEvent::ResultIgnored { at, .. }
            | OrderEvent::ResultDeferred { at, .. }
            | OrderEvent::ReconciliationInconclusive { at, .. } => *at,
        }
    }

    /// The stable name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::AttemptApproved { .. } => "AttemptApproved",
            OrderEvent::AttemptDeclined { .. } => "AttemptDeclined",
            OrderEvent::CascadeStarted { .. } => "CascadeStarted",
            OrderEvent::CascadeSkipped { .. } => "CascadeSkipped",
            OrderEvent::CascadeStepStarted { .. } => "CascadeStepStarted",
            OrderEvent::CascadeStepDeclined { .. } => "CascadeStepDeclined",
            OrderEvent::CascadeEnded { .. } => "CascadeEnded",
            OrderEvent::AttemptBlocked { .. } => "AttemptBlocked",
            OrderEvent::SalvageSubmitted { .. } => "SalvageSubmitted",
            OrderEvent::SalvageAccepted { .. } => "SalvageAccepted",
            OrderEvent::SalvageOutcomeUnknown { .. } => "SalvageOutcomeUnknown",
            OrderEvent::SalvageAnswerUnrecognized { .. } => "SalvageAnswerUnrecognized",
            OrderEvent::CaptureRequested { .. } => "CaptureRequested",
            OrderEvent::SalvageSucceeded { .. } => "SalvageSucceeded",
            OrderEvent::SalvageFailed { .. } => "SalvageFailed",
            OrderEvent::ExternalCancelRequested { .. } => "ExternalCancelRequested",
            OrderEvent::FulfillmentRequested { .. } => "FulfillmentRequested",
            OrderEvent::PaidByRecycle { .. } => "PaidByRecycle",
            OrderEvent::OrderRefunded { .. } => "OrderRefunded",
            OrderEvent::ChargebackRecorded { .. } => "ChargebackRecorded",
            OrderEvent::ResultIgnored { .. } => "ResultIgnored",
            OrderEvent::ResultDeferred { .. } => "ResultDeferred",
            OrderEvent::ReconciliationInconclusive { .. } => "ReconciliationInconclusive",
        }
    }
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
