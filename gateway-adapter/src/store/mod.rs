//! Persistence: the event stores of both aggregates (SQLite through sqlite-es as the embedded
//! default, PostgreSQL through postgres-es), the ordered log of every committed event, the
//! checkpoints, the outbox that drives effects and timers, the projections, and the webhook
//! bookkeeping. See `docs/architecture.md` for why nothing is lost or doubled.

pub(crate) mod aggregate_at;
mod aggregate_batch;
mod aggregate_store;
mod backend;
pub mod card_ledger;
pub mod checkpointed;
pub mod console;
pub mod console_view;
mod error;
pub mod event_log;
pub mod guarded_commit;
pub mod held_connection;
pub mod memory;
pub mod migrations;
pub mod outbox;
mod pg_row_arrays;
pub mod projection;
pub mod read_model;
pub mod sqlite_busy;
pub mod sqlite_placeholders;
pub mod state_cache;
pub mod webhook_book;

pub use aggregate_batch::{BatchCommand, BatchError, BatchOutcome};
pub use aggregate_store::{AggregateStore, Committed, ExecuteError, MAX_CONFLICT_RETRIES};
pub use backend::Backend;
pub use error::StoreError;
pub use event_log::LogEntry;

use cqrs_es::persist::PersistedEventStore;
use postgres_es::PostgresEventRepository;
use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;
use sqlite_es::SqliteEventRepository;
use state_cache::StateCache;

/// The store: one database, both aggregates' event stores over it.
pub struct Store {
    pub backend: Backend,
    pub orders: AggregateStore<Order>,
    pub subscriptions: AggregateStore<Subscription>,
}

impl Store {
    /// Opens the store at `url` and migrates its schema.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_in_schema(url, None).await
    }

    /// Opens the store with every PostgreSQL connection in `pg_schema` (ignored for SQLite).
    pub async fn open_in_schema(url: &str, pg_schema: Option<&str>) -> Result<Store, StoreError> {
        let backend = Backend::connect(url, pg_schema).await?;
        migrations::migrate(&backend).await?;
        Ok(Self::over(backend))
    }

    /// The store over a database whose schema is already migrated (or deliberately not: tests
    /// of an upgrade).
    pub fn over(backend: Backend) -> Store {
        let (orders, subscriptions) = match &backend {
            Backend::Sqlite(pool) => (
                AggregateStore::Sqlite(
                    PersistedEventStore::new_event_store(SqliteEventRepository::new(pool.clone())),
                    backend.clone(),
                    StateCache::new(state_cache::CAPACITY),
                ),
                AggregateStore::Sqlite(
                    PersistedEventStore::new_event_store(SqliteEventRepository::new(pool.clone())),
                    backend.clone(),
                    StateCache::new(state_cache::CAPACITY),
                ),
            ),
            Backend::Postgres(pool) => (
                AggregateStore::Postgres(
                    PersistedEventStore::new_event_store(PostgresEventRepository::new(
                        pool.clone(),
                    )),
                    backend.clone(),
                    StateCache::new(state_cache::CAPACITY),
                ),
                AggregateStore::Postgres(
                    PersistedEventStore::new_event_store(PostgresEventRepository::new(
                        pool.clone(),
                    )),
                    backend.clone(),
                    StateCache::new(state_cache::CAPACITY),
                ),
            ),
        };
        Store {
            backend,
            orders,
            subscriptions,
        }
    }

    /// Whether the store answers and its schema is the one this build expects (`/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.backend.ping().await?;
        let v = migrations::current_version(&self.backend).await?;
        if v < migrations::latest_version() {
            return Err(StoreError::Corrupt(format!(
                "schema version {v}, expected {}",
                migrations::latest_version()
            )));
        }
        Ok(())
    }
}
