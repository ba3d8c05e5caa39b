//! What the exporter remembers of an order between its events ([`OrderTrack`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::order::OrderDetails;

/// An `OrderPlaced` waiting for the attempt result recorded with it.
#[derive(Debug)]
pub(super) struct Placed {
    pub(super) position: i64,
    pub(super) at: DateTime<Utc>,
    pub(super) details: Arc<OrderDetails>,
}

/// What the exporter remembers of an order.
#[derive(Debug)]
pub(super) struct OrderTrack {
    /// The sequence of its first event in the feed (1 unless the feed starts mid-history).
    pub(super) first_sequence: i64,
    pub(super) sequence: i64,
    pub(super) placed: Option<Placed>,
    /// The previous event's name.
    pub(super) previous: Option<&'static str>,
    /// The regular-gateway cascade step awaiting its answer.
    pub(super) cascade_step: Option<u32>,
    /// Refunds and chargebacks waiting for the salvage's result (O7); `None`: unknown.
    pub(super) deferred: Option<usize>,
    /// Deferred results the current resolution is applying (derived events), and its time.
    pub(super) draining: Option<usize>,
    pub(super) drain_at: Option<DateTime<Utc>>,
}

impl OrderTrack {
    pub(super) fn new(first_sequence: i64) -> Self {
        let whole = first_sequence == 1;
        OrderTrack {
            first_sequence,
            sequence: first_sequence - 1,
            placed: None,
            previous: None,
            cascade_step: None,
            deferred: whole.then_some(0),
            draining: Some(0),
            drain_at: None,
        }
    }

    pub(super) fn needs_history(&self, what: &str) -> String {
        format!(
            "{what}: the feed does not hold this order's earlier events (it starts at its \
             sequence {}); export the feed from its beginning",
            self.first_sequence
        )
    }

    /// A salvage resolved: the deferred results it applies or drops follow at the same time.
    pub(super) fn resolve(&mut self, at: DateTime<Utc>) {
        self.draining = self.deferred;
        self.drain_at = Some(at);
        self.deferred = Some(0);
    }

    /// Whether a refund, chargeback or ignored result at `at` is one the resolution derived.
    pub(super) fn drained(&mut self, at: DateTime<Utc>) -> Result<bool, String> {
        if self.drain_at != Some(at) {
            self.draining = Some(0);
        }
        match self.draining {
            Some(0) => Ok(false),
            Some(n) => {
                self.draining = Some(n - 1);
                Ok(true)
            }
            None => Err(self.needs_history(
                "it may apply a result deferred before the feed starts (O7) or be a delivery",
            )),
        }
    }
}
