//! The Charge port: attempt a charge on a regular gateway (in production an HTTP hook to the
//! CRM, in simulation a statistical model).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::GatewayAnswer;
use crate::customer::CredentialKind;
use crate::idempotency::IdempotencyKey;
use crate::ids::{GatewayId, OrderId, SubscriptionId};
use crate::money::Money;

/// Why a charge is attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChargePurpose {
    /// Step `step` of a cascade of a declined new sale.
    Cascade { step: u32 },
    /// Re-attempt `attempt` of recycle billing.
    Recycle { attempt: u32 },
    /// The scheduled rebill of a subscription.
    Rebill { cycle: u32 },
}

/// A charge to attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub idempotency_key: IdempotencyKey,
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    pub gateway: GatewayId,
    pub amount: Money,
    pub credential: CredentialKind,
    pub purpose: ChargePurpose,
}

/// A charge that could not be attempted at all (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("the charge endpoint is not configured")]
    NotConfigured,
    #[error("the charge request could not be sent: {0}")]
    NotSent(String),
}

/// Attempts charges on regular gateways. An answer that may have charged but did not come back
/// is `GatewayAnswer::Unknown`, never an error.
#[async_trait]
pub trait Charge: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<GatewayAnswer, ChargeError>;
}
