//! A trace of simulated traffic: one variant's customers simulated with their events recorded,
//! the events laid out as the service's feed would hold them (in time order, numbered per
//! aggregate), and exported as a trace ([`crate::feed_export`]). `salvage calibrate` on it
//! should find the scenario's own parameters again.

use std::collections::HashMap;

use salvage_gateway::feed::FeedEvent;

use crate::engine::{Engine, Recorded};
use crate::error::ScenarioError;
use crate::feed_export::{export, FeedExportError, EVENT_VERSION};
use crate::tally::Tally;
use crate::trace::TraceLine;

/// Why a simulated trace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimTraceError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot write an event as the feed holds it: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Export(#[from] FeedExportError),
}

/// The feed of variant `variant`'s customers with the scenario's seed.
pub fn simulated_feed(
    engine: &Engine<'_>,
    variant: usize,
) -> Result<Vec<FeedEvent>, SimTraceError> {
    let mut runner = engine.runner(variant);
    let mut tally = Tally::default();
    // (time, customer, order within the customer, event)
    let mut all = Vec::new();
    for c in 0..u64::from(engine.scenario.spec.population.customers) {
        let mut events = Vec::new();
        runner.customer(c, &mut tally, Some(&mut events));
        for (i, e) in events.into_iter().enumerate() {
            let at = match &e {
                Recorded::Order(_, ev) => ev.at(),
                Recorded::Subscription(_, ev) => ev.at(),
            };
            all.push((at, c, i, e));
        }
    }
    // An aggregate's events keep their order: they are one customer's, in commit order, and
    // never go back in time.
    all.sort_by_key(|a| (a.0, a.1, a.2));
    let mut sequences: HashMap<(&'static str, String), i64> = HashMap::new();
    let mut feed = Vec::with_capacity(all.len());
    for (_, _, _, e) in all {
        let (kind, id, name, payload) = match &e {
            Recorded::Order(id, ev) => (
                "order",
                id.as_str().to_string(),
                ev.name(),
                serde_json::to_value(ev)?,
            ),
            Recorded::Subscription(id, ev) => (
                "subscription",
                id.as_str().to_string(),
                ev.name(),
                serde_json::to_value(ev)?,
            ),
        };
        let sequence = sequences.entry((kind, id.clone())).or_insert(0);
        *sequence += 1;
        feed.push(FeedEvent {
            position: feed.len() as i64 + 1,
            aggregate_type: kind.into(),
            aggregate_id: id,
            sequence: *sequence,
            event_type: name.into(),
            event_version: EVENT_VERSION.into(),
            payload,
        });
    }
    Ok(feed)
}

/// The trace of variant `variant`'s customers with the scenario's seed.
pub fn simulated_trace(
    engine: &Engine<'_>,
    variant: usize,
) -> Result<Vec<TraceLine>, SimTraceError> {
    Ok(export(&simulated_feed(engine, variant)?)?)
}
