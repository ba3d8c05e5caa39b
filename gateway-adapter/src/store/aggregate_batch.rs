//! Commands on several aggregates of one type decided together and committed in one
//! transaction: the group commit of concurrent webhook deliveries. The aggregates are folded
//! with one query, each command is decided on its own aggregate, and the events and writes of
//! every command the domain accepted commit atomically, or none of them does (the caller then
//! executes each command on its own, which reports each one's own conflict or guard).

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};

use super::aggregate_store::{envelopes, AggregateStore};
use super::guarded_commit::{self, CommitError, Write};
use super::held_connection::HeldConnection;
use super::state_cache::StateCache;
use super::{Backend, StoreError};

/// One command of a batch, with the writes that commit with its events.
#[derive(Debug)]
pub struct BatchCommand<A: Aggregate> {
    pub id: String,
    pub command: A::Command,
    pub writes: Vec<Write>,
}

/// What became of one command of a committed batch.
#[derive(Debug)]
pub enum BatchOutcome<A: Aggregate> {
    /// Decided and committed: its events (at least one) and its writes.
    Committed(Vec<EventEnvelope<A>>),
    /// The aggregate refused the command: nothing of it was written.
    Refused(A::Error),
    /// The command decided no event (a result the aggregate already has): nothing of it was
    /// written, its writes neither, so that the caller can tell a redelivery on its own.
    Unchanged,
}

/// Why a batch committed nothing.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Two commands of the batch are for the same aggregate (the caller keeps them apart).
    #[error("two commands of the batch are for aggregate {0}")]
    SameAggregate(String),
    /// A stored event could not be read.
    #[error("event {sequence} of {id} is unreadable: {error}")]
    Unreadable {
        id: String,
        sequence: i64,
        error: String,
    },
    /// The events could not be serialized.
    #[error("an event could not be serialized: {0}")]
    Serialize(String),
    /// The commit did not happen: a conflict, a guard, or the store (nothing was written).
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl From<StoreError> for BatchError {
    fn from(e: StoreError) -> Self {
        BatchError::Commit(CommitError::Store(e))
    }
}

/// `SELECT` of the events of `n` aggregates of one type, in aggregate and sequence order.
fn fold_sql(n: usize) -> String {
    let mut sql = String::from(
        "SELECT aggregate_id, sequence, CAST(payload AS TEXT) AS payload FROM events \
         WHERE aggregate_type = $1 AND aggregate_id IN (",
    );
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('$');
        sql.push_str(&(i + 2).to_string());
    }
    sql.push_str(") ORDER BY aggregate_id, sequence");
    sql
}

impl<A> AggregateStore<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
{
    fn backend(&self) -> Option<(&Backend, &StateCache<A>)> {
        match self {
            AggregateStore::Sqlite(_, b, c) | AggregateStore::Postgres(_, b, c) => Some((b, c)),
            AggregateStore::Memory(_) => None,
        }
    }

    /// Each aggregate's state and last sequence, folded from one query (on PostgreSQL over the
    /// connection `held` keeps).
    async fn fold_many(
        &self,
        ids: &[&str],
        held: &mut HeldConnection,
    ) -> Result<HashMap<String, (A, usize)>, BatchError> {
        let mut folded: HashMap<String, (A, usize)> = ids
            .iter()
            .map(|id| (id.to_string(), (A::default(), 0)))
            .collect();
        let Some((backend, _)) = self.backend() else {
            return Err(StoreError::Unsupported("batches").into());
        };
        let sql = fold_sql(ids.len());
        let sql = backend.statement(&sql);
        let rows: Vec<(String, i64, String)> = match backend {
            Backend::Sqlite(pool) => {
                let mut q = sqlx::query_as(&sql).bind(A::TYPE);
                for id in ids {
                    q = q.bind(*id);
                }
                q.fetch_all(pool).await.map_err(StoreError::from)?
            }
            Backend::Postgres(pool) => {
                let conn = held.get(pool).await.map_err(StoreError::from)?;
                let mut q = sqlx::query_as(&sql).bind(A::TYPE);
                for id in ids {
                    q = q.bind(*id);
                }
                let rows = q.fetch_all(conn).await;
                held.released_on_error(rows).map_err(StoreError::from)?
            }
        };
        for (id, sequence, payload) in rows {
            let event: A::Event =
                serde_json::from_str(&payload).map_err(|e| BatchError::Unreadable {
                    id: id.clone(),
                    sequence,
                    error: e.to_string(),
                })?;
            if let Some((a, last)) = folded.get_mut(&id) {
                a.apply(event);
                *last = usize::try_from(sequence).unwrap_or(0);
            }
        }
        Ok(folded)
    }

