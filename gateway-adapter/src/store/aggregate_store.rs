//! One aggregate type's event store (sqlite-es, postgres-es, or the in-memory store) and the
//! command execution loop: load, decide, commit with optimistic concurrency, retry a bounded
//! number of times when another writer got there first.

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use super::guarded_commit::{self, CommitError, Write};
use super::memory::MemoryEventStore;
use super::state_cache::StateCache;
use super::Backend;

/// How many times a command is tried on optimistic-concurrency conflicts. Each conflict means
/// another writer committed, so progress is guaranteed; the bound covers dozens of concurrent
/// writers on one aggregate (far more than a webhook racing a status poll).
pub const MAX_CONFLICT_RETRIES: usize = 32;

/// Why a command was not executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    /// The aggregate refused the command (a business rule).
    #[error("{0}")]
    Refused(E),
    /// Other writers kept committing to the same aggregate.
    #[error("the aggregate kept changing under {0} attempts; try again")]
    Conflict(usize),
    /// The store failed.
    #[error("store error: {0}")]
    Store(String),
    /// A write that had to commit with the command's events found its row already there
    /// (see [`guarded_commit::Write::guard`]); nothing was committed.
    #[error("refused: {0}")]
    Guard(&'static str),
}

/// The event store of aggregate type `A`.
pub enum AggregateStore<A: Aggregate> {
    /// sqlite-es's store, the database it is over (for commits shared with other writes), and
    /// the states this process last committed.
    Sqlite(
        PersistedEventStore<SqliteEventRepository, A>,
        Backend,
        StateCache<A>,
    ),
    /// postgres-es's store, the database it is over, and the states this process last
    /// committed.
    Postgres(
        PersistedEventStore<PostgresEventRepository, A>,
        Backend,
        StateCache<A>,
    ),
    /// For tests: no database, so no writes can share a command's commit.
    Memory(MemoryEventStore<A>),
}

fn store_error<E: std::error::Error>(e: AggregateError<E>) -> ExecuteError<E> {
    match e {
        AggregateError::UserError(e) => ExecuteError::Refused(e),
        AggregateError::AggregateConflict => ExecuteError::Conflict(1),
        other => ExecuteError::Store(other.to_string()),
    }
}

impl<A> AggregateStore<A>
where
    A: Aggregate + Clone,
    A::Command: Clone + Send + Sync,
    A::Services: Sync,
{
    /// Every event of one aggregate, in order.
    pub async fn load_events(
        &self,
        id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, ExecuteError<A::Error>> {
        let r = match self {
            AggregateStore::Sqlite(s, ..) => s.load_events(id).await,
            AggregateStore::Postgres(s, ..) => s.load_events(id).await,
            AggregateStore::Memory(s) => s.load_events(id).await,
        };
        r.map_err(store_error)
    }

    /// The aggregate's current state (default when it has no event) and its number of events.
    pub async fn load(&self, id: &str) -> Result<(A, usize), ExecuteError<A::Error>> {
        if !matches!(self, AggregateStore::Memory(_)) {
            return self.fold(id).await;
        }
        let events = self.load_events(id).await?;
        let mut a = A::default();
        let n = events.len();
        for e in events {
            a.apply(e.payload);
        }
        Ok((a, n))
    }

    /// Executes `command` on aggregate `id`: returns the committed events (none when the
    /// command changes nothing).
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, ExecuteError<A::Error>> {
        self.execute_with(id, command, services, metadata, &[])
            .await
    }

    /// The aggregate's state and its last sequence, folded straight from the stored JSON (one
    /// parse per event; cqrs-es's repositories go through a `serde_json::Value` first).
    async fn fold(&self, id: &str) -> Result<(A, usize), ExecuteError<A::Error>> {
        const SQL: &str = "SELECT sequence, CAST(payload AS TEXT) AS payload FROM events \
            WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";
        let rows: Vec<(i64, String)> = match self {
            AggregateStore::Sqlite(_, backend, _) | AggregateStore::Postgres(_, backend, _) => {
                crate::on_pool!(backend, pool => {
                    sqlx::query_as(SQL)
                        .bind(A::TYPE)
                        .bind(id)
                        .fetch_all(pool)
                        .await
                        .map_err(|e| ExecuteError::Store(e.to_string()))?
                })
            }
            AggregateStore::Memory(_) => return Box::pin(self.load(id)).await,
        };
        let mut a = A::default();
        let mut last = 0;
        for (sequence, payload) in rows {
            let event: A::Event = serde_json::from_str(&payload).map_err(|e| {
                ExecuteError::Store(format!("event {sequence} of {id} is unreadable: {e}"))
            })?;
            a.apply(event);
            last = usize::try_from(sequence).unwrap_or(0);
        }
        Ok((a, last))
    }

    /// Like [`execute`](Self::execute), with `writes` committed in the same transaction as the
    /// events (also when the command commits no event). The in-memory store has no database to
    /// commit other rows with: it refuses writes.
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: HashMap<String, String>,
        writes: &[Write],
    ) -> Result<Vec<EventEnvelope<A>>, ExecuteError<A::Error>> {
        let no_more = |_: &A, _: &[EventEnvelope<A>]| Vec::new();
        self.execute_deriving(id, command, services, metadata, writes, no_more, None)
            .await
            .map(|c| c.events)
    }

    /// Like [`execute_with`](Self::execute_with), with more writes derived from the events the
    /// command decided and the state it decided them on (`derive` runs once per attempt): the
    /// outbox claims of the follow-ups the caller is about to run itself. With `known` (the
    /// aggregate and its last sequence, as the caller last committed it) the first attempt
    /// decides on it without reading: if another writer committed since, the commit conflicts
    /// and the next attempt reads.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_deriving<F>(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: HashMap<String, String>,
        writes: &[Write],
        derive: F,
        mut known: Option<(A, usize)>,
    ) -> Result<Committed<A>, ExecuteError<A::Error>>
    where
        F: Fn(&A, &[EventEnvelope<A>]) -> Vec<Write>,
    {
        let (backend, cache) = match self {
            AggregateStore::Sqlite(_, b, c) | AggregateStore::Postgres(_, b, c) => (b, c),
            AggregateStore::Memory(s) => {
                let (before, _) = self.load(id).await?;
                let events = execute_in_memory(s, id, command, services, &metadata).await?;
                if !writes.is_empty() || !derive(&before, &events).is_empty() {
                    return Err(ExecuteError::Store(
                        "the in-memory store has no database to commit other rows with".into(),
                    ));
                }
                return Ok(Committed { before, events });
            }
        };
        // Once a guess (the caller's `known`, or the cache) has failed, the stored state.
        let mut from_store = false;
        for _ in 0..MAX_CONFLICT_RETRIES {
            // `handle` takes `&mut self` in cqrs-es; the aggregates here decide without changing.
            let guess = match known.take() {
                Some(k) => Some(k),
                None if from_store => None,
                None => cache.get(id),
            };
            let guessed = guess.is_some();
            let (mut before, current) = match guess {
                Some(k) => k,
                None => self.fold(id).await?,
            };
            let sink = EventSink::default();
            if let Err(e) = before.handle(command.clone(), services, &sink).await {
                if guessed {
                    // The guess may be stale: the stored state decides the refusal.
                    from_store = true;
                    continue;
                }
                return Err(ExecuteError::Refused(e));
            }
            let events = envelopes(id, current, sink.collect().await, &metadata);
            if events.is_empty() && guessed {
                // Nothing to do on the guess: the stored state says whether that is so.
                from_store = true;
                continue;
            }
            let serialized = events
                .iter()
                .map(SerializedEvent::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ExecuteError::Store(e.to_string()))?;
            let mut all = writes.to_vec();
            all.extend(derive(&before, &events));
            match guarded_commit::commit(backend, &serialized, &all).await {
                Ok(()) => {
                    let committed = Committed { before, events };
                    cache.put(id, committed.after(), current + committed.events.len());
                    return Ok(committed);
                }
                Err(CommitError::Conflict) => {
                    cache.forget(id);
                    from_store = true;
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(e) => {
                    cache.forget(id);
                    return Err(commit_error(e));
                }
            }
        }
        Err(ExecuteError::Conflict(MAX_CONFLICT_RETRIES))
    }
}

