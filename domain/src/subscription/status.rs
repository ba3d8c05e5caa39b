//! The statuses of a subscription (the CRM's purchase statuses).

use serde::{Deserialize, Serialize};

/// `trial`, `active`, `recycle_billing`, `recycle_failed`, `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trial,
    Active,
    RecycleBilling,
    RecycleFailed,
    Cancelled,
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionStatus::Trial => "trial",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::RecycleBilling => "recycle_billing",
            SubscriptionStatus::RecycleFailed => "recycle_failed",
            SubscriptionStatus::Cancelled => "cancelled",
        }
    }
}
