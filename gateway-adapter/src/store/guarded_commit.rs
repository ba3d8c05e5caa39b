//! A command's events committed together with other writes, in one transaction: the webhook's
//! nonce and delivery record (W2, O7) commit with the result they carry, or none of them does.
//!
//! The events are written to the same `events` table, in the same format, as sqlite-es and
//! postgres-es write them (cqrs-es's `SerializedEvent`), so their repositories load them as
//! their own; the ordered log picks them up the same way (the SQLite trigger, PostgreSQL's
//! column defaults). A primary-key violation on an event is the optimistic-concurrency conflict
//! the repositories report too.

use cqrs_es::persist::SerializedEvent;

use super::{Backend, StoreError};

/// A value bound to a [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

/// One statement committed with a command's events.
#[derive(Debug, Clone)]
pub struct Write {
    /// SQL with `$N` placeholders (both backends accept them).
    pub sql: &'static str,
    pub binds: Vec<Bind>,
    /// When set, the statement must change exactly one row, or the whole transaction is rolled
    /// back and [`CommitError::Guard`] names this reason (an `INSERT ... ON CONFLICT DO NOTHING`
    /// that found the row already there: a replayed nonce, a delivery already recorded).
    pub guard: Option<&'static str>,
}

/// Why a guarded commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another writer committed an event of the same aggregate first.
    #[error("another writer committed to the aggregate first")]
    Conflict,
    /// A guarded write changed no row; nothing was committed.
    #[error("refused: {0}")]
    Guard(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `INSERT INTO events ... VALUES (...), (...)` for `n` events: one statement, so one round trip,
/// and atomic on its own.
fn insert_events_sql(n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events \
         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ",
    );
    for i in 0..n {
        let b = i * 7;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7
        ));
    }
    sql
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            // PostgreSQL unique_violation; SQLite PRIMARYKEY and UNIQUE constraint codes.
            Some("23505") | Some("1555") | Some("2067")
        ),
        _ => false,
    }
}

macro_rules! run_in {
    ($tx:ident, $events:expr, $writes:expr) => {{
        for w in $writes {
            let mut q = sqlx::query(w.sql);
            for b in &w.binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.as_str()),
                    Bind::OptText(s) => q.bind(s.as_deref()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            let changed = q
                .execute(&mut *$tx)
                .await
                .map_err(|e| CommitError::Store(e.into()))?
                .rows_affected();
            if let Some(reason) = w.guard {
                if changed != 1 {
                    return Err(CommitError::Guard(reason));
                }
            }
        }
        let events: &[SerializedEvent] = $events;
        if !events.is_empty() {
            let sql = insert_events_sql(events.len());
            let mut q = sqlx::query(&sql);
            for e in events {
                q = q
                    .bind(e.aggregate_type.as_str())
                    .bind(e.aggregate_id.as_str())
                    .bind(i64::try_from(e.sequence).unwrap_or(i64::MAX))
                    .bind(e.event_type.as_str())
                    .bind(e.event_version.as_str())
                    .bind(&e.payload)
                    .bind(&e.metadata);
            }
            match q.execute(&mut *$tx).await {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(CommitError::Conflict),
                Err(err) => return Err(CommitError::Store(err.into())),
            }
        }
        Ok::<(), CommitError>(())
    }};
}

/// Commits `writes` (first, in order) and `events` in one transaction. Rolled back entirely on a
/// failed guard or a conflict.
pub async fn commit(
    backend: &Backend,
    events: &[SerializedEvent],
    writes: &[Write],
) -> Result<(), CommitError> {
    if writes.is_empty() {
        // One statement: atomic without a transaction around it, and one round trip.
        return crate::on_pool!(backend, pool => {
            let mut conn = pool.acquire().await.map_err(|e| CommitError::Store(e.into()))?;
            run_in!(conn, events, writes)
        });
    }
    match backend {
        Backend::Sqlite(pool) => {
            let mut tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
            run_in!(tx, events, writes)?;
            tx.commit()
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
        }
        Backend::Postgres(pool) => {
            let mut tx = pool
                .begin()
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
            run_in!(tx, events, writes)?;
            tx.commit()
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
        }
    }
    Ok(())
}
