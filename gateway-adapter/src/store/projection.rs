//! Projections (read models) of orders, subscriptions and pending salvages, kept by
//! checkpointed catch-up from the ordered log: each batch updates the views and the checkpoint
//! in one transaction, so a crash between a commit and its projection loses nothing (the batch
//! is simply read again). `rebuild` empties the views and replays the log from the start.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use salvage_domain::order::{Order, OrderEvent, SalvageRoute};
use salvage_domain::subscription::{Subscription, SubscriptionEvent};
use sqlx::Row;

use super::event_log::{self, LogEntry};
use super::{Backend, StoreError};

/// The projector's checkpoint name.
pub const CHECKPOINT: &str = "projections";

pub(crate) const ENSURE_CHECKPOINT: &str =
    "INSERT INTO salvage_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING";
pub(crate) const READ_CHECKPOINT_SQLITE: &str =
    "SELECT position FROM salvage_checkpoints WHERE name = $1";
pub(crate) const READ_CHECKPOINT_PG: &str =
    "SELECT position FROM salvage_checkpoints WHERE name = $1 FOR UPDATE";
pub(crate) const WRITE_CHECKPOINT: &str =
    "UPDATE salvage_checkpoints SET position = $1 WHERE name = $2";

const UPSERT_ORDER: &str = "
INSERT INTO salvage_order_view (order_id, order_type, status, state, last_sequence, updated_position)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (order_id) DO UPDATE SET order_type = excluded.order_type, status = excluded.status,
  state = excluded.state, last_sequence = excluded.last_sequence, updated_position = excluded.updated_position";
const UPSERT_SUBSCRIPTION: &str = "
INSERT INTO salvage_subscription_view (subscription_id, status, billing_gateway, cycle, next_bill_at, state, last_sequence, updated_position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (subscription_id) DO UPDATE SET status = excluded.status, billing_gateway = excluded.billing_gateway,
  cycle = excluded.cycle, next_bill_at = excluded.next_bill_at, state = excluded.state,
  last_sequence = excluded.last_sequence, updated_position = excluded.updated_position";
const UPSERT_PENDING: &str = "
INSERT INTO salvage_pending_salvage_view (order_id, attempt, route, salvage_state, expires_at, flexfactor_order_id, updated_position)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (order_id) DO UPDATE SET attempt = excluded.attempt, route = excluded.route,
  salvage_state = excluded.salvage_state, expires_at = excluded.expires_at,
  flexfactor_order_id = excluded.flexfactor_order_id, updated_position = excluded.updated_position";
const DELETE_PENDING: &str = "DELETE FROM salvage_pending_salvage_view WHERE order_id = $1";

/// A view row of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: String,
    pub order_type: String,
    pub status: String,
    pub state: Order,
    pub last_sequence: i64,
}

/// A view row of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub subscription_id: String,
    pub status: String,
    pub billing_gateway: Option<String>,
    pub cycle: i64,
    pub next_bill_at: Option<i64>,
    pub state: Subscription,
    pub last_sequence: i64,
}

/// A pending asynchronous salvage (for O8 reconciliation and operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSalvage {
    pub order_id: String,
    pub attempt: i64,
    pub route: String,
    pub salvage_state: String,
    pub expires_at: Option<i64>,
    pub flexfactor_order_id: Option<String>,
}

enum Changed {
    Order(Box<Order>, i64),
    Subscription(Box<Subscription>, i64),
}

