//! The outbox: every follow-up of a committed event (a command to another aggregate, an effect
//! such as a FlexFactor call, a charge or a CRM notification, or either at a later time) becomes
//! one row with a stable key, written in the same transaction that advances the dispatcher's
//! checkpoint. Workers claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
//! each row is executed by one process at a time; a crashed worker's lease expires and another
//! takes the row over, under the same key.

use sqlx::Row;

use super::guarded_commit::{Bind, Write};
use super::{Backend, StoreError};

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Stable: `{aggregate type}:{aggregate id}:{sequence}:{index}` of the event that caused it.
    pub key: String,
    /// `order`, `subscription` (a command) or `effect`.
    pub kind: String,
    /// The JSON of the domain `FollowUp`.
    pub payload: String,
    pub due_at: i64,
    /// How many times it has been claimed (this claim included).
    pub attempts: i64,
}

/// Counts of the outbox by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub due: i64,
    pub done: i64,
    pub failed: i64,
}

const CLAIM_PG: &str = "
UPDATE salvage_outbox SET lease_until = $1, attempts = attempts + 1
 WHERE key IN (SELECT key FROM salvage_outbox
                WHERE state = 'pending' AND due_at <= $2
                  AND (lease_until IS NULL OR lease_until < $2)
                ORDER BY due_at, source_position, key
                LIMIT $3
                FOR UPDATE SKIP LOCKED)
RETURNING key, kind, payload, due_at, attempts, source_position";

const CLAIM_SQLITE: &str = "
UPDATE salvage_outbox SET lease_until = $1, attempts = attempts + 1
 WHERE key IN (SELECT key FROM salvage_outbox
                WHERE state = 'pending' AND due_at <= $2
                  AND (lease_until IS NULL OR lease_until < $2)
                ORDER BY due_at, source_position, key
                LIMIT $3)
RETURNING key, kind, payload, due_at, attempts, source_position";

/// Claims at most `limit` rows due at `now` (milliseconds since the epoch, from the Clock),
/// leased until `lease_until`.
pub async fn claim_due(
    backend: &Backend,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    // A read first: an idle round takes no write lock (SQLite has one writer at a time).
    let due: bool = crate::on_pool!(backend, pool => {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM salvage_outbox WHERE state = 'pending' AND due_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1))",
        )
        .bind(now)
        .fetch_one(pool)
        .await?
    });
    if !due {
        return Ok(Vec::new());
    }
    let rows = match backend {
        Backend::Postgres(pool) => sqlx::query(CLAIM_PG)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(item)
            .collect::<Result<Vec<_>, _>>()?,
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let items = sqlx::query(CLAIM_SQLITE)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(item)
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            items
        }
    };
    let mut rows = rows;
    rows.sort_by(|a, b| (a.0.due_at, a.1, &a.0.key).cmp(&(b.0.due_at, b.1, &b.0.key)));
    Ok(rows.into_iter().map(|(i, _)| i).collect())
}

fn item<R: Row>(r: &R) -> Result<(OutboxItem, i64), sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let attempts: i64 = match r.try_get::<i64, _>("attempts") {
        Ok(v) => v,
        Err(_) => i64::from(r.try_get::<i32, _>("attempts")?),
    };
    Ok((
        OutboxItem {
            key: r.try_get("key")?,
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            due_at: r.try_get("due_at")?,
            attempts,
        },
        r.try_get("source_position")?,
    ))
}

