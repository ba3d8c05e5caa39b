//! An aggregate's state as of one of its events: what the projector keeps in its views and what
//! the dispatcher folds to run the process manager. One type for both, so that a round serving
//! both reads each aggregate's state once (from its view row) and decodes each event once.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use salvage_domain::order::{Order, OrderEvent};
use salvage_domain::subscription::{Subscription, SubscriptionEvent};
use serde::Deserialize;

use super::event_log::LogEntry;
use super::StoreError;

/// The aggregates a batch touches, by (aggregate type, aggregate id).
pub(crate) type Known = BTreeMap<(String, String), AggregateAt>;

/// An aggregate's state and the sequence of the last event applied to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AggregateAt {
    Order(Box<Order>, i64),
    Subscription(Box<Subscription>, i64),
}

/// An event just applied, decoded, with the state after it.
pub(crate) enum Applied<'a> {
    Order(OrderEvent, &'a Order),
    Subscription(SubscriptionEvent, &'a Subscription),
}

impl AggregateAt {
    /// An aggregate of type `kind` before its first event; `None` for a type Salvage does not
    /// keep.
    pub(crate) fn fresh(kind: &str) -> Option<Self> {
        match kind {
            "order" => Some(AggregateAt::Order(Box::default(), 0)),
            "subscription" => Some(AggregateAt::Subscription(Box::default(), 0)),
            _ => None,
        }
    }

    /// The sequence of the last event applied (0: none).
    pub(crate) fn sequence(&self) -> i64 {
        match self {
            AggregateAt::Order(_, s) | AggregateAt::Subscription(_, s) => *s,
        }
    }

    /// Applies `entry` if it comes after the state's sequence; returns the event and the state
    /// after it (`None`: already applied, or an entry of another aggregate type).
    pub(crate) fn apply(&mut self, entry: &LogEntry) -> Result<Option<Applied<'_>>, StoreError> {
        if entry.event.sequence <= self.sequence() {
            return Ok(None);
        }
        Ok(match (self, entry.event.aggregate_type.as_str()) {
            (AggregateAt::Order(o, seq), "order") => {
                let event = OrderEvent::deserialize(&entry.event.payload)?;
                o.apply(event.clone());
                *seq = entry.event.sequence;
                Some(Applied::Order(event, o))
            }
            (AggregateAt::Subscription(s, seq), "subscription") => {
                let event = SubscriptionEvent::deserialize(&entry.event.payload)?;
                s.apply(event.clone());
                *seq = entry.event.sequence;
                Some(Applied::Subscription(event, s))
            }
            _ => None,
        })
    }

    /// Applies a stored event (its JSON text) without moving the sequence: for folding an
    /// aggregate's history up to a sequence set beforehand.
    pub(crate) fn apply_stored(&mut self, payload: &str) -> Result<(), StoreError> {
        match self {
            AggregateAt::Order(o, _) => o.apply(serde_json::from_str(payload)?),
            AggregateAt::Subscription(s, _) => s.apply(serde_json::from_str(payload)?),
        }
        Ok(())
    }

    /// The same aggregate, empty, with its sequence set to `sequence`: the start of a fold of
    /// its history up to `sequence` (with [`apply_stored`](Self::apply_stored)).
    pub(crate) fn empty_at(&self, sequence: i64) -> Self {
        match self {
            AggregateAt::Order(..) => AggregateAt::Order(Box::default(), sequence),
            AggregateAt::Subscription(..) => AggregateAt::Subscription(Box::default(), sequence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, sequence: i64, payload: serde_json::Value) -> LogEntry {
        LogEntry {
            event: crate::feed::FeedEvent {
                position: sequence,
                aggregate_type: kind.into(),
                aggregate_id: "a-1".into(),
                sequence,
                event_type: String::new(),
                event_version: "1".into(),
                payload,
            },
            metadata: serde_json::json!({}),
        }
    }

    #[test]
    fn applies_each_event_once_and_only_to_its_own_type() {
        let mut a = AggregateAt::fresh("order").unwrap_or(AggregateAt::Order(Box::default(), 0));
        assert!(AggregateAt::fresh("invoice").is_none());
        let placed =
            serde_json::json!({"type": "FulfillmentRequested", "at": "2026-11-22T10:00:00Z"});
        assert!(matches!(
            a.apply(&entry("order", 1, placed.clone())),
            Ok(Some(Applied::Order(..)))
        ));
        assert_eq!(a.sequence(), 1);
        // Already applied: nothing happens.
        assert!(matches!(
            a.apply(&entry("order", 1, placed.clone())),
            Ok(None)
        ));
        // Another aggregate type: nothing happens.
        assert!(matches!(
            a.apply(&entry("subscription", 2, placed)),
            Ok(None)
        ));
        assert_eq!(a.sequence(), 1);
        // An undecodable event is an error, not a skip.
        assert!(a
            .apply(&entry("order", 2, serde_json::json!({"type": "Nonsense"})))
            .is_err());
        assert_eq!(a.empty_at(7).sequence(), 7);
    }
}
