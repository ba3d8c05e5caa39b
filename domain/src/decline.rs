//! Decline facts (D1) and the soft/hard verdict.

use serde::{Deserialize, Serialize};

use crate::ids::GatewayId;

/// The processor's verdict on a decline: soft (may be retried) or hard (do not retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineType {
    Soft,
    Hard,
}

/// Visa decline categories (1: never approve, 2-4: may approve later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VisaCategory(pub u8);

/// Mastercard Merchant Advice Code, as sent by the network (for example "03", "21", "24").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MastercardAdviceCode(pub String);

/// D1: everything recorded about one declined attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclineFacts {
    /// The gateway that declined.
    pub gateway: GatewayId,
    /// The raw response code of the processor.
    pub response_code: String,
    /// The raw response message of the processor.
    pub response_message: String,
    /// The processor's own soft/hard verdict, before decline mapping.
    pub processor_verdict: DeclineType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visa_category: Option<VisaCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastercard_advice_code: Option<MastercardAdviceCode>,
}

/// The verdict after decline mapping (D2): what the routing rules act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveDecline {
    pub decline_type: DeclineType,
    /// The name of the mapping rule that re-classified the decline, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_by: Option<String>,
    /// The customer-facing message of that rule, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_message: Option<String>,
}

impl EffectiveDecline {
    /// D3: only effective-soft declines go to FlexFactor; a hard one goes only when a mapping
    /// turned it soft (and then it is soft here).
    pub fn may_go_to_flexfactor(&self) -> bool {
        self.decline_type == DeclineType::Soft
    }

    /// D4 and Y1: only a soft-declined rebill enters recycle billing.
    pub fn enters_recycle_billing(&self) -> bool {
        self.decline_type == DeclineType::Soft
    }
}
