//! The answer of a regular gateway to a charge.

use serde::{Deserialize, Serialize};

use crate::decline::DeclineFacts;

/// Approved, declined (with its facts), pending (accepted for later) or unknown (sent, no
/// answer). Unknown is never folded into declined: the charge may have gone through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GatewayAnswer {
    Approved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction_id: Option<String>,
    },
    Declined(DeclineFacts),
    Pending {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Unknown {
        detail: String,
    },
}
