//! The runtime applies committed events by reference (`Order::apply_ref`,
//! `Subscription::apply_ref`: the process manager and the driver read the event after it); the
//! domain's `apply` takes them by value. Both must change the state alike: checked after every
//! event of simulated customers of the shipped scenarios, every variant.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use cqrs_es::Aggregate;
use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;
use salvage_sim::engine::Recorded;
use salvage_sim::tally::Tally;
use salvage_sim::{Engine, Scenario, ScenarioOverrides};

#[test]
fn apply_by_reference_is_apply() {
    let mut seen = BTreeSet::new();
    for name in [
        "default.toml",
        "cascade_all.toml",
        "network_rules.toml",
        "slots.toml",
        "expiry_days.toml",
    ] {
        let scenario = Scenario::load(
            &scenarios_dir().join(name),
            ScenarioOverrides {
                customers: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
        let engine = Engine::new(&scenario);
        for v in 0..scenario.variants.len() {
            let mut runner = engine.runner(v);
            let mut tally = Tally::default();
            for c in 0..300 {
                let mut events = Vec::new();
                runner.customer(c, &mut tally, Some(&mut events));
                let mut by_value: BTreeMap<String, Order> = BTreeMap::new();
                let mut by_ref: BTreeMap<String, Order> = BTreeMap::new();
                let mut subs_by_value: BTreeMap<String, Subscription> = BTreeMap::new();
                let mut subs_by_ref: BTreeMap<String, Subscription> = BTreeMap::new();
                for e in events {
                    match e {
                        Recorded::Order(id, event) => {
                            seen.insert(event.name());
                            let r = by_ref.entry(id.as_str().to_string()).or_default();
                            r.apply_ref(&event);
                            let v = by_value.entry(id.as_str().to_string()).or_default();
                            v.apply(event.clone());
                            assert_eq!(r, v, "{name}, customer {c}: {event:?}");
                        }
                        Recorded::Subscription(id, event) => {
                            seen.insert(event.name());
                            let r = subs_by_ref.entry(id.as_str().to_string()).or_default();
                            r.apply_ref(&event);
                            let v = subs_by_value.entry(id.as_str().to_string()).or_default();
                            v.apply(event.clone());
                            assert_eq!(r, v, "{name}, customer {c}: {event:?}");
                        }
                    }
                }
            }
        }
    }
    // The runs cover the events that change the state.
    for name in [
        "OrderPlaced",
        "AttemptApproved",
        "AttemptDeclined",
        "CascadeStarted",
        "CascadeStepStarted",
        "CascadeStepDeclined",
        "CascadeEnded",
        "SalvageSubmitted",
        "SalvageAccepted",
        "SalvageSucceeded",
        "SalvageFailed",
        "FulfillmentRequested",
        "PaidByRecycle",
        "SubscriptionCreated",
        "RebillDeclined",
        "RecycleBillingStarted",
        "RecycleAttemptScheduled",
        "RecycleAttemptStarted",
        "RecycleAttemptDeclined",
        "RecycleHandedToFlexFactor",
        "CycleAdvanced",
        "RecycleFailed",
    ] {
        assert!(seen.contains(name), "no {name} in the runs: {seen:?}");
    }
}