/// Projects at most `limit` log entries past the checkpoint; returns how many.
pub async fn project_batch(backend: &Backend, limit: i64) -> Result<usize, StoreError> {
    event_log::sync(backend, event_log::SYNC_WAIT).await?;
    if !event_log::has_entries_after_checkpoint(backend, CHECKPOINT).await? {
        return Ok(0);
    }
    macro_rules! body {
        ($tx:ident, $read_checkpoint:expr, $decode:path) => {{
            sqlx::query(ENSURE_CHECKPOINT).bind(CHECKPOINT).execute(&mut *$tx).await?;
            let from: i64 = sqlx::query_scalar($read_checkpoint)
                .bind(CHECKPOINT)
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
            // The view rows of every aggregate the batch touches, in one query per view.
            let mut changed: BTreeMap<(String, String), Changed> = BTreeMap::new();
            for (table, id_col, kind) in [
                ("salvage_order_view", "order_id", "order"),
                ("salvage_subscription_view", "subscription_id", "subscription"),
            ] {
                let ids: std::collections::BTreeSet<&str> = entries
                    .iter()
                    .filter(|e| e.aggregate_type == kind)
                    .map(|e| e.aggregate_id.as_str())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let placeholders = (1..=ids.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT {id_col} AS id, state, last_sequence FROM {table} WHERE {id_col} IN ({placeholders})"
                );
                let mut query = sqlx::query(&sql);
                for id in &ids {
                    query = query.bind(*id);
                }
                for r in query.fetch_all(&mut *$tx).await? {
                    let id: String = r.try_get("id")?;
                    let state: String = r.try_get("state")?;
                    let seq: i64 = r.try_get("last_sequence")?;
                    let c = if kind == "order" {
                        Changed::Order(serde_json::from_str(&state)?, seq)
                    } else {
                        Changed::Subscription(serde_json::from_str(&state)?, seq)
                    };
                    changed.insert((kind.to_string(), id), c);
                }
            }
            for e in &entries {
                let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
                if !changed.contains_key(&key) {
                    let fresh = match e.aggregate_type.as_str() {
                        "order" => Some(Changed::Order(Box::default(), 0)),
                        "subscription" => Some(Changed::Subscription(Box::default(), 0)),
                        _ => None,
                    };
                    if let Some(l) = fresh {
                        changed.insert(key.clone(), l);
                    }
                }
                match changed.get_mut(&key) {
                    Some(Changed::Order(state, seq)) if e.sequence > *seq => {
                        let event: OrderEvent = serde_json::from_value(e.payload.clone())?;
                        state.apply(event);
                        *seq = e.sequence;
                    }
                    Some(Changed::Subscription(state, seq)) if e.sequence > *seq => {
                        let event: SubscriptionEvent = serde_json::from_value(e.payload.clone())?;
                        state.apply(event);
                        *seq = e.sequence;
                    }
                    _ => {}
                }
            }
            for ((_, id), c) in &changed {
                match c {
                    Changed::Order(o, seq) => {
                        let order_type = o.details.as_ref().map(|d| d.order_type.as_str()).unwrap_or("");
                        let status = o.status.map(|s| s.as_str()).unwrap_or("");
                        sqlx::query(UPSERT_ORDER)
                            .bind(id)
                            .bind(order_type)
                            .bind(status)
                            .bind(serde_json::to_string(o)?)
                            .bind(*seq)
                            .bind(last)
                            .execute(&mut *$tx)
                            .await?;
                        match o.salvage.as_ref().filter(|s| s.state.is_open() && !matches!(s.route, SalvageRoute::Cascade { .. })) {
                            Some(s) => {
                                sqlx::query(UPSERT_PENDING)
                                    .bind(id)
                                    .bind(i64::from(s.attempt))
                                    .bind(s.route.name())
                                    .bind(serde_json::to_value(s.state)?.as_str().unwrap_or("").to_string())
                                    .bind(s.expires_at().map(|t| t.timestamp_millis()))
                                    .bind(s.flexfactor_order_id.as_ref().map(|f| f.to_string()))
                                    .bind(last)
                                    .execute(&mut *$tx)
                                    .await?;
                            }
                            None => {
                                sqlx::query(DELETE_PENDING).bind(id).execute(&mut *$tx).await?;
                            }
                        }
                    }
                    Changed::Subscription(s, seq) => {
                        sqlx::query(UPSERT_SUBSCRIPTION)
                            .bind(id)
                            .bind(s.status.map(|x| x.as_str()).unwrap_or(""))
                            .bind(s.billing_gateway.as_ref().map(|g| g.to_string()))
                            .bind(i64::from(s.cycle))
                            .bind(s.next_bill_at.map(|t| t.timestamp_millis()))
                            .bind(serde_json::to_string(s)?)
                            .bind(*seq)
                            .bind(last)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            }
            sqlx::query(WRITE_CHECKPOINT).bind(last).bind(CHECKPOINT).execute(&mut *$tx).await?;
            entries.len()
        }};
    }
    match backend {
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let n = body!(tx, READ_CHECKPOINT_SQLITE, event_log::decode_sqlite);
            tx.commit().await?;
            Ok(n)
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let n = body!(tx, READ_CHECKPOINT_PG, event_log::decode_pg);
            tx.commit().await?;
            Ok(n)
        }
    }
}

/// Projects until the views have caught up with the log; returns how many entries.
pub async fn catch_up(backend: &Backend) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = project_batch(backend, 500).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Empties the views and resets their checkpoint; the next catch-up rebuilds them from the log.
pub async fn reset(backend: &Backend) -> Result<(), StoreError> {
    const SQL: [&str; 3] = [
        "DELETE FROM salvage_order_view",
        "DELETE FROM salvage_subscription_view",
        "DELETE FROM salvage_pending_salvage_view",
    ];
    match backend {
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for s in SQL {
                sqlx::query(s).execute(&mut *tx).await?;
            }
            sqlx::query(ENSURE_CHECKPOINT)
                .bind(CHECKPOINT)
                .execute(&mut *tx)
                .await?;
            sqlx::query(WRITE_CHECKPOINT)
                .bind(0_i64)
                .bind(CHECKPOINT)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query(ENSURE_CHECKPOINT)
                .bind(CHECKPOINT)
                .execute(&mut *tx)
                .await?;
            sqlx::query(READ_CHECKPOINT_PG)
                .bind(CHECKPOINT)
                .fetch_one(&mut *tx)
                .await?;
            for s in SQL {
                sqlx::query(s).execute(&mut *tx).await?;
            }
            sqlx::query(WRITE_CHECKPOINT)
                .bind(0_i64)
                .bind(CHECKPOINT)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Rebuilds every projection from scratch; returns how many log entries were replayed.
pub async fn rebuild(backend: &Backend) -> Result<usize, StoreError> {
    reset(backend).await?;
    catch_up(backend).await
}

/// The projector's checkpoint.
pub async fn checkpoint(backend: &Backend) -> Result<i64, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT position FROM salvage_checkpoints WHERE name = $1")
            .bind(CHECKPOINT)
            .fetch_optional(pool)
            .await?
    });
    Ok(v.unwrap_or(0))
}

