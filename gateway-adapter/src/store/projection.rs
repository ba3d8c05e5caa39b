//! Projections (read models) of orders, subscriptions and pending salvages, kept by
//! checkpointed catch-up from the ordered log: each batch updates the views and the checkpoint
//! in one transaction, so a crash between a commit and its projection loses nothing (the batch
//! is simply read again). `rebuild` empties the views and replays the log from the start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::Duration;

use salvage_domain::order::{Order, SalvageRoute};
use salvage_domain::subscription::Subscription;
use sqlx::Row;

use super::aggregate_at::{AggregateAt, Known};
use super::checkpointed::{self, Batch};
use super::console_view::{self, FunnelEntry};
use super::event_log::{self, LogEntry};
use super::guarded_commit::{self, Bind, CommitError, Write};
use super::{Backend, StoreError};

/// The projector's checkpoint name.
pub const CHECKPOINT: &str = "projections";

static ORDER_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO salvage_order_view \
         (order_id, order_type, status, state, last_sequence, updated_position, card_token, {})",
        console_view::ORDER_COLUMNS
    )
});
static ORDER_UPSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "ON CONFLICT (order_id) DO UPDATE SET order_type = excluded.order_type, \
         status = excluded.status, state = excluded.state, last_sequence = excluded.last_sequence, \
         updated_position = excluded.updated_position, card_token = excluded.card_token, {}",
        console_view::order_upsert_columns()
    )
});
const SUBSCRIPTION_ROWS: &str = "INSERT INTO salvage_subscription_view \
    (subscription_id, status, billing_gateway, cycle, next_bill_at, state, last_sequence, updated_position, card_token)";
const SUBSCRIPTION_UPSERT: &str = "ON CONFLICT (subscription_id) DO UPDATE SET \
    status = excluded.status, billing_gateway = excluded.billing_gateway, cycle = excluded.cycle, \
    next_bill_at = excluded.next_bill_at, state = excluded.state, \
    last_sequence = excluded.last_sequence, updated_position = excluded.updated_position, \
    card_token = excluded.card_token";
const PENDING_ROWS: &str = "INSERT INTO salvage_pending_salvage_view \
    (order_id, attempt, route, salvage_state, expires_at, flexfactor_order_id, updated_position)";
const PENDING_UPSERT: &str = "ON CONFLICT (order_id) DO UPDATE SET attempt = excluded.attempt, \
    route = excluded.route, salvage_state = excluded.salvage_state, \
    expires_at = excluded.expires_at, flexfactor_order_id = excluded.flexfactor_order_id, \
    updated_position = excluded.updated_position";

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

/// Projects at most `limit` log entries past the checkpoint; returns how many (0: caught up).
/// Every event committed before the call is included (see [`event_log::sync`]).
pub async fn project_batch(backend: &Backend, limit: i64) -> Result<usize, StoreError> {
    project_batch_within(backend, limit, None, event_log::SYNC_WAIT).await
}

/// [`project_batch`] waiting at most `wait` for events committed before the call, and projecting
/// no entry past position `upto` when it is given. The batch is read and folded outside any
/// transaction, then its view rows commit with the checkpoint (see [`checkpointed`]); a batch
/// another process projected first is read again.
pub async fn project_batch_within(
    backend: &Backend,
    limit: i64,
    upto: Option<i64>,
    wait: Duration,
) -> Result<usize, StoreError> {
    checkpointed::apply(backend, CHECKPOINT, limit, upto, wait, |batch| async move {
        let writes = view_writes(backend, &batch).await?;
        Ok((batch, writes))
    })
    .await
}

/// The view rows `batch` changes, as writes.
pub(crate) async fn view_writes(
    backend: &Backend,
    batch: &Batch,
) -> Result<Vec<Write>, StoreError> {
    let mut changed = view_states(backend, &batch.entries).await?;
    let before = console_view::before(&changed);
    for e in &batch.entries {
        let key = (e.event.aggregate_type.clone(), e.event.aggregate_id.clone());
        if !changed.contains_key(&key) {
            if let Some(fresh) = AggregateAt::fresh(&e.event.aggregate_type) {
                changed.insert(key.clone(), fresh);
            }
        }
        if let Some(state) = changed.get_mut(&key) {
            state.apply(e)?;
        }
    }
    view_rows(&before, changed, batch.last())
}

