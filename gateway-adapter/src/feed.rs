//! The CRM feed's record: one committed event and its place in the global order, as
//! `GET /v1/events` serves it, the ordered log stores it (with its metadata beside it, see
//! [`crate::store::event_log::LogEntry`]) and `salvage export-trace` reads it. Defined once, here.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One entry of the ordered feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedEvent {
    /// The event's place in the global order (1, 2, ...; gaps are possible, order is not).
    pub position: i64,
    /// `order` or `subscription`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's sequence within its aggregate (1, 2, ...).
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The domain event (`OrderEvent` or `SubscriptionEvent`) as JSON.
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// One page of the feed: `GET /v1/events?after=N&limit=M`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedPage {
    pub events: Vec<FeedEvent>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}
