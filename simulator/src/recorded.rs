//! What a run records of the events it commits, for the benchmark: [`Recorded`] events and the
//! bare apply loop over them ([`apply_recorded`]).

use std::collections::BTreeMap;

use salvage_domain::order::{Order, OrderEvent};
use salvage_domain::subscription::{Subscription, SubscriptionEvent};
use salvage_domain::{OrderId, SubscriptionId};

/// One committed event, as recorded for the benchmark's bare apply loop.
#[derive(Debug, Clone)]
pub enum Recorded {
    Order(OrderId, OrderEvent),
    Subscription(SubscriptionId, SubscriptionEvent),
}

/// Applies recorded events to fresh aggregates and does nothing else: the benchmark's baseline
/// for the cost of the domain's state changes alone. Returns the number of events applied.
pub fn apply_recorded(events: impl IntoIterator<Item = Recorded>) -> usize {
    use cqrs_es::Aggregate;
    let mut n = 0;
    let mut orders: BTreeMap<OrderId, Order> = BTreeMap::new();
    let mut subs: BTreeMap<SubscriptionId, Subscription> = BTreeMap::new();
    for e in events {
        n += 1;
        match e {
            Recorded::Order(id, event) => orders.entry(id).or_default().apply(event),
            Recorded::Subscription(id, event) => subs.entry(id).or_default().apply(event),
        }
    }
    std::hint::black_box((&orders, &subs));
    n
}
