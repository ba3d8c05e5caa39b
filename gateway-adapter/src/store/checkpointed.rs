//! A checkpointed batch over the ordered log, shared by the projector and the dispatcher.
//!
//! The entries past a checkpoint are read, and what they lead to is computed, outside any
//! transaction; then the batch's writes commit together with the checkpoint's advance, and only
//! if the checkpoint is still where the batch read it (a compare-and-set). So a batch holds the
//! write lock (SQLite has one, for the whole database) for its writes alone, a few statements
//! of many rows each, and a request meeting a background round waits for that, not for its
//! reads. A batch that lost the race to another process commits nothing; the next round reads
//! again from the new checkpoint. On PostgreSQL the writes and the advance are one statement.

use std::time::Duration;

use super::event_log::{self, LogEntry};
use super::guarded_commit::{self, Bind, CommitError, Write};
use super::{Backend, StoreError};

/// Why a batch's commit was refused: another process advanced the checkpoint first.
pub const CHECKPOINT_MOVED: &str = "the checkpoint moved";

/// Rows per multi-row statement (well under both databases' limits on bound values).
const ROWS_PER_STATEMENT: usize = 100;

/// Log entries read past a checkpoint.
#[derive(Debug)]
pub struct Batch {
    /// The checkpoint the batch was read from.
    pub from: i64,
    /// The entries, in position order; never empty.
    pub entries: Vec<LogEntry>,
}

impl Batch {
    /// The position of the batch's last entry: the checkpoint once it commits.
    pub fn last(&self) -> i64 {
        self.entries.last().map_or(self.from, |e| e.event.position)
    }
}

/// The checkpoint `name` (0 before its first batch).
pub async fn position(backend: &Backend, name: &str) -> Result<i64, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT position FROM salvage_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
    });
    Ok(v.unwrap_or(0))
}