/// Marks a row done.
pub async fn complete(backend: &Backend, key: &str, now: i64) -> Result<(), StoreError> {
    crate::on_pool!(backend, pool => {
        sqlx::query(COMPLETE)
            .bind(now)
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Marks the rows `keys` done, in one statement.
pub async fn complete_many(backend: &Backend, keys: &[String], now: i64) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE salvage_outbox SET state = 'done', done_at = $1, lease_until = NULL \
         WHERE key IN ({})",
        super::checkpointed::placeholders_from(2, keys.len())
    );
    let sql = backend.statement(&sql);
    crate::on_pool!(backend, pool => {
        let mut q = sqlx::query(&sql).bind(now);
        for k in keys {
            q = q.bind(k.as_str());
        }
        q.execute(pool).await?;
    });
    Ok(())
}

/// Puts a row back, due again at `due_at`, noting why.
pub async fn reschedule(
    backend: &Backend,
    key: &str,
    due_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    crate::on_pool!(backend, pool => {
        sqlx::query("UPDATE salvage_outbox SET due_at = $1, lease_until = NULL, last_error = $2 WHERE key = $3")
            .bind(due_at)
            .bind(error)
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Marks a row failed for good (kept for operators; see the runbook).
pub async fn fail(backend: &Backend, key: &str, now: i64, error: &str) -> Result<(), StoreError> {
    crate::on_pool!(backend, pool => {
        sqlx::query(FAIL)
            .bind(now)
            .bind(error)
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Counts by state; `due` counts pending rows due at `now`.
pub async fn stats(backend: &Backend, now: i64) -> Result<OutboxStats, StoreError> {
    let sql = "SELECT
        COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
        COALESCE(SUM(CASE WHEN state = 'pending' AND due_at <= $1 THEN 1 ELSE 0 END), 0) AS due,
        COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0) AS done,
        COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed
      FROM salvage_outbox";
    let s = crate::on_pool!(backend, pool => {
        let r = sqlx::query(sql).bind(now).fetch_one(pool).await?;
        OutboxStats {
            pending: r.try_get("pending")?,
            due: r.try_get("due")?,
            done: r.try_get("done")?,
            failed: r.try_get("failed")?,
        }
    });
    Ok(s)
}

/// The earliest due time of a pending row, if any (the scheduler sleeps until then).
pub async fn next_due(backend: &Backend) -> Result<Option<i64>, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT MIN(due_at) FROM salvage_outbox WHERE state = 'pending'")
            .fetch_one(pool)
            .await?
    });
    Ok(v)
}

/// One row by key: (state, attempts, last_error), for tests and operators.
pub async fn row_state(
    backend: &Backend,
    key: &str,
) -> Result<Option<(String, i64, Option<String>)>, StoreError> {
    let v = crate::on_pool!(backend, pool => {
        match sqlx::query("SELECT state, attempts, last_error FROM salvage_outbox WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
        {
            None => None,
            Some(r) => {
                let attempts: i64 = match r.try_get::<i64, _>("attempts") {
                    Ok(v) => v,
                    Err(_) => i64::from(r.try_get::<i32, _>("attempts")?),
                };
                Some((r.try_get("state")?, attempts, r.try_get("last_error")?))
            }
        }
    });
    Ok(v)
}

/// Claims a row that does not exist yet (the request path running a follow-up at once, under
/// the key the dispatcher would give it). False when the row exists: someone else owns it.
const INSERT_CLAIMED: &str = "INSERT INTO salvage_outbox \
    (key, kind, payload, due_at, source_position, created_at, lease_until, attempts) \
    VALUES ($1, $2, $3, $4, 0, $4, $5, 1) ON CONFLICT (key) DO NOTHING";
const INSERT_DONE: &str = "INSERT INTO salvage_outbox \
    (key, kind, payload, due_at, source_position, created_at, state, attempts, done_at) \
    VALUES ($1, $2, $3, $4, 0, $4, 'done', 1, $4) ON CONFLICT (key) DO NOTHING";
const INSERT_FAILED: &str = "INSERT INTO salvage_outbox \
    (key, kind, payload, due_at, source_position, created_at, state, attempts, done_at, last_error) \
    VALUES ($1, $2, $3, $4, 0, $4, 'failed', 1, $4, $5) ON CONFLICT (key) DO NOTHING";
const COMPLETE: &str =
    "UPDATE salvage_outbox SET state = 'done', done_at = $1, lease_until = NULL WHERE key = $2";
const FAIL: &str = "UPDATE salvage_outbox SET state = 'failed', done_at = $1, lease_until = NULL, \
    last_error = $2 WHERE key = $3";

/// Why a guarded outbox write refused: the row is there already (the dispatcher wrote it, or
/// another worker holds it).
pub const HELD_ELSEWHERE: &str = "the outbox row exists already";

/// [`claim_new`] as a write committed with the events that cause the row (see
/// `store::guarded_commit`): the caller runs the follow-up itself, once those events commit.
pub fn claim_write(key: &str, kind: &str, payload: &str, now: i64, lease_until: i64) -> Write {
    Write {
        sql: INSERT_CLAIMED.into(),
        binds: vec![
            Bind::Text(key.to_string()),
            Bind::Text(kind.to_string()),
            Bind::Text(payload.to_string()),
            Bind::Int(now),
            Bind::Int(lease_until),
        ],
        guard: Some(HELD_ELSEWHERE),
        rows: 1,
    }
}

/// The row `key` written as done, committed with the command it stands for: a follow-up
/// command run at once leaves its row done in the same transaction; refused when the row exists.
pub fn done_write(key: &str, kind: &str, payload: &str, now: i64) -> Write {
    Write {
        sql: INSERT_DONE.into(),
        binds: vec![
            Bind::Text(key.to_string()),
            Bind::Text(kind.to_string()),
            Bind::Text(payload.to_string()),
            Bind::Int(now),
        ],
        guard: Some(HELD_ELSEWHERE),
        rows: 1,
    }
}

/// The row `key` written as failed with `error` (a follow-up run at once and refused for good);
/// refused when the row exists, like [`done_write`].
pub fn failed_write(key: &str, kind: &str, payload: &str, now: i64, error: &str) -> Write {
    Write {
        sql: INSERT_FAILED.into(),
        binds: vec![
            Bind::Text(key.to_string()),
            Bind::Text(kind.to_string()),
            Bind::Text(payload.to_string()),
            Bind::Int(now),
            Bind::Text(error.to_string()),
        ],
        guard: Some(HELD_ELSEWHERE),
        rows: 1,
    }
}

/// [`fail`] as a write.
pub fn fail_write(key: &str, now: i64, error: &str) -> Write {
    Write {
        sql: FAIL.into(),
        binds: vec![
            Bind::Int(now),
            Bind::Text(error.to_string()),
            Bind::Text(key.to_string()),
        ],
        guard: None,
        rows: 1,
    }
}

/// [`complete`] as a write committed with the command the row's effect led to.
pub fn complete_write(key: &str, now: i64) -> Write {
    Write {
        sql: COMPLETE.into(),
        binds: vec![Bind::Int(now), Bind::Text(key.to_string())],
        guard: None,
        rows: 1,
    }
}

pub async fn claim_new(
    backend: &Backend,
    key: &str,
    kind: &str,
    payload: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let n = crate::on_pool!(backend, pool => {
        sqlx::query(INSERT_CLAIMED)
            .bind(key)
            .bind(kind)
            .bind(payload)
            .bind(now)
            .bind(lease_until)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Claims the row `key` for the caller: inserts it leased, or takes over the existing row when
/// it is pending and not leased (the dispatcher wrote it first). False when another worker holds
/// it or it is done.
pub async fn claim_key(
    backend: &Backend,
    key: &str,
    kind: &str,
    payload: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    if claim_new(backend, key, kind, payload, now, lease_until).await? {
        return Ok(true);
    }
    let n = crate::on_pool!(backend, pool => {
        sqlx::query("UPDATE salvage_outbox SET lease_until = $1, attempts = attempts + 1
                     WHERE key = $2 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3)")
            .bind(lease_until)
            .bind(key)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}
