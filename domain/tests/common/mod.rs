//! Shared fixtures of the domain tests: the sample setup, a fixed clock, orders and declines.
// Each test binary uses some of these.
#![allow(dead_code, unused_imports)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use salvage_domain::customer::OrderItem;
use salvage_domain::order::{AttemptResult, Order, OrderCommand, OrderEvent, PlaceOrder};
use salvage_domain::subscription::{Subscription, SubscriptionCommand, SubscriptionEvent};
use salvage_domain::{Currency, DomainServices, ManualClock, Money, OrderType, Setup};

pub use salvage_domain::samples::{card, customer, decline, hard, new_sale, place, soft};

pub const SAMPLE: &str = include_str!("../../../examples/salvage.toml");

pub fn sample_setup() -> Setup {
    match Setup::from_toml_str(SAMPLE) {
        Ok(s) => s,
        Err(e) => panic!("the sample setup must be valid: {e}"),
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

/// Services on the sample setup with the clock at `t0() + offset`.
pub fn services_at(setup: Setup, offset: Duration) -> DomainServices {
    DomainServices::new(Arc::new(setup), Arc::new(ManualClock::new(t0() + offset)))
}

pub fn services() -> DomainServices {
    services_at(sample_setup(), Duration::zero())
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

/// A new sale of the monthly serum (a recurring product).
pub fn recurring_sale(order: &str, gateway: &str, result: AttemptResult) -> PlaceOrder {
    let mut p = new_sale(order, gateway, Some("203.0.113.7"), result);
    p.amount = usd(3999);
    p.items = vec![OrderItem {
        product_id: "serum-monthly".into(),
        quantity: 1,
        price_minor: 3999,
    }];
    p.subscription_id = Some("sub-1".into());
    p
}

/// A rebill order of subscription `sub`.
pub fn rebill(order: &str, sub: &str, gateway: &str, result: AttemptResult) -> PlaceOrder {
    let mut p = recurring_sale(order, gateway, result);
    p.order_type = OrderType::Recurring;
    p.subscription_id = Some(sub.into());
    p
}

/// Runs commands through a fresh Order and returns all events (to feed `given`).
pub fn order_history(services: &DomainServices, commands: Vec<OrderCommand>) -> Vec<OrderEvent> {
    let mut order = Order::default();
    let mut all = Vec::new();
    for c in commands {
        let events = match order.decide(c, services) {
            Ok(e) => e,
            Err(e) => panic!("history command refused: {e}"),
        };
        for e in events {
            cqrs_es::Aggregate::apply(&mut order, e.clone());
            all.push(e);
        }
    }
    all
}

pub fn order_state(events: &[OrderEvent]) -> Order {
    let mut order = Order::default();
    for e in events {
        cqrs_es::Aggregate::apply(&mut order, e.clone());
    }
    order
}

pub fn subscription_history(
    services: &DomainServices,
    commands: Vec<SubscriptionCommand>,
) -> Vec<SubscriptionEvent> {
    let mut s = Subscription::default();
    let mut all = Vec::new();
    for c in commands {
        let events = match s.decide(c, services) {
            Ok(e) => e,
            Err(e) => panic!("history command refused: {e}"),
        };
        for e in events {
            cqrs_es::Aggregate::apply(&mut s, e.clone());
            all.push(e);
        }
    }
    all
}

pub fn subscription_state(events: &[SubscriptionEvent]) -> Subscription {
    let mut s = Subscription::default();
    for e in events {
        cqrs_es::Aggregate::apply(&mut s, e.clone());
    }
    s
}

pub fn names(events: &[OrderEvent]) -> Vec<&'static str> {
    events.iter().map(OrderEvent::name).collect()
}

pub fn sub_names(events: &[SubscriptionEvent]) -> Vec<&'static str> {
    events.iter().map(SubscriptionEvent::name).collect()
}
