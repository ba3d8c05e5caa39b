//! The ordered log of every committed event, with its global position: what the CRM feed,
//! the projections and the dispatcher read, each from its own checkpoint.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Backend, StoreError};
use crate::feed::FeedEvent;

/// One committed event and its place in the global order (the feed's record), with the
/// event's metadata (kept from the feed: the request fingerprint and the like).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub event: FeedEvent,
    pub metadata: Value,
}

/// The columns every log read returns, and a page of the log after `$1` (at most `$2` entries)
/// as `l`. The page is taken first (a range of the log's primary key), then each of its events
/// by the events' primary key, so the cost is the page's whatever the size of either table.
macro_rules! log_page {
    () => {
        "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence,
       e.event_type, e.event_version, e.payload, e.metadata
  FROM (SELECT position, aggregate_type, aggregate_id, sequence
          FROM salvage_event_log
         WHERE position > $1
         ORDER BY position
         LIMIT $2) l"
    };
}

/// A page of the log with its events: SQLite's planner joins a page like this by primary key.
const SELECT_AFTER_SQLITE: &str = concat!(
    log_page!(),
    "
  JOIN events e ON e.aggregate_type = l.aggregate_type
               AND e.aggregate_id = l.aggregate_id
               AND e.sequence = l.sequence
 ORDER BY l.position"
);

/// [`SELECT_AFTER_SQLITE`] for PostgreSQL, whose planner would rather hash the whole events
/// table into a join while it is small or its statistics stale: the `LATERAL ... LIMIT 1` keeps
/// it to one primary-key lookup per entry of the page.
const SELECT_AFTER_PG: &str = concat!(
    log_page!(),
    "
 CROSS JOIN LATERAL (
       SELECT event_type, event_version, payload, metadata
         FROM events
        WHERE aggregate_type = l.aggregate_type
          AND aggregate_id = l.aggregate_id
          AND sequence = l.sequence
        LIMIT 1) e
 ORDER BY l.position"
);

pub(crate) fn decode_sqlite(r: &sqlx::sqlite::SqliteRow) -> Result<LogEntry, StoreError> {
    let payload: String = r.try_get("payload")?;
    let metadata: String = r.try_get("metadata")?;
    Ok(LogEntry {
        event: FeedEvent {
            position: r.try_get("position")?,
            aggregate_type: r.try_get("aggregate_type")?,
            aggregate_id: r.try_get("aggregate_id")?,
            sequence: r.try_get("sequence")?,
            event_type: r.try_get("event_type")?,
            event_version: r.try_get("event_version")?,
            payload: serde_json::from_str(&payload)?,
        },
        metadata: serde_json::from_str(&metadata)?,
    })
}

pub(crate) fn decode_pg(r: &sqlx::postgres::PgRow) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        event: FeedEvent {
            position: r.try_get("position")?,
            aggregate_type: r.try_get("aggregate_type")?,
            aggregate_id: r.try_get("aggregate_id")?,
            sequence: r.try_get("sequence")?,
            event_type: r.try_get("event_type")?,
            event_version: r.try_get("event_version")?,
            payload: r.try_get("payload")?,
        },
        metadata: r.try_get("metadata")?,
    })
}

/// How many events one sequencer call gives positions to, at most.
const SEQUENCE_BATCH: i64 = 10_000;

/// How long [`sync`] waits, at most, for transactions still running that may hold events
/// committed before it was called.
pub const SYNC_WAIT: Duration = Duration::from_secs(2);

/// Gives log positions to the events committed before this call (PostgreSQL; on SQLite the
/// committing transaction gives them, so this does nothing).
///
/// On PostgreSQL positions are given after commit, by `salvage_sequence_log` (migration 6), to
/// the events whose transaction is older than every transaction still running, so a position,
/// once given, is never followed by an event that sorts before it: a reader never skips an event
/// that commits late. An event committed before this call may belong to a transaction newer
/// than one still running; `sync` waits for those (a few milliseconds: transactions here are
/// short), at most `wait`, and logs a warning if a long transaction holds the log back (the
/// events are not lost; they get their positions when it ends).
pub async fn sync(backend: &Backend, wait: Duration) -> Result<(), StoreError> {
    let Backend::Postgres(pool) = backend else {
        return Ok(());
    };
    let started = Instant::now();
    let mut target: Option<i64> = None;
    loop {
        let (sequenced, horizon, next_xid): (i64, i64, i64) = sqlx::query_as(
            "SELECT sequenced, horizon::text::bigint, next_xid::text::bigint \
               FROM salvage_sequence_log($1)",
        )
        .bind(SEQUENCE_BATCH as i32)
        .fetch_one(pool)
        .await?;
        let target = *target.get_or_insert(next_xid);
        if sequenced >= SEQUENCE_BATCH {
            continue;
        }
        if horizon >= target {
            return Ok(());
        }
        if started.elapsed() >= wait {
            if wait.is_zero() {
                // A caller that reads again later (the background worker) does not wait.
                return Ok(());
            }
            tracing::warn!(
                horizon,
                target,
                "the event log is held back by a long-running transaction; \
                 its events get their positions when it ends"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads at most `limit` entries after `after`, in position order, every event committed before
/// the call included (see [`sync`]).
pub async fn read_after(
    backend: &Backend,
    after: i64,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    sync(backend, SYNC_WAIT).await?;
    read_after_synced(backend, after, limit).await
}

/// [`read_after`] for a caller that has just called [`sync`].
pub(crate) async fn read_after_synced(
    backend: &Backend,
    after: i64,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    match backend {
        Backend::Sqlite(pool) => sqlx::query(SELECT_AFTER_SQLITE)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode_sqlite)
            .collect(),
        Backend::Postgres(pool) => sqlx::query(SELECT_AFTER_PG)
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
    sync(backend, SYNC_WAIT).await?;
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT MAX(position) FROM salvage_event_log")
            .fetch_one(pool)
            .await?
    });
    Ok(v.unwrap_or(0))
}
