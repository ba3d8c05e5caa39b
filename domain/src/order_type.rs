//! The kinds of order Salvage handles.

use serde::{Deserialize, Serialize};

/// `new_sale`, `trial_completion` (the first charge after a trial) or `recurring` (a rebill).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    NewSale,
    TrialCompletion,
    Recurring,
}

impl OrderType {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderType::NewSale => "new_sale",
            OrderType::TrialCompletion => "trial_completion",
            OrderType::Recurring => "recurring",
        }
    }

    /// Whether FlexFactor sees this order as merchant-initiated and recurring: a rebill, or the
    /// billing after a free trial.
    pub fn is_recurring_billing(&self) -> bool {
        matches!(self, OrderType::TrialCompletion | OrderType::Recurring)
    }
}
