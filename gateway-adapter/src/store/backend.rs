//! The database behind the store: an embedded SQLite file (the default) or PostgreSQL, chosen by
//! the store URL.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::StoreError;

/// How long a SQLite connection waits for the write lock before it reports the database busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL connection idle for this long is pinged before it is used again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against either pool: `on_pool!(backend, pool => expr)`. The SQL written
/// for both uses `$N` placeholders, which SQLite accepts too.
#[macro_export]
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}

impl Backend {
    /// `sql` (written with `$N` placeholders for both databases) as this database binds it
    /// fastest: on SQLite with anonymous placeholders where that is the same statement (see
    /// [`super::sqlite_placeholders`]).
    pub fn statement<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Backend::Sqlite(_) => super::sqlite_placeholders::anonymous(sql),
            Backend::Postgres(_) => std::borrow::Cow::Borrowed(sql),
        }
    }

    /// Connects to `url`: `sqlite://PATH` (created if missing; WAL, synchronous=FULL),
    /// `sqlite::memory:`, or `postgres://...` / `postgresql://...`. With `pg_schema`, every
    /// PostgreSQL connection works in that schema (created if missing): tests use it to share one
    /// database.
    pub async fn connect(url: &str, pg_schema: Option<&str>) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:");
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Connect(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(if memory {
                    SqliteJournalMode::Memory
                } else {
                    SqliteJournalMode::Wal
                })
                // FULL: a commit survives a power loss, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                // An in-memory database exists per connection: keep exactly one.
                .max_connections(if memory { 1 } else { 8 })
                .min_connections(if memory { 1 } else { 0 })
                .idle_timeout(None)
                .max_lifetime(None)
                // A connection to a file does not go away: sqlx's ping before every acquire
                // would only cost a hop to the connection's thread and back, per statement.
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        super::sqlite_busy::install(conn, BUSY_TIMEOUT)
                            .await
                            .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Backend::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Connect(e.to_string()))?;
            if let Some(schema) = pg_schema {
                if !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(StoreError::BadUrl(format!("schema {schema:?}")));
                }
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                options = options.options([("search_path", schema)]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                // sqlx pings a connection before every acquire by default: one more round trip
                // per statement. Only a connection idle for a while is pinged (a broken one is
                // dropped and another taken); a busy one is used at once, and if the server went
                // away within the last second the statement fails and its caller retries (a
                // request answers 5xx and is sent again; the worker's next round reads again).
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Backend::Postgres(pool))
        } else {
            Err(StoreError::BadUrl(url.to_string()))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}
