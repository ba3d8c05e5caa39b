//! Why a feed could not be exported ([`FeedExportError`]).

use salvage_gateway::feed::FeedEvent;

/// Why a feed could not be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedExportError {
    /// The text is not a feed (see [`parse_feed`](super::parse_feed)).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The time the trace should run to is before its last line.
    #[error("the trace cannot end at {until}: its last line is at {last}")]
    Until { until: String, last: String },
    /// An event that cannot be mapped to a trace line.
    #[error("feed position {position}: {event_type} of {aggregate_type} {aggregate_id} (sequence {sequence}): {message}")]
    Event {
        position: i64,
        event_type: String,
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        message: String,
    },
}

/// The error of an event that cannot be mapped, naming its position, type and aggregate.
pub(super) fn event_error(e: &FeedEvent, message: impl Into<String>) -> FeedExportError {
    FeedExportError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        aggregate_type: e.aggregate_type.clone(),
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence,
        message: message.into(),
    }
}
