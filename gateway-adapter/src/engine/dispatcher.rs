//! The dispatcher: reads the ordered log past its checkpoint, runs the process manager on each
//! event (with the aggregate's state right after it), and writes every follow-up to the outbox
//! under a stable key, advancing the checkpoint in the same transaction. A crash anywhere
//! re-reads the same events and re-writes the same keys, which the outbox ignores.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use salvage_domain::order::{Order, OrderEvent};
use salvage_domain::process_manager::{on_order_event, on_subscription_event, FollowUp};
use salvage_domain::subscription::{Subscription, SubscriptionEvent};
use salvage_domain::{DomainServices, OrderId, SubscriptionId};
use sqlx::Row;

use crate::store::event_log::{self, LogEntry};
use crate::store::projection::{
    ENSURE_CHECKPOINT, READ_CHECKPOINT_PG, READ_CHECKPOINT_SQLITE, WRITE_CHECKPOINT,
};
use crate::store::{outbox, Backend, Store, StoreError};

/// The dispatcher's checkpoint name.
pub const DISPATCH_CHECKPOINT: &str = "dispatcher";

const LOAD_EVENTS: &str = "SELECT sequence, payload FROM events
  WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3 ORDER BY sequence";

/// A row to write to the outbox.
struct Row_ {
    key: String,
    kind: &'static str,
    payload: String,
    due_at: i64,
    position: i64,
}

fn rows_for(entry: &LogEntry, follow: Vec<FollowUp>) -> Result<Vec<Row_>, StoreError> {
    let at = entry
        .payload
        .get("at")
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    follow
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let (due_at, f) = match f {
                FollowUp::At { at, then } => (at.timestamp_millis(), *then),
                other => (at, other),
            };
            let kind = match &f {
                FollowUp::Order { .. } => "order",
                FollowUp::Subscription { .. } => "subscription",
                FollowUp::Effect(_) => "effect",
                FollowUp::At { .. } => "timer",
            };
            Ok(Row_ {
                key: format!(
                    "{}:{}:{}:{}",
                    entry.aggregate_type, entry.aggregate_id, entry.sequence, i
                ),
                kind,
                payload: serde_json::to_string(&f)?,
                due_at,
                position: entry.position,
            })
        })
        .collect()
}

enum State {
    Order(Box<Order>, i64),
    Subscription(Box<Subscription>, i64),
}

/// Dispatches at most `limit` log entries; returns how many.
pub async fn dispatch_batch(
    store: &Store,
    services: &DomainServices,
    limit: i64,
) -> Result<usize, StoreError> {
    event_log::sync(&store.backend, event_log::SYNC_WAIT).await?;
    if !event_log::has_entries_after_checkpoint(&store.backend, DISPATCH_CHECKPOINT).await? {
        return Ok(0);
    }
    let now = services.clock.now().timestamp_millis();
    macro_rules! body {
        ($tx:ident, $read_checkpoint:expr, $decode:path, $payload:expr) => {{
            sqlx::query(ENSURE_CHECKPOINT)
                .bind(DISPATCH_CHECKPOINT)
                .execute(&mut *$tx)
                .await?;
            let from: i64 = sqlx::query_scalar($read_checkpoint)
                .bind(DISPATCH_CHECKPOINT)
                .fetch_one(&mut *$tx)
                .await?;
            let entries = sqlx::query(event_log::SELECT_AFTER)
                .bind(from)
                .bind(limit)
                .fetch_all(&mut *$tx)
                .await?
                .iter()
                .map($decode)
                .collect::<Result<Vec<LogEntry>, StoreError>>()?;
            let Some(last) = entries.last().map(|e| e.position) else {
                return Ok(0);
            };
            // The state of each aggregate just before the batch's first event of it.
            let mut states: BTreeMap<(String, String), State> = BTreeMap::new();
            let mut rows = Vec::new();
            for e in &entries {
                let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
                if !states.contains_key(&key) {
                    let before = e.sequence - 1;
                    let history = sqlx::query(LOAD_EVENTS)
                        .bind(&e.aggregate_type)
                        .bind(&e.aggregate_id)
                        .bind(before)
                        .fetch_all(&mut *$tx)
                        .await?;
                    let state = match e.aggregate_type.as_str() {
                        "order" => {
                            let mut o = Order::default();
                            for r in &history {
                                let v: serde_json::Value = $payload(r)?;
                                o.apply(serde_json::from_value::<OrderEvent>(v)?);
                            }
                            Some(State::Order(Box::new(o), before))
                        }
                        "subscription" => {
                            let mut s = Subscription::default();
                            for r in &history {
                                let v: serde_json::Value = $payload(r)?;
                                s.apply(serde_json::from_value::<SubscriptionEvent>(v)?);
                            }
                            Some(State::Subscription(Box::new(s), before))
                        }
                        _ => None,
                    };
                    if let Some(s) = state {
                        states.insert(key.clone(), s);
                    }
                }
                let follow = match states.get_mut(&key) {
                    Some(State::Order(o, seq)) if e.sequence > *seq => {
                        let event: OrderEvent = serde_json::from_value(e.payload.clone())?;
                        o.apply(event.clone());
                        *seq = e.sequence;
                        on_order_event(
                            &services.setup,
                            &OrderId::new(e.aggregate_id.clone()),
                            e.sequence as usize,
                            &event,
                            o,
                        )
                    }
                    Some(State::Subscription(s, seq)) if e.sequence > *seq => {
                        let event: SubscriptionEvent = serde_json::from_value(e.payload.clone())?;
                        s.apply(event.clone());
                        *seq = e.sequence;
                        on_subscription_event(
                            &SubscriptionId::new(e.aggregate_id.clone()),
                            e.sequence as usize,
                            &event,
                            s,
                        )
                    }
                    _ => Vec::new(),
                };
                rows.extend(rows_for(e, follow)?);
            }
            for r in &rows {
                sqlx::query(outbox::INSERT)
                    .bind(&r.key)
                    .bind(r.kind)
                    .bind(&r.payload)
                    .bind(r.due_at)
                    .bind(r.position)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
            }
            sqlx::query(WRITE_CHECKPOINT)
                .bind(last)
                .bind(DISPATCH_CHECKPOINT)
                .execute(&mut *$tx)
                .await?;
            entries.len()
        }};
    }
    match &store.backend {
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let n = body!(
                tx,
                READ_CHECKPOINT_SQLITE,
                event_log::decode_sqlite,
                |r: &sqlx::sqlite::SqliteRow| -> Result<serde_json::Value, StoreError> {
                    let s: String = r.try_get("payload")?;
                    Ok(serde_json::from_str(&s)?)
                }
            );
            tx.commit().await?;
            Ok(n)
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let n = body!(
                tx,
                READ_CHECKPOINT_PG,
                event_log::decode_pg,
                |r: &sqlx::postgres::PgRow| -> Result<serde_json::Value, StoreError> {
                    Ok(r.try_get("payload")?)
                }
            );
            tx.commit().await?;
            Ok(n)
        }
    }
}

/// The dispatcher's checkpoint.
pub async fn checkpoint(backend: &Backend) -> Result<i64, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT position FROM salvage_checkpoints WHERE name = $1")
            .bind(DISPATCH_CHECKPOINT)
            .fetch_optional(pool)
            .await?
    });
    Ok(v.unwrap_or(0))
}
