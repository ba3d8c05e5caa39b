//! A command's events committed together with other writes, in one transaction: the webhook's
//! nonce and delivery record (W2, O7) commit with the result they carry, or none of them does.
//!
//! The events are written to the same `events` table, in the same format, as sqlite-es and
//! postgres-es write them (cqrs-es's `SerializedEvent`), so their repositories load them as
//! their own; the ordered log picks them up the same way (the SQLite trigger, PostgreSQL's
//! column defaults). A primary-key violation on an event is the optimistic-concurrency conflict
//! the repositories report too.

use std::borrow::Cow;

use cqrs_es::persist::SerializedEvent;

use super::held_connection::HeldConnection;
use super::pg_row_arrays::{self, Column};
use super::{Backend, StoreError};

/// A value bound to a [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// One statement committed with a command's events.
#[derive(Debug, Clone)]
pub struct Write {
    /// SQL with `$N` placeholders (both backends accept them): a constant, or built for a batch
    /// of rows.
    pub sql: Cow<'static, str>,
    pub binds: Vec<Bind>,
    /// When set, the statement must change exactly one row, or the whole transaction is rolled
    /// back and [`CommitError::Guard`] names this reason (an `INSERT ... ON CONFLICT DO NOTHING`
    /// that found the row already there: a replayed nonce, a delivery already recorded).
    pub guard: Option<&'static str>,
    /// How many rows a guarded write must change: 1, or the rows of writes merged into one
    /// (see [`merge_rows`]).
    pub rows: u64,
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
    insert_events_sql_from(0, n)
}

/// [`insert_events_sql`] with its placeholders numbered from `offset + 1`.
fn insert_events_sql_from(offset: usize, n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events \
         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ",
    );
    for i in 0..n {
        let b = offset + i * 7;
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

/// Binds the seven columns of each event, in [`insert_events_sql`]'s order.
macro_rules! bind_events {
    ($q:expr, $events:expr) => {{
        let mut q = $q;
        for e in $events {
            q = q
                .bind(e.aggregate_type.as_str())
                .bind(e.aggregate_id.as_str())
                .bind(i64::try_from(e.sequence).unwrap_or(i64::MAX))
                .bind(e.event_type.as_str())
                .bind(e.event_version.as_str())
                .bind(&e.payload)
                .bind(&e.metadata);
        }
        q
    }};
}

/// Binds each [`Bind`] of a slice, in order.
macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind(s.as_str()),
                Bind::OptText(s) => q.bind(s.as_deref()),
                Bind::Int(i) => q.bind(*i),
                Bind::OptInt(i) => q.bind(*i),
            };
        }
        q
    }};
}

macro_rules! run_in {
    ($tx:ident, $events:expr, $writes:expr, $backend:expr) => {{
        for w in $writes {
            let sql = $backend.statement(&w.sql);
            let q = bind_all!(sqlx::query(&sql), &w.binds);
            let changed = q
                .execute(&mut *$tx)
                .await
                .map_err(|e| CommitError::Store(e.into()))?
                .rows_affected();
            if let Some(reason) = w.guard {
                if changed != w.rows {
                    return Err(CommitError::Guard(reason));
                }
            }
        }
        let events: &[SerializedEvent] = $events;
        if !events.is_empty() {
            let sql = insert_events_sql(events.len());
            let sql = $backend.statement(&sql);
            let q = bind_events!(sqlx::query(&sql), events);
            match q.execute(&mut *$tx).await {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(CommitError::Conflict),
                Err(err) => return Err(CommitError::Store(err.into())),
            }
        }
        Ok::<(), CommitError>(())
    }};
}

/// Commits `writes` (first, in order) and `events` atomically. Rolled back entirely on a failed
/// guard or a conflict.
pub async fn commit(
    backend: &Backend,
    events: &[SerializedEvent],
    writes: &[Write],
) -> Result<(), CommitError> {
    match backend {
        Backend::Sqlite(pool) if writes.is_empty() => {
            // One statement: atomic without a transaction around it, and one round trip.
            let mut conn = pool
                .acquire()
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
            run_in!(conn, events, writes, backend)?;
        }
        Backend::Sqlite(pool) => {
            let mut tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
            // Each kind of row in one statement: fewer statements to step through (a batch's;
            // one delivery's nonce and record are of two kinds).
            let merged;
            let writes = if writes.len() > 2 {
                merged = merge_rows(writes.to_vec());
                &merged[..]
            } else {
                writes
            };
            run_in!(tx, events, writes, backend)?;
            tx.commit()
                .await
                .map_err(|e| CommitError::Store(e.into()))?;
        }
        Backend::Postgres(pool) => commit_in_one_statement(pool, events, writes).await?,
    }
    Ok(())
}