/// The view rows, as they are now, of every aggregate `entries` touch (one query per view).
pub(crate) async fn view_states(
    backend: &Backend,
    entries: &[LogEntry],
) -> Result<Known, StoreError> {
    let mut known = Known::new();
    for (table, id_col, kind) in [
        ("salvage_order_view", "order_id", "order"),
        (
            "salvage_subscription_view",
            "subscription_id",
            "subscription",
        ),
    ] {
        let ids: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.event.aggregate_type == kind)
            .map(|e| e.event.aggregate_id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT {id_col} AS id, state, last_sequence FROM {table} WHERE {id_col} IN ({})",
            checkpointed::placeholders(ids.len())
        );
        let sql = backend.statement(&sql);
        let found: Vec<(String, String, i64)> = crate::on_pool!(backend, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        for (id, state, seq) in found {
            let at = if kind == "order" {
                AggregateAt::Order(serde_json::from_str(&state)?, seq)
            } else {
                AggregateAt::Subscription(serde_json::from_str(&state)?, seq)
            };
            known.insert((kind.to_string(), id), at);
        }
    }
    Ok(known)
}

/// The writes that set the view rows of `changed` (each at its state and sequence), as of log
/// position `last`; `before` is the funnel as the view rows had it before (see
/// [`console_view::before`]).
pub(crate) fn view_rows(
    before: &BTreeMap<String, FunnelEntry>,
    changed: Known,
    last: i64,
) -> Result<Vec<Write>, StoreError> {
    let funnel = console_view::funnel_writes(before, &changed);
    let (mut orders, mut subscriptions, mut pending, mut settled) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((_, id), c) in changed {
        match c {
            AggregateAt::Order(o, seq) => {
                let open = o.salvage.as_ref().filter(|s| {
                    s.state.is_open() && !matches!(s.route, SalvageRoute::Cascade { .. })
                });
                match open {
                    Some(s) => pending.push(vec![
                        Bind::Text(id.clone()),
                        Bind::Int(i64::from(s.attempt)),
                        Bind::Text(s.route.name().to_string()),
                        Bind::Text(
                            serde_json::to_value(s.state)?
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                        ),
                        Bind::OptInt(s.expires_at().map(|t| t.timestamp_millis())),
                        Bind::OptText(s.flexfactor_order_id.as_ref().map(|f| f.to_string())),
                        Bind::Int(last),
                    ]),
                    None => settled.push(id.clone()),
                }
                let mut row = vec![
                    Bind::Text(id),
                    Bind::Text(
                        o.details
                            .as_ref()
                            .map(|d| d.order_type.as_str())
                            .unwrap_or("")
                            .to_string(),
                    ),
                    Bind::Text(o.status.map(|s| s.as_str()).unwrap_or("").to_string()),
                    Bind::Text(serde_json::to_string(&o)?),
                    Bind::Int(seq),
                    Bind::Int(last),
                    Bind::OptText(o.details.as_ref().map(|d| d.card.ledger_key().to_string())),
                ];
                row.extend(console_view::order_binds(&o));
                orders.push(row);
            }
            AggregateAt::Subscription(s, seq) => subscriptions.push(vec![
                Bind::Text(id),
                Bind::Text(s.status.map(|x| x.as_str()).unwrap_or("").to_string()),
                Bind::OptText(s.billing_gateway.as_ref().map(|g| g.to_string())),
                Bind::Int(i64::from(s.cycle)),
                Bind::OptInt(s.next_bill_at.map(|t| t.timestamp_millis())),
                Bind::Text(serde_json::to_string(&s)?),
                Bind::Int(seq),
                Bind::Int(last),
                Bind::OptText(s.card.as_ref().map(|c| c.token.clone())),
            ]),
        }
    }
    let mut writes = checkpointed::rows(&ORDER_ROWS, &ORDER_UPSERT, orders);
    writes.extend(funnel);
    writes.extend(checkpointed::rows(PENDING_ROWS, PENDING_UPSERT, pending));
    writes.extend(checkpointed::delete_ids(
        "salvage_pending_salvage_view",
        "order_id",
        settled,
    ));
    writes.extend(checkpointed::rows(
        SUBSCRIPTION_ROWS,
        SUBSCRIPTION_UPSERT,
        subscriptions,
    ));
    Ok(writes)
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

/// Empties the views and resets their checkpoint, in one transaction; the next catch-up
/// rebuilds them from the log. A batch projected meanwhile from the old checkpoint is refused.
pub async fn reset(backend: &Backend) -> Result<(), StoreError> {
    let statement = |sql: &'static str, binds: Vec<Bind>| Write {
        sql: sql.into(),
        binds,
        guard: None,
        rows: 1,
    };
    let name = || vec![Bind::Text(CHECKPOINT.to_string())];
    let writes = [
        statement(
            "INSERT INTO salvage_checkpoints (name, position) VALUES ($1, 0) \
             ON CONFLICT (name) DO NOTHING",
            name(),
        ),
        statement(
            "UPDATE salvage_checkpoints SET position = 0 WHERE name = $1",
            name(),
        ),
        statement("DELETE FROM salvage_order_view", Vec::new()),
        statement("DELETE FROM salvage_subscription_view", Vec::new()),
        statement("DELETE FROM salvage_pending_salvage_view", Vec::new()),
        statement("DELETE FROM salvage_funnel_hourly", Vec::new()),
        statement("DELETE FROM salvage_funnel_daily", Vec::new()),
    ];
    match guarded_commit::commit(backend, &[], &writes).await {
        Ok(()) => Ok(()),
        Err(CommitError::Store(e)) => Err(e),
        Err(e) => Err(StoreError::Corrupt(format!("resetting the views: {e}"))),
    }
}

