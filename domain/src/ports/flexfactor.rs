//! The FlexFactor port: evaluate (sync or async), order status, cancel, refund, capture,
//! tokenize. The HTTP adapter lives in `salvage-gateway`; the fake in `salvage-sim`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::{CardDetails, CardToken, Customer, OrderItem};
use crate::decline::DeclineFacts;
use crate::idempotency::IdempotencyKey;
use crate::ids::{FlexFactorOrderId, GatewayId, OrderId, SubscriptionId};
use crate::money::Money;

/// How a submission is made (C5, R2, Y3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubmissionMode {
    /// C5: customer-initiated, real-time: `customerIp`, no `expiryDateUtc`.
    Cit { customer_ip: String },
    /// R2/Y3: merchant-initiated, managed: `isMIT`, `expiryDateUtc`.
    Mit {
        expires_at: DateTime<Utc>,
        recurring: bool,
    },
}

/// The subscription block of a recurring MIT submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub subscription_id: SubscriptionId,
    pub interval_days: i64,
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_number: Option<u32>,
}

/// One submission to `/evaluate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalvageRequest {
    pub flexfactor_gateway: GatewayId,
    pub order_id: OrderId,
    pub idempotency_key: IdempotencyKey,
    pub mode: SubmissionMode,
    pub amount: Money,
    /// The decline being salvaged (D1): its code and gateway go as responseCode/Source.
    pub decline: DeclineFacts,
    pub card: CardToken,
    pub customer: Customer,
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionInfo>,
}

/// FlexFactor's answer to `/evaluate` (F5: anything unrecognized is kept as such).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EvaluateAnswer {
    Approved {
        flexfactor_order_id: Option<FlexFactorOrderId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmation_id: Option<String>,
    },
    Declined {
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    /// Rescuable only through the shopper widget; a cascade treats it as a decline (C5).
    Challenge {
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    /// Accepted for asynchronous (managed MIT) work; the result comes by webhook.
    Submitted {
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    Processing {
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    /// Approved on authorization; must be captured.
    CaptureRequired {
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    /// F5: a status this version does not know. Never success, never pending.
    Unrecognized {
        raw_status: String,
        flexfactor_order_id: Option<FlexFactorOrderId>,
    },
    /// FlexFactor refused the request (a 400): it was not taken.
    Rejected { reason: String },
    /// Sent, and no answer came back (timeout, connection cut after sending): reconcile, never
    /// resubmit under a new key (F3).
    Unknown { detail: String },
}

impl EvaluateAnswer {
    pub fn flexfactor_order_id(&self) -> Option<&FlexFactorOrderId> {
        match self {
            EvaluateAnswer::Approved {
                flexfactor_order_id,
                ..
            }
            | EvaluateAnswer::Declined {
                flexfactor_order_id,
            }
            | EvaluateAnswer::Challenge {
                flexfactor_order_id,
            }
            | EvaluateAnswer::Submitted {
                flexfactor_order_id,
            }
            | EvaluateAnswer::Processing {
                flexfactor_order_id,
            }
            | EvaluateAnswer::CaptureRequired {
                flexfactor_order_id,
            }
            | EvaluateAnswer::Unrecognized {
                flexfactor_order_id,
                ..
            } => flexfactor_order_id.as_ref(),
            EvaluateAnswer::Rejected { .. } | EvaluateAnswer::Unknown { .. } => None,
        }
    }
}

/// `GET /orders/{id}`: FlexFactor's view of one of its orders, for reconciliation (O8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FlexFactorOrderStatus {
    /// Still being worked.
    Pending,
    Completed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmation_id: Option<String>,
    },
    Declined,
    Expired,
    Cancelled,
    Refunded,
    CaptureRequired,
    /// F5: kept as such.
    Unrecognized {
        raw_status: String,
    },
}

/// The answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RefundAnswer {
    Refunded,
    Failed { code: String, message: String },
}

/// Errors of a FlexFactor call that did not give an answer above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlexFactorError {
    #[error("FlexFactor refused the credentials")]
    Unauthorized,
    #[error("FlexFactor rejected the request: {0}")]
    Invalid(String),
    #[error("idempotency key reused with another body")]
    IdempotencyConflict,
    #[error("FlexFactor is unavailable: {0}")]
    Unavailable(String),
    #[error("the outcome of the call is unknown: {0}")]
    OutcomeUnknown(String),
    #[error("FlexFactor answered something unreadable: {0}")]
    Protocol(String),
    #[error("not found at FlexFactor")]
    NotFound,
}

/// FlexFactor, as the domain sees it.
#[async_trait]
pub trait FlexFactor: Send + Sync {
    /// F2: tokenize a card with the EnvironmentKey; only token, BIN and last four come back.
    async fn tokenize(&self, card: &CardDetails) -> Result<CardToken, FlexFactorError>;
    /// Submit a decline. Transport failures after sending come back as
    /// `EvaluateAnswer::Unknown`, not as an error.
    async fn evaluate(&self, request: &SalvageRequest) -> Result<EvaluateAnswer, FlexFactorError>;
    async fn order_status(
        &self,
        id: &FlexFactorOrderId,
    ) -> Result<FlexFactorOrderStatus, FlexFactorError>;
    async fn cancel(&self, id: &FlexFactorOrderId) -> Result<(), FlexFactorError>;
    /// C5: cancel by the merchant's order id, when FlexFactor's id is not known.
    async fn external_cancel(&self, order: &OrderId) -> Result<(), FlexFactorError>;
    async fn refund(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<RefundAnswer, FlexFactorError>;
    async fn capture(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<EvaluateAnswer, FlexFactorError>;
}