/// [`commit`], on PostgreSQL over the connection `held` keeps (see [`HeldConnection`]).
pub async fn commit_held(
    backend: &Backend,
    held: &mut HeldConnection,
    events: &[SerializedEvent],
    writes: &[Write],
) -> Result<(), CommitError> {
    let Backend::Postgres(pool) = backend else {
        return commit(backend, events, writes).await;
    };
    let conn = held
        .get(pool)
        .await
        .map_err(|e| CommitError::Store(e.into()))?;
    let result = commit_in_one_statement(conn, events, writes).await;
    if matches!(result, Err(CommitError::Store(_))) {
        held.release();
    }
    result
}

/// Single-row inserts that do not depend on one another (a group commit's nonces and delivery
/// records) merged into multi-row ones: the writes of the same statement and guard, each an
/// `INSERT ... VALUES ($1, ..., $k) [tail]` of one row, become one statement of all their rows
/// whose guard requires every row. One statement per kind of row rather than one per row, on
/// SQLite (PostgreSQL binds them as arrays, see [`pg_row_arrays`]). The writes are grouped by
/// statement, in the order each statement first appears; a write of any other form is kept as
/// it is, after them.
fn merge_rows(writes: Vec<Write>) -> Vec<Write> {
    // (head, tuple, tail, guard) of each group, with its binds and rows.
    let mut groups: Vec<(String, Write)> = Vec::new();
    let mut others = Vec::new();
    for w in writes {
        let Some((head, tuple, tail)) = single_row(&w.sql) else {
            others.push(w);
            continue;
        };
        let key = format!("{head}\u{0}{tuple}\u{0}{tail}");
        match groups
            .iter_mut()
            .find(|(k, g)| *k == key && g.guard == w.guard)
        {
            Some((_, g)) => {
                let offset = g.binds.len();
                let mut sql = g.sql.to_string();
                let insert_at = sql.len() - tail.len();
                sql.insert_str(insert_at, &format!(", {}", renumber(tuple, offset)));
                g.sql = sql.into();
                g.binds.extend(w.binds);
                g.rows += w.rows;
            }
            None => groups.push((key, w)),
        }
    }
    groups.into_iter().map(|(_, w)| w).chain(others).collect()
}

/// `INSERT ... VALUES (tuple) tail` of one row whose tuple holds only `$1..$k` in order (and the
/// tail no placeholder): its head (up to `VALUES `), tuple and tail.
pub(super) fn single_row(sql: &str) -> Option<(&str, &str, &str)> {
    if !sql.trim_start().starts_with("INSERT INTO") {
        return None;
    }
    let v = sql.find(" VALUES (")? + " VALUES ".len();
    let close = v + sql[v..].find(')')? + 1;
    let (head, tuple, tail) = (&sql[..v], &sql[v..close], &sql[close..]);
    let inner = &tuple[1..tuple.len() - 1];
    for (expected, part) in (1..).zip(inner.split(',')) {
        let n: usize = part.trim().strip_prefix('$')?.parse().ok()?;
        if n != expected {
            return None;
        }
    }
    if tail.contains('$') || head.contains('$') || tail.trim_start().starts_with(',') {
        return None;
    }
    Some((head, tuple, tail))
}

/// The SQLSTATE `salvage_guard` (migration 7) raises when a guarded write changed no row.
const GUARD_SQLSTATE: &str = "SG001";

