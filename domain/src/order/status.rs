//! The statuses of an order, as the CRM knows them.

use serde::{Deserialize, Serialize};

/// `pending`, `complete`, `declined`, `salvage_pending`, `refunded`, `chargeback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Being worked: a cascade in progress, or a gateway answer that is not final.
    Pending,
    Complete,
    Declined,
    /// Submitted to FlexFactor asynchronously; the result comes later (R2).
    SalvagePending,
    Refunded,
    Chargeback,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Complete => "complete",
            OrderStatus::Declined => "declined",
            OrderStatus::SalvagePending => "salvage_pending",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Chargeback => "chargeback",
        }
    }
}
