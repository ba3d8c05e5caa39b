//! The dispatcher: reads the ordered log past its checkpoint, runs the process manager on each
//! event (with the aggregate's state right after it), and writes every follow-up to the outbox
//! under a stable key, advancing the checkpoint in the same transaction. A crash anywhere
//! re-reads the same events and re-writes the same keys, which the outbox ignores.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cqrs_es::Aggregate;
use salvage_domain::order::{Order, OrderEvent};
use salvage_domain::process_manager::{on_order_event, on_subscription_event, FollowUp};
use salvage_domain::subscription::{Subscription, SubscriptionEvent};
use salvage_domain::{DomainServices, OrderId, SubscriptionId};

use crate::store::checkpointed::{self, Batch};
use crate::store::event_log::{self, LogEntry};
use crate::store::guarded_commit::Bind;
use crate::store::{Backend, Store, StoreError};

/// The dispatcher's checkpoint name.
pub const DISPATCH_CHECKPOINT: &str = "dispatcher";

const OUTBOX_ROWS: &str = "INSERT INTO salvage_outbox \
    (key, kind, payload, due_at, source_position, created_at)";

/// At most this many outbox rows per batch (a batch stops at the entry that would pass it), so a
/// batch's one statement stays well within PostgreSQL's 65,535 bound values.
const MAX_ROWS: usize = 5_000;

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

/// Dispatches at most `limit` log entries; returns how many (0: caught up). Every event
/// committed before the call is included (see [`event_log::sync`]).
pub async fn dispatch_batch(
    store: &Store,
    services: &DomainServices,
    limit: i64,
) -> Result<usize, StoreError> {
    dispatch_batch_within(store, services, limit, None, event_log::SYNC_WAIT).await
}

/// [`dispatch_batch`] waiting at most `wait` for events committed before the call, and
/// dispatching no entry past position `upto` when it is given. The batch is read and its
/// follow-ups computed outside any transaction; its outbox rows then commit with the checkpoint
/// (see [`checkpointed`]). A batch another process dispatched first is read again.
pub async fn dispatch_batch_within(
    store: &Store,
    services: &DomainServices,
    limit: i64,
    upto: Option<i64>,
    wait: Duration,
) -> Result<usize, StoreError> {
    loop {
        let Some(mut batch) =
            checkpointed::read(&store.backend, DISPATCH_CHECKPOINT, limit, upto, wait).await?
        else {
            return Ok(0);
        };
        let writes = outbox_writes(&store.backend, services, &mut batch).await?;
        if checkpointed::commit(&store.backend, DISPATCH_CHECKPOINT, &batch, writes).await? {
            return Ok(batch.entries.len());
        }
    }
}

/// The state of each aggregate `batch` touches, just before the batch's first event of it.
async fn states_before(
    backend: &Backend,
    batch: &Batch,
) -> Result<BTreeMap<(String, String), State>, StoreError> {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for e in &batch.entries {
        first
            .entry((e.aggregate_type.as_str(), e.aggregate_id.as_str()))
            .or_insert(e.sequence);
    }
    let mut states = BTreeMap::new();
    for kind in ["order", "subscription"] {
        let ids: BTreeSet<&str> = first
            .keys()
            .filter(|(t, _)| *t == kind)
            .map(|(_, id)| *id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT aggregate_id, sequence, CAST(payload AS TEXT) FROM events \
             WHERE aggregate_type = $1 AND aggregate_id IN ({}) ORDER BY aggregate_id, sequence",
            checkpointed::placeholders_from(2, ids.len())
        );
        let history: Vec<(String, i64, String)> = crate::on_pool!(backend, pool => {
            let mut query = sqlx::query_as(&sql).bind(kind);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        for id in ids {
            let before = first.get(&(kind, id)).copied().unwrap_or(1) - 1;
            let state = if kind == "order" {
                State::Order(Box::default(), before)
            } else {
                State::Subscription(Box::default(), before)
            };
            states.insert((kind.to_string(), id.to_string()), state);
        }
        for (id, sequence, payload) in history {
            match states.get_mut(&(kind.to_string(), id)) {
                Some(State::Order(o, before)) if sequence <= *before => {
                    o.apply(serde_json::from_str::<OrderEvent>(&payload)?);
                }
                Some(State::Subscription(s, before)) if sequence <= *before => {
                    s.apply(serde_json::from_str::<SubscriptionEvent>(&payload)?);
                }
                _ => {}
            }
        }
    }
    Ok(states)
}

/// The outbox rows of `batch`'s follow-ups, as writes; the batch is cut short at [`MAX_ROWS`].
pub(crate) async fn outbox_writes(
    backend: &Backend,
    services: &DomainServices,
    batch: &mut Batch,
) -> Result<Vec<crate::store::guarded_commit::Write>, StoreError> {
    let rows = outbox_rows(backend, services, batch).await?;
    Ok(checkpointed::rows(
        OUTBOX_ROWS,
        "ON CONFLICT (key) DO NOTHING",
        rows,
    ))
}

/// The outbox rows of `batch`'s follow-ups; the batch is cut short at [`MAX_ROWS`].
async fn outbox_rows(
    backend: &Backend,
    services: &DomainServices,
    batch: &mut Batch,
) -> Result<Vec<Vec<Bind>>, StoreError> {
    let now = services.clock.now().timestamp_millis();
    let mut states = states_before(backend, batch).await?;
    let mut rows = Vec::new();
    for (n, e) in batch.entries.iter().enumerate() {
        let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
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
        let more = rows_for(e, follow)?;
        if n > 0 && rows.len() + more.len() > MAX_ROWS {
            batch.entries.truncate(n);
            break;
        }
        rows.extend(more.into_iter().map(|r| {
            vec![
                Bind::Text(r.key),
                Bind::Text(r.kind.to_string()),
                Bind::Text(r.payload),
                Bind::Int(r.due_at),
                Bind::Int(r.position),
                Bind::Int(now),
            ]
        }));
    }
    Ok(rows)
}

/// The dispatcher's checkpoint.
pub async fn checkpoint(backend: &Backend) -> Result<i64, StoreError> {
    checkpointed::position(backend, DISPATCH_CHECKPOINT).await
}