/// `sql` with every placeholder `$k` renumbered `$(k + offset)`.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(k) => out.push_str(&(k + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// PostgreSQL: the writes and the events as one statement of data-modifying CTEs, so one round
/// trip, atomic without a transaction around it. A guarded write that changed no row makes
/// `salvage_guard` raise, which undoes the whole statement. Single-row inserts and the events
/// are bound as column arrays ([`pg_row_arrays`]): the statement's text depends on which
/// writes there are, not on how many rows, so its plan is kept.
async fn commit_in_one_statement<'c, E>(
    executor: E,
    events: &[SerializedEvent],
    writes: &[Write],
) -> Result<(), CommitError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let (arrays, others) = pg_row_arrays::group(writes);
    let mut parts = Vec::with_capacity(arrays.len() + others.len() + 1);
    // Each CTE's guard, in the order of `guard_reasons`: (CTE, rows it must change).
    let mut guards: Vec<(String, String)> = Vec::new();
    let mut guard_reasons: Vec<&'static str> = Vec::new();
    let mut offset = 0;
    for (i, a) in arrays.iter().enumerate() {
        parts.push(format!("a{i} AS ({} RETURNING 1)", a.sql(offset)));
        if let Some(reason) = a.guard {
            guards.push((
                format!("a{i}"),
                format!("cardinality(${}::{})", offset + 1, a.first_type()),
            ));
            guard_reasons.push(reason);
        }
        offset += a.columns.len();
    }
    for (i, w) in others.iter().enumerate() {
        parts.push(format!(
            "w{i} AS ({} RETURNING 1)",
            renumber(&w.sql, offset)
        ));
        if let Some(reason) = w.guard {
            guards.push((format!("w{i}"), w.rows.to_string()));
            guard_reasons.push(reason);
        }
        offset += w.binds.len();
    }
    let event_rows = pg_row_arrays::RowArrays::events(events);
    if !events.is_empty() {
        parts.push(format!("ev AS ({} RETURNING 1)", event_rows.sql(offset)));
    }
    if parts.is_empty() {
        // Nothing to write (a command that decided no event and carries no write).
        return Ok(());
    }
    let mut sql = format!("WITH {} SELECT 1", parts.join(", "));
    for (i, (cte, rows)) in guards.iter().enumerate() {
        sql.push_str(&format!(
            ", salvage_guard((SELECT count(*) FROM {cte}) = {rows}, {i})"
        ));
    }
    let mut q = sqlx::query(&sql);
    for a in &arrays {
        q = bind_columns(q, &a.columns);
    }
    for w in &others {
        q = bind_all!(q, &w.binds);
    }
    if !events.is_empty() {
        q = bind_columns(q, &event_rows.columns);
    }
    match q.execute(executor).await {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(CommitError::Conflict),
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some(GUARD_SQLSTATE) => {
            let reason = d
                .message()
                .rsplit(' ')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| guard_reasons.get(i).copied())
                .unwrap_or("a guarded write changed no row");
            Err(CommitError::Guard(reason))
        }
        Err(err) => Err(CommitError::Store(err.into())),
    }
}

/// Binds each column's values as one array.
fn bind_columns<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    columns: &'q [Column<'q>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for c in columns {
        q = match c {
            Column::Text(v) => q.bind(v),
            Column::Int(v) => q.bind(v),
            Column::Json(v) => q.bind(v),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(sql: &'static str, binds: &[&str], guard: Option<&'static str>) -> Write {
        Write {
            sql: sql.into(),
            binds: binds.iter().map(|b| Bind::Text(b.to_string())).collect(),
            guard,
            rows: 1,
        }
    }

    #[test]
    fn single_row_inserts_of_one_statement_and_guard_merge_into_one() {
        const NONCE: &str =
            "INSERT INTO n (nonce, at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING";
        const RECORD: &str = "INSERT INTO r (k) VALUES ($1) ON CONFLICT DO NOTHING";
        let merged = merge_rows(vec![
            insert(NONCE, &["a", "1"], Some("replayed")),
            insert(RECORD, &["ka"], Some("recorded")),
            insert("UPDATE t SET x = $1", &["u"], None),
            insert(NONCE, &["b", "2"], Some("replayed")),
            insert(RECORD, &["kb"], Some("recorded")),
            insert(NONCE, &["c", "3"], None),
        ]);
        let shapes: Vec<(&str, u64, Option<&str>)> =
            merged.iter().map(|w| (&*w.sql, w.rows, w.guard)).collect();
        assert_eq!(
            shapes,
            vec![
                (
                    "INSERT INTO n (nonce, at) VALUES ($1, $2), ($3, $4) ON CONFLICT (nonce) DO NOTHING",
                    2,
                    Some("replayed")
                ),
                (
                    "INSERT INTO r (k) VALUES ($1), ($2) ON CONFLICT DO NOTHING",
                    2,
                    Some("recorded")
                ),
                (NONCE, 1, None),
                ("UPDATE t SET x = $1", 1, None),
            ]
        );
        let text = |w: &Write| -> Vec<String> {
            w.binds
                .iter()
                .map(|b| match b {
                    Bind::Text(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(text(&merged[0]), ["a", "1", "b", "2"]);
        assert_eq!(text(&merged[1]), ["ka", "kb"]);
    }

    #[test]
    fn other_statements_are_not_merged() {
        for sql in [
            "INSERT INTO t (a) SELECT $1",
            "INSERT INTO t (a, b) VALUES ($2, $1)",
            "INSERT INTO t (a) VALUES ($1), ($2)",
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET b = $2",
            "INSERT INTO t (a, b) VALUES ($1, 'x')",
        ] {
            assert!(single_row(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn placeholders_are_renumbered() {
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1, $2, 'done', $10)", 3),
            "INSERT INTO t VALUES ($4, $5, 'done', $13)"
        );
        assert_eq!(renumber("SELECT 1", 5), "SELECT 1");
        assert_eq!(
            insert_events_sql_from(7, 1).matches('$').count(),
            7,
            "seven columns"
        );
        assert!(insert_events_sql_from(7, 2)
            .ends_with("($8, $9, $10, $11, $12, $13, $14), ($15, $16, $17, $18, $19, $20, $21)"));
    }
}