    /// Decides every command on its aggregate (folded together) and commits the events and
    /// writes of those that decided events in one transaction. The outcomes are in the
    /// commands' order. On an error nothing was committed.
    pub async fn execute_batch(
        &self,
        commands: Vec<BatchCommand<A>>,
        services: &A::Services,
    ) -> Result<Vec<BatchOutcome<A>>, BatchError> {
        self.execute_batch_held(commands, services, &mut HeldConnection::default())
            .await
    }

    /// [`Self::execute_batch`], on PostgreSQL over the connection `held` keeps (a committer
    /// that runs batch after batch saves the pool's check of each connection given back).
    pub async fn execute_batch_held(
        &self,
        commands: Vec<BatchCommand<A>>,
        services: &A::Services,
        held: &mut HeldConnection,
    ) -> Result<Vec<BatchOutcome<A>>, BatchError> {
        let mut ids: Vec<&str> = commands.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(BatchError::SameAggregate(w[0].to_string()));
        }
        let Some((backend, cache)) = self.backend() else {
            return Err(StoreError::Unsupported("batches").into());
        };
        // The states this process last committed, the others read with one query. (A stale
        // one makes the commit conflict; one that refuses or decides nothing is not taken at
        // its word: the caller tries those alone, on the stored state.)
        let mut folded = HashMap::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match cache.get(id) {
                Some(state) => {
                    folded.insert(id.to_string(), state);
                }
                None => unknown.push(id),
            }
        }
        if !unknown.is_empty() {
            folded.extend(self.fold_many(&unknown, held).await?);
        }
        let mut outcomes = Vec::with_capacity(commands.len());
        let mut serialized: Vec<SerializedEvent> = Vec::new();
        let mut writes: Vec<Write> = Vec::new();
        // Each committed aggregate's id, state after and last sequence, for the cache.
        let mut after = Vec::with_capacity(commands.len());
        for c in commands {
            let Some((mut aggregate, last)) = folded.remove(&c.id) else {
                return Err(BatchError::SameAggregate(c.id));
            };
            let sink = EventSink::default();
            if let Err(e) = aggregate.handle(c.command, services, &sink).await {
                outcomes.push(BatchOutcome::Refused(e));
                continue;
            }
            let events: Vec<EventEnvelope<A>> =
                envelopes(&c.id, last, sink.collect().await, &HashMap::new());
            if events.is_empty() {
                outcomes.push(BatchOutcome::Unchanged);
                continue;
            }
            for e in &events {
                serialized.push(
                    SerializedEvent::try_from(e)
                        .map_err(|e| BatchError::Serialize(e.to_string()))?,
                );
                aggregate.apply(e.payload.clone());
            }
            after.push((c.id, aggregate, last + events.len()));
            writes.extend(c.writes);
            outcomes.push(BatchOutcome::Committed(events));
        }
        // Each delivery's nonce and record are rows of their own tables: the commit writes each
        // kind of row with one statement.
        if !serialized.is_empty() || !writes.is_empty() {
            if let Err(e) = guarded_commit::commit_held(backend, held, &serialized, &writes).await {
                // A stale state (a conflict), or an outcome not known: read them again.
                for (id, ..) in &after {
                    cache.forget(id);
                }
                return Err(e.into());
            }
        }
        for (id, state, last) in after {
            cache.put(&id, state, last);
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_reads_every_aggregate_in_one_query() {
        assert_eq!(
            fold_sql(3),
            "SELECT aggregate_id, sequence, CAST(payload AS TEXT) AS payload FROM events \
             WHERE aggregate_type = $1 AND aggregate_id IN ($2, $3, $4) ORDER BY aggregate_id, sequence"
        );
    }
}