/// At most `limit` entries past checkpoint `name`, none past position `upto` when it is given,
/// or `None` when there are none. Reads only (the checkpoint's row is created the first time).
/// `wait` is how long to wait for events committed before the call to get their log positions
/// (see [`event_log::sync`]): zero for a reader that comes back anyway.
pub async fn read(
    backend: &Backend,
    name: &str,
    limit: i64,
    upto: Option<i64>,
    wait: Duration,
) -> Result<Option<Batch>, StoreError> {
    for first in [true, false] {
        match read_together(
            backend,
            &[name],
            limit,
            upto,
            if first { wait } else { Duration::ZERO },
        )
        .await?
        {
            Together::Batch(batch) => return Ok(Some(batch)),
            Together::CaughtUp => return Ok(None),
            // One checkpoint is apart only when its row is missing: create it, read again.
            Together::Apart(_) if first => {
                crate::on_pool!(backend, pool => {
                    sqlx::query(
                        "INSERT INTO salvage_checkpoints (name, position) VALUES ($1, 0) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .execute(pool)
                    .await?;
                });
            }
            Together::Apart(_) => {}
        }
    }
    Err(StoreError::Corrupt(format!(
        "checkpoint {name} is missing after it was created"
    )))
}

/// One checkpointed batch, applied: reads at most `limit` entries past checkpoint `name` (none
/// past `upto` when it is given), computes their writes with `writes` (which hands the batch
/// back, possibly cut short), and commits them with the checkpoint's advance. A batch another
/// process committed first is read again. Returns how many entries were applied (0: none).
pub async fn apply<F, Fut>(
    backend: &Backend,
    name: &str,
    limit: i64,
    upto: Option<i64>,
    wait: Duration,
    mut writes: F,
) -> Result<usize, StoreError>
where
    F: FnMut(Batch) -> Fut,
    Fut: std::future::Future<Output = Result<(Batch, Vec<Write>), StoreError>>,
{
    loop {
        let Some(batch) = read(backend, name, limit, upto, wait).await? else {
            return Ok(0);
        };
        let (batch, w) = writes(batch).await?;
        if commit(backend, name, &batch, w).await? {
            return Ok(batch.entries.len());
        }
    }
}

/// What [`read_together`] found.
#[derive(Debug)]
pub enum Together {
    /// The checkpoints are at the same position: one batch serves them all.
    Batch(Batch),
    /// They are at the same position, with nothing past it (or nothing up to `upto`).
    CaughtUp,
    /// They are at different positions, or one has never run: read each on its own. Each
    /// checkpoint's position, in the order of the names asked (`None`: it has no row yet).
    Apart(Vec<Option<i64>>),
}

/// One batch for several checkpoints that are at the same position (the projector and the
/// dispatcher, in the background worker's rounds, usually are): one read of the log for all.
/// At most `limit` entries, none past position `upto` when it is given.
pub async fn read_together(
    backend: &Backend,
    names: &[&str],
    limit: i64,
    upto: Option<i64>,
    wait: Duration,
) -> Result<Together, StoreError> {
    event_log::sync(backend, wait).await?;
    let sql = format!(
        "SELECT name, position FROM salvage_checkpoints WHERE name IN ({})",
        placeholders(names.len())
    );
    let found: Vec<(String, i64)> = crate::on_pool!(backend, pool => {
        let mut q = sqlx::query_as(&sql);
        for n in names {
            q = q.bind(*n);
        }
        q.fetch_all(pool).await?
    });
    let at: Vec<Option<i64>> = names
        .iter()
        .map(|n| found.iter().find(|(f, _)| f == n).map(|(_, p)| *p))
        .collect();
    let from = match at.first() {
        Some(Some(from)) if at.iter().all(|p| *p == Some(*from)) => *from,
        _ => return Ok(Together::Apart(at)),
    };
    // Positions only grow, so at most `upto - from` entries lie in (from, upto].
    let limit = match upto {
        Some(upto) if upto <= from => return Ok(Together::CaughtUp),
        Some(upto) => limit.min(upto - from),
        None => limit,
    };
    let mut entries = event_log::read_after_synced(backend, from, limit).await?;
    if let Some(upto) = upto {
        entries.retain(|e| e.event.position <= upto);
    }
    if entries.is_empty() {
        return Ok(Together::CaughtUp);
    }
    Ok(Together::Batch(Batch { from, entries }))
}

/// Commits `writes` with checkpoint `name` advanced past `batch`, atomically; false (nothing
/// committed) when the checkpoint is no longer where the batch read it.
pub async fn commit(
    backend: &Backend,
    name: &str,
    batch: &Batch,
    writes: Vec<Write>,
) -> Result<bool, StoreError> {
    commit_together(backend, &[name], batch, writes).await
}

/// [`commit`] advancing every checkpoint of `names` (all read at `batch.from`).
pub async fn commit_together(
    backend: &Backend,
    names: &[&str],
    batch: &Batch,
    writes: Vec<Write>,
) -> Result<bool, StoreError> {
    let mut all = Vec::with_capacity(writes.len() + names.len());
    for name in names {
        all.push(Write {
            sql: "UPDATE salvage_checkpoints SET position = $1 WHERE name = $2 AND position = $3"
                .into(),
            binds: vec![
                Bind::Int(batch.last()),
                Bind::Text(name.to_string()),
                Bind::Int(batch.from),
            ],
            guard: Some(CHECKPOINT_MOVED),
            rows: 1,
        });
    }
    all.extend(writes);
    match guarded_commit::commit(backend, &[], &all).await {
        Ok(()) => Ok(true),
        Err(CommitError::Guard(_)) => Ok(false),
        Err(CommitError::Conflict) => Err(StoreError::Corrupt(
            "a checkpointed batch wrote no events, yet conflicted on one".into(),
        )),
        Err(CommitError::Store(e)) => Err(e),
    }
}

/// `rows` as statements of at most [`ROWS_PER_STATEMENT`] rows each: `head`, then
/// `VALUES (...), (...)`, then `tail` (an `ON CONFLICT` clause).
pub fn rows(head: &str, tail: &str, rows: Vec<Vec<Bind>>) -> Vec<Write> {
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Bind>> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        let mut sql = format!("{head} VALUES ");
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..row.len() {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        out.push(Write {
            sql: sql.into(),
            binds: chunk.into_iter().flatten().collect(),
            guard: None,
            rows: 1,
        });
    }
    out
}

/// `DELETE FROM table WHERE column IN (...)` for `ids`, in statements of at most
/// [`ROWS_PER_STATEMENT`] ids.
pub fn delete_ids(table: &str, column: &str, ids: Vec<String>) -> Vec<Write> {
    ids.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| Write {
            sql: format!(
                "DELETE FROM {table} WHERE {column} IN ({})",
                placeholders(chunk.len())
            )
            .into(),
            binds: chunk.iter().cloned().map(Bind::Text).collect(),
            guard: None,
            rows: 1,
        })
        .collect()
}

/// `$1, $2, ..., $n`.
pub fn placeholders(n: usize) -> String {
    placeholders_from(1, n)
}

/// `n` placeholders from `$first`: `$first, ..., $(first + n - 1)`.
pub fn placeholders_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_split_into_statements_with_their_own_placeholders() {
        let input: Vec<Vec<Bind>> = (0..(ROWS_PER_STATEMENT as i64 + 1))
            .map(|i| vec![Bind::Int(i), Bind::Text(format!("r{i}"))])
            .collect();
        let writes = rows("INSERT INTO t (a, b)", "ON CONFLICT (a) DO NOTHING", input);
        assert_eq!(writes.len(), 2);
        assert!(writes[0]
            .sql
            .starts_with("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"));
        assert!(writes[0].sql.ends_with(&format!(
            "(${}, ${}) ON CONFLICT (a) DO NOTHING",
            2 * ROWS_PER_STATEMENT - 1,
            2 * ROWS_PER_STATEMENT
        )));
        assert_eq!(writes[0].binds.len(), 2 * ROWS_PER_STATEMENT);
        assert_eq!(
            &*writes[1].sql,
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            writes[1].binds,
            vec![
                Bind::Int(ROWS_PER_STATEMENT as i64),
                Bind::Text(format!("r{ROWS_PER_STATEMENT}"))
            ]
        );
        assert!(rows("INSERT INTO t (a)", "", Vec::new()).is_empty());
    }

    #[test]
    fn deletes_name_every_id() {
        let writes = delete_ids("v", "id", vec!["a".into(), "b".into()]);
        assert_eq!(writes.len(), 1);
        assert_eq!(&*writes[0].sql, "DELETE FROM v WHERE id IN ($1, $2)");
        assert!(delete_ids("v", "id", Vec::new()).is_empty());
    }
}
