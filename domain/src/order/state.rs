//! The Order aggregate's state: the order, its cascade progress and its FlexFactor salvage, with
//! their small accessors.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::network::CardFact;

use super::command::{FlexFactorResult, ResultSource};
use super::event::{OrderDetails, SalvageFailure, SalvageRoute};
use super::status::OrderStatus;
use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::idempotency::IdempotencyKey;
use crate::ids::{FlexFactorOrderId, GatewayId};
use crate::money::Money;
use crate::ports::SubmissionMode;
use crate::routing::CascadeRoute;

/// Where a FlexFactor salvage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalvageState {
    /// Recorded, the call made or about to be made; no answer yet.
    Submitted,
    /// FlexFactor took it for asynchronous work.
    Accepted,
    /// The call's outcome is unknown (F3): reconcile.
    OutcomeUnknown,
    /// F5: an answer not understood: reconcile.
    Unrecognized,
    /// Approved on authorization, awaiting capture.
    CaptureRequired,
    Succeeded,
    Failed,
}

impl SalvageState {
    /// Not yet resolved either way.
    pub fn is_open(self) -> bool {
        !matches!(self, SalvageState::Succeeded | SalvageState::Failed)
    }
}

/// The current (or last) FlexFactor salvage of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Salvage {
    pub attempt: u32,
    pub route: SalvageRoute,
    pub flexfactor_gateway: GatewayId,
    pub idempotency_key: IdempotencyKey,
    pub mode: SubmissionMode,
    pub amount: Money,
    pub flexfactor_order_id: Option<FlexFactorOrderId>,
    pub state: SalvageState,
    pub submitted_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub failure: Option<SalvageFailure>,
}

impl Salvage {
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match &self.mode {
            SubmissionMode::Mit { expires_at, .. } => Some(*expires_at),
            SubmissionMode::Cit { .. } => None,
        }
    }
}

/// A cascade in progress (or finished).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CascadeProgress {
    pub route: CascadeRoute,
    /// The 1-based step awaiting an answer; 0 before the first.
    pub current_step: u32,
    pub ended: bool,
}

/// The Order aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Shared with the `OrderPlaced` event that set them.
    pub details: Option<Arc<OrderDetails>>,
    pub status: Option<OrderStatus>,
    /// D1: the first declined attempt (its gateway is "the declining gateway" of O4/O6).
    pub first_decline: Option<DeclineFacts>,
    /// The effective verdict of the latest declined attempt.
    pub last_decline: Option<EffectiveDecline>,
    pub cascade: Option<CascadeProgress>,
    pub salvage: Option<Salvage>,
    /// How many FlexFactor submissions this order has had.
    pub salvage_attempts: u32,
    /// The gateway that took the money, once paid.
    pub paid_by: Option<GatewayId>,
    pub fulfillment_requested: bool,
    pub refunded: bool,
    pub chargeback: bool,
    /// Refunds and chargebacks that arrived before the salvage's result (O7).
    #[serde(default)]
    pub deferred: Vec<(FlexFactorResult, ResultSource)>,
    /// What this order did with its card (N8): attempts, declines with their network advice,
    /// approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub card_facts: Vec<CardFact>,
    /// When the order was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<DateTime<Utc>>,
    /// When its first attempt was declined (D1): the instant it entered salvage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined_at: Option<DateTime<Utc>>,
}

impl Order {
    pub fn is_paid(&self) -> bool {
        self.paid_by.is_some()
    }

    pub fn salvage_open(&self) -> bool {
        self.salvage.as_ref().is_some_and(|s| s.state.is_open())
    }

    /// The gateway that declined the order first: where a salvaged rebill or sale bills next
    /// (O4, O6). Never FlexFactor: first attempts on FlexFactor are refused (S3/S8).
    pub fn declining_gateway(&self) -> Option<&GatewayId> {
        self.first_decline.as_ref().map(|f| &f.gateway)
    }
}
