//! The ordered log of every committed event, with its global position: what the CRM feed,
//! the projections and the dispatcher read, each from its own checkpoint.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Backend, StoreError};

/// One committed event and its place in the global order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

pub(crate) const SELECT_AFTER: &str = "
SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence,
       e.event_type, e.event_version, e.payload, e.metadata
  FROM salvage_event_log l
  JOIN events e ON e.aggregate_type = l.aggregate_type
               AND e.aggregate_id = l.aggregate_id
               AND e.sequence = l.sequence
 WHERE l.position > $1
 ORDER BY l.position
 LIMIT $2";

pub(crate) fn decode_sqlite(r: &sqlx::sqlite::SqliteRow) -> Result<LogEntry, StoreError> {
    let payload: String = r.try_get("payload")?;
    let metadata: String = r.try_get("metadata")?;
    Ok(LogEntry {
        position: r.try_get("position")?,
        aggregate_type: r.try_get("aggregate_type")?,
        aggregate_id: r.try_get("aggregate_id")?,
        sequence: r.try_get("sequence")?,
        event_type: r.try_get("event_type")?,
        event_version: r.try_get("event_version")?,
        payload: serde_json::from_str(&payload)?,
        metadata: serde_json::from_str(&metadata)?,
    })
}

pub(crate) fn decode_pg(r: &sqlx::postgres::PgRow) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        position: r.try_get("position")?,
        aggregate_type: r.try_get("aggregate_type")?,
        aggregate_id: r.try_get("aggregate_id")?,
        sequence: r.try_get("sequence")?,
        event_type: r.try_get("event_type")?,
        event_version: r.try_get("event_version")?,
        payload: r.try_get("payload")?,
        metadata: r.try_get("metadata")?,
    })
}

/// Reads at most `limit` entries after `after`, in position order. A reader never skips an
/// event that commits late: see migration 2.
pub async fn read_after(
    backend: &Backend,
    after: i64,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    match backend {
        Backend::Sqlite(pool) => sqlx::query(SELECT_AFTER)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode_sqlite)
            .collect(),
        Backend::Postgres(pool) => sqlx::query(SELECT_AFTER)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode_pg)
            .collect(),
    }
}

/// The highest committed position (0 when empty).
pub async fn head(backend: &Backend) -> Result<i64, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT MAX(position) FROM salvage_event_log")
            .fetch_one(pool)
            .await?
    });
    Ok(v.unwrap_or(0))
}