/// Rebuilds every projection from scratch; returns how many log entries were replayed.
pub async fn rebuild(backend: &Backend) -> Result<usize, StoreError> {
    reset(backend).await?;
    catch_up(backend).await
}

/// The projector's checkpoint.
pub async fn checkpoint(backend: &Backend) -> Result<i64, StoreError> {
    checkpointed::position(backend, CHECKPOINT).await
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

/// Writes the view rows of `orders` (each its id, its state and the sequence of its last event)
/// as the projector writes them after a batch ending at log position `last`: the same
/// [`view_rows`] (the console's columns, the funnel's deltas against the rows there now, the
/// pending salvages), committed in one transaction. Nothing is appended to the log and no
/// checkpoint moves: for benchmarks that need a large store without replaying its history.
/// PostgreSQL commits the writes as one statement, so a call takes at most about 2,000 orders
/// (65,535 binds).
#[doc(hidden)]
pub async fn seed_order_views(
    backend: &Backend,
    orders: Vec<(String, Order, i64)>,
    last: i64,
) -> Result<(), StoreError> {
    let mut known = Known::new();
    for chunk in orders.chunks(500) {
        let sql = format!(
            "SELECT order_id, state, last_sequence FROM salvage_order_view WHERE order_id IN ({})",
            checkpointed::placeholders(chunk.len())
        );
        let found: Vec<(String, String, i64)> = crate::on_pool!(backend, pool => {
            let mut query = sqlx::query_as(&sql);
            for (id, _, _) in chunk {
                query = query.bind(id.as_str());
            }
            query.fetch_all(pool).await?
        });
        for (id, state, seq) in found {
            known.insert(
                ("order".to_string(), id),
                AggregateAt::Order(serde_json::from_str(&state)?, seq),
            );
        }
    }
    let before = console_view::before(&known);
    let changed: Known = orders
        .into_iter()
        .map(|(id, o, seq)| {
            (
                ("order".to_string(), id),
                AggregateAt::Order(Box::new(o), seq),
            )
        })
        .collect();
    let writes = view_rows(&before, changed, last)?;
    match guarded_commit::commit(backend, &[], &writes).await {
        Ok(()) => Ok(()),
        Err(CommitError::Store(e)) => Err(e),
        Err(e) => Err(StoreError::Corrupt(format!("seeding the views: {e}"))),
    }
}
