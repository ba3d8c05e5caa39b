//! Why the guard refused an attempt (N7), and which rule said so.

use serde::{Deserialize, Serialize};

/// The reason recorded on an aggregate when an attempt is not made (N7). The names are stable:
/// they appear in the history and the metrics (a recycle that ends for N1 notifies the CRM
/// `recycle_failed` with reason `network_never_retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkBlock {
    /// N1, N3: the network says this card is never to be reattempted (or not within 30 days).
    NetworkNeverRetry,
    /// N2, N5: the card has had as many attempts in 30 days as the network allows.
    NetworkRetryLimit,
    /// N4: the network's advised wait has not passed and the attempt cannot wait (a cascade).
    NetworkWait,
}

impl NetworkBlock {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkBlock::NetworkNeverRetry => "network_never_retry",
            NetworkBlock::NetworkRetryLimit => "network_retry_limit",
            NetworkBlock::NetworkWait => "network_wait",
        }
    }
}

impl std::fmt::Display for NetworkBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkRule {
    N1,
    N2,
    N3,
    N4,
    N5,
}

impl NetworkRule {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkRule::N1 => "N1",
            NetworkRule::N2 => "N2",
            NetworkRule::N3 => "N3",
            NetworkRule::N4 => "N4",
            NetworkRule::N5 => "N5",
        }
    }
}
