//! The dispatcher: reads the ordered log past its checkpoint, runs the process manager on each
//! event (with the aggregate's state right after it), and writes every follow-up to the outbox
//! under a stable key, advancing the checkpoint in the same transaction. A crash anywhere
//! re-reads the same events and re-writes the same keys, which the outbox ignores.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use salvage_domain::process_manager::{on_order_event, on_subscription_event, FollowUp};
use salvage_domain::{DomainServices, OrderId, SubscriptionId};

use super::follow_up;
use crate::store::aggregate_at::{AggregateAt, Applied, Known};
use crate::store::checkpointed::{self, Batch};
use crate::store::event_log::{self, LogEntry};
use crate::store::guarded_commit::{Bind, Write};
use crate::store::{projection, Backend, Store, StoreError};

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
        .event
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
            let (due_at, f) = follow_up::due(f, at);
            Ok(Row_ {
                key: follow_up::key(
                    &entry.event.aggregate_type,
                    &entry.event.aggregate_id,
                    entry.event.sequence,
                    i,
                ),
                kind: follow_up::kind(&f),
                payload: serde_json::to_string(&f)?,
                due_at,
                position: entry.event.position,
            })
        })
        .collect()
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
    let backend = &store.backend;
    checkpointed::apply(
        backend,
        DISPATCH_CHECKPOINT,
        limit,
        upto,
        wait,
        |mut batch| async move {
            let writes = outbox_writes(backend, services, &mut batch).await?;
            Ok((batch, writes))
        },
    )
    .await
}

/// The state of each aggregate `batch` touches, just before the batch's first event of it.
/// `known` may hold some of them already (the views, when they are at the batch's start): one
/// whose sequence is just before its first event in the batch is taken as it is; an aggregate
/// whose first event is its first ever starts empty; the others are folded from their history,
/// in one query per aggregate type.
async fn states_before(
    backend: &Backend,
    batch: &Batch,
    mut known: Known,
) -> Result<Known, StoreError> {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for e in &batch.entries {
        first
            .entry((
                e.event.aggregate_type.as_str(),
                e.event.aggregate_id.as_str(),
            ))
            .or_insert(e.event.sequence);
    }
    let mut states = Known::new();
    let mut from_history: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ((kind, id), first) in first {
        let key = (kind.to_string(), id.to_string());
        let Some(fresh) = AggregateAt::fresh(kind) else {
            continue;
        };
        match known.remove(&key) {
            Some(at) if at.sequence() == first - 1 => {
                states.insert(key, at);
            }
            _ if first == 1 => {
                states.insert(key, fresh);
            }
            _ => {
                // Folded from its history below, up to the event before `first`.
                states.insert(key, fresh.empty_at(first - 1));
                from_history.entry(kind).or_default().insert(id);
            }
        }
    }
    for (kind, ids) in from_history {
        let sql = format!(
            "SELECT aggregate_id, sequence, CAST(payload AS TEXT) FROM events \
             WHERE aggregate_type = $1 AND aggregate_id IN ({}) ORDER BY aggregate_id, sequence",
            checkpointed::placeholders_from(2, ids.len())
        );
        let sql = backend.statement(&sql);
        let history: Vec<(String, i64, String)> = crate::on_pool!(backend, pool => {
            let mut query = sqlx::query_as(&sql).bind(kind);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        for (id, sequence, payload) in history {
            if let Some(at) = states.get_mut(&(kind.to_string(), id)) {
                if sequence <= at.sequence() {
                    at.apply_stored(&payload)?;
                }
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
) -> Result<Vec<Write>, StoreError> {
    let mut states = states_before(backend, batch, Known::new()).await?;
    let (rows, _) = outbox_rows(services, batch, &mut states)?;
    Ok(checkpointed::rows(
        OUTBOX_ROWS,
        "ON CONFLICT (key) DO NOTHING",
        rows,
    ))
}

/// One batch for the dispatcher and the projector at the same checkpoint: the outbox rows of its
/// follow-ups and the view rows it changes, as writes. The views are the state of each
/// aggregate at the batch's start, so they serve the process manager too (no history is read
/// for them), and each event is decoded and applied once for both.
pub(crate) async fn outbox_and_view_writes(
    backend: &Backend,
    services: &DomainServices,
    batch: &mut Batch,
) -> Result<Vec<Write>, StoreError> {
    let views = projection::view_states(backend, &batch.entries).await?;
    let before = crate::store::console_view::before(&views);
    let mut states = states_before(backend, batch, views).await?;
    let (rows, cut) = outbox_rows(services, batch, &mut states)?;
    let mut writes = checkpointed::rows(OUTBOX_ROWS, "ON CONFLICT (key) DO NOTHING", rows);
    if cut {
        // The states hold the event the batch was cut before: the views follow on their own.
        writes.extend(projection::view_writes(backend, batch).await?);
    } else {
        writes.extend(projection::view_rows(&before, states, batch.last())?);
    }
    Ok(writes)
}

/// The outbox rows of `batch`'s follow-ups, folding `states` (each aggregate's state before the
/// batch) through it; the batch is cut short at [`MAX_ROWS`] (then the flag is true).
fn outbox_rows(
    services: &DomainServices,
    batch: &mut Batch,
    states: &mut Known,
) -> Result<(Vec<Vec<Bind>>, bool), StoreError> {
    let now = services.clock.now().timestamp_millis();
    let mut rows = Vec::new();
    for (n, e) in batch.entries.iter().enumerate() {
        let key = (e.event.aggregate_type.clone(), e.event.aggregate_id.clone());
        let follow = match states.get_mut(&key).map(|s| s.apply(e)).transpose()? {
            Some(Some(Applied::Order(event, order))) => on_order_event(
                &services.setup,
                &OrderId::new(e.event.aggregate_id.clone()),
                e.event.sequence as usize,
                &event,
                order,
            ),
            Some(Some(Applied::Subscription(event, subscription))) => on_subscription_event(
                &SubscriptionId::new(e.event.aggregate_id.clone()),
                e.event.sequence as usize,
                &event,
                subscription,
            ),
            _ => Vec::new(),
        };
        let more = rows_for(e, follow)?;
        if n > 0 && rows.len() + more.len() > MAX_ROWS {
            batch.entries.truncate(n);
            return Ok((rows, true));
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
    Ok((rows, false))
}

/// The dispatcher's checkpoint.
pub async fn checkpoint(backend: &Backend) -> Result<i64, StoreError> {
    checkpointed::position(backend, DISPATCH_CHECKPOINT).await
}
