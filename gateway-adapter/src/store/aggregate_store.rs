//! One aggregate type's event store (sqlite-es, postgres-es, or the in-memory store) and the
//! command execution loop: load, decide, commit with optimistic concurrency, retry a bounded
//! number of times when another writer got there first.

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use super::memory::MemoryEventStore;

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
}

/// The event store of aggregate type `A`.
pub enum AggregateStore<A: Aggregate> {
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
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
    A: Aggregate,
    A::Command: Clone + Send + Sync,
    A::Services: Sync,
{
    /// Every event of one aggregate, in order.
    pub async fn load_events(
        &self,
        id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, ExecuteError<A::Error>> {
        let r = match self {
            AggregateStore::Sqlite(s) => s.load_events(id).await,
            AggregateStore::Postgres(s) => s.load_events(id).await,
            AggregateStore::Memory(s) => s.load_events(id).await,
        };
        r.map_err(store_error)
    }

    /// The aggregate's current state (default when it has no event).
    pub async fn load(&self, id: &str) -> Result<(A, usize), ExecuteError<A::Error>> {
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
        for _ in 0..MAX_CONFLICT_RETRIES {
            let r = match self {
                AggregateStore::Sqlite(s) => {
                    once(s, id, command.clone(), services, &metadata).await
                }
                AggregateStore::Postgres(s) => {
                    once(s, id, command.clone(), services, &metadata).await
                }
                AggregateStore::Memory(s) => {
                    once(s, id, command.clone(), services, &metadata).await
                }
            };
            match r {
                Err(AggregateError::AggregateConflict) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                other => return other.map_err(store_error),
            }
        }
        Err(ExecuteError::Conflict(MAX_CONFLICT_RETRIES))
    }
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