pub async fn order(backend: &Backend, order_id: &str) -> Result<Option<OrderView>, StoreError> {
    let v = crate::on_pool!(backend, pool => {
        match sqlx::query("SELECT order_id, order_type, status, state, last_sequence FROM salvage_order_view WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(pool)
            .await?
        {
            None => None,
            Some(r) => Some(OrderView {
                order_id: r.try_get("order_id")?,
                order_type: r.try_get("order_type")?,
                status: r.try_get("status")?,
                state: serde_json::from_str(&r.try_get::<String, _>("state")?)?,
                last_sequence: r.try_get("last_sequence")?,
            }),
        }
    });
    Ok(v)
}

pub async fn subscription(
    backend: &Backend,
    subscription_id: &str,
) -> Result<Option<SubscriptionView>, StoreError> {
    let v = crate::on_pool!(backend, pool => {
        match sqlx::query("SELECT subscription_id, status, billing_gateway, cycle, next_bill_at, state, last_sequence FROM salvage_subscription_view WHERE subscription_id = $1")
            .bind(subscription_id)
            .fetch_optional(pool)
            .await?
        {
            None => None,
            Some(r) => Some(SubscriptionView {
                subscription_id: r.try_get("subscription_id")?,
                status: r.try_get("status")?,
                billing_gateway: r.try_get("billing_gateway")?,
                cycle: r.try_get("cycle")?,
                next_bill_at: r.try_get("next_bill_at")?,
                state: serde_json::from_str(&r.try_get::<String, _>("state")?)?,
                last_sequence: r.try_get("last_sequence")?,
            }),
        }
    });
    Ok(v)
}

/// Pending asynchronous salvages, by expiry (those without one last).
pub async fn pending_salvages(backend: &Backend) -> Result<Vec<PendingSalvage>, StoreError> {
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query("SELECT order_id, attempt, route, salvage_state, expires_at, flexfactor_order_id
                       FROM salvage_pending_salvage_view ORDER BY expires_at IS NULL, expires_at, order_id")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(PendingSalvage {
                    order_id: r.try_get("order_id")?,
                    attempt: r.try_get("attempt")?,
                    route: r.try_get("route")?,
                    salvage_state: r.try_get("salvage_state")?,
                    expires_at: r.try_get("expires_at")?,
                    flexfactor_order_id: r.try_get("flexfactor_order_id")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// Counts of the views: (orders, subscriptions, pending salvages).
pub async fn counts(backend: &Backend) -> Result<(i64, i64, i64), StoreError> {
    let c = crate::on_pool!(backend, pool => {
        let o: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM salvage_order_view").fetch_one(pool).await?;
        let s: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM salvage_subscription_view").fetch_one(pool).await?;
        let p: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM salvage_pending_salvage_view").fetch_one(pool).await?;
        (o, s, p)
    });
    Ok(c)
}