/// The events a command decided on aggregate `id`, numbered after its last sequence `last`.
pub(super) fn envelopes<A: Aggregate>(
    id: &str,
    last: usize,
    payloads: Vec<A::Event>,
    metadata: &HashMap<String, String>,
) -> Vec<EventEnvelope<A>> {
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| EventEnvelope {
            aggregate_id: id.to_string(),
            sequence: last + i + 1,
            payload,
            metadata: metadata.clone(),
        })
        .collect()
}

/// What a command committed, and the state it was decided on.
#[derive(Debug, Clone)]
pub struct Committed<A: Aggregate> {
    /// The aggregate just before the events.
    pub before: A,
    /// The committed events, in order.
    pub events: Vec<EventEnvelope<A>>,
}

impl<A: Aggregate + Clone> Committed<A> {
    /// The aggregate after the events.
    pub fn after(&self) -> A {
        let mut a = self.before.clone();
        for e in &self.events {
            a.apply(e.payload.clone());
        }
        a
    }
}

fn commit_error<E: std::error::Error>(e: CommitError) -> ExecuteError<E> {
    match e {
        CommitError::Conflict => ExecuteError::Conflict(1),
        CommitError::Guard(reason) => ExecuteError::Guard(reason),
        CommitError::Store(e) => ExecuteError::Store(e.to_string()),
    }
}

async fn execute_in_memory<A>(
    store: &MemoryEventStore<A>,
    id: &str,
    command: A::Command,
    services: &A::Services,
    metadata: &HashMap<String, String>,
) -> Result<Vec<EventEnvelope<A>>, ExecuteError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone,
{
    for _ in 0..MAX_CONFLICT_RETRIES {
        match once(store, id, command.clone(), services, metadata).await {
            Err(AggregateError::AggregateConflict) => {
                tokio::task::yield_now().await;
                continue;
            }
            other => return other.map_err(store_error),
        }
    }
    Err(ExecuteError::Conflict(MAX_CONFLICT_RETRIES))
}

async fn once<A, S>(
    store: &S,
    id: &str,
    command: A::Command,
    services: &A::Services,
    metadata: &HashMap<String, String>,
) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>
where
    A: Aggregate,
    S: EventStore<A>,
{
    let mut context = store.load_aggregate(id).await?;
    let sink = EventSink::default();
    context
        .aggregate()
        .handle(command, services, &sink)
        .await
        .map_err(AggregateError::UserError)?;
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    store.commit(events, context, metadata.clone()).await
}
