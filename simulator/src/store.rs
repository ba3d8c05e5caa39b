//! The aggregates a runtime holds: each order's and subscription's state as committed, with the
//! sequence number of its last event.

use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;
use salvage_domain::{OrderId, SubscriptionId};

pub use crate::aggregates::Aggregates;

/// An aggregate's state and the sequence number of its last event.
#[derive(Debug, Clone, Default)]
pub struct Held<A> {
    pub state: A,
    pub sequence: usize,
}

/// Every aggregate of the runtime.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub orders: Aggregates<OrderId, Order>,
    pub subscriptions: Aggregates<SubscriptionId, Subscription>,
}

impl Store {
    pub fn order(&self, id: &OrderId) -> Option<&Order> {
        self.orders.get(id).map(|h| &h.state)
    }

    pub fn subscription(&self, id: &SubscriptionId) -> Option<&Subscription> {
        self.subscriptions.get(id).map(|h| &h.state)
    }
}
