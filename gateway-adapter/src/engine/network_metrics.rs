//! N7: the attempts the card network forbade, counted in `/metrics` as they are committed.

use salvage_domain::order::OrderEvent;
use salvage_domain::subscription::SubscriptionEvent;

use super::Engine;

impl Engine {
    /// Counts the `AttemptBlocked` events among an order's committed events.
    pub(crate) fn count_order_blocks<'a>(&self, events: impl Iterator<Item = &'a OrderEvent>) {
        let Some(m) = &self.metrics else { return };
        for e in events {
            if let OrderEvent::AttemptBlocked { reason, rule, .. } = e {
                m.network_blocked(reason.as_str(), rule.as_str());
            }
        }
    }

    /// Counts the blocked and delayed re-attempts among a subscription's committed events.
    pub(crate) fn count_subscription_blocks<'a>(
        &self,
        events: impl Iterator<Item = &'a SubscriptionEvent>,
    ) {
        let Some(m) = &self.metrics else { return };
        for e in events {
            match e {
                SubscriptionEvent::RecycleAttemptBlocked { reason, rule, .. } => {
                    m.network_blocked(reason.as_str(), rule.as_str())
                }
                SubscriptionEvent::RecycleAttemptDelayed { rule, .. } => {
                    m.network_delayed(rule.as_str())
                }
                _ => {}
            }
        }
    }
}
