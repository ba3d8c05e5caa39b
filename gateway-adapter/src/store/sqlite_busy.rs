//! How a SQLite connection waits for the database's write lock.
//!
//! SQLite's own busy handler (what `busy_timeout` installs) sleeps 1, 2, 5, 10, 15, 20... ms
//! between tries, so a request that meets a background transaction holding the lock for 1 ms
//! sleeps 1 + 2 + 5 = 8 ms before it tries the third time; a cascade's latency then jumps by up
//! to 18 ms. The handler here retries finely while a wait is short (a transaction of this
//! service holds the lock for a millisecond or two) and more coarsely as it grows (many
//! connections waiting at once would otherwise spend the CPU on retries), see [`STEPS`], and
//! gives up after the configured timeout, as SQLite's would.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;

use super::StoreError;

/// The retry interval while a wait is shorter than the first value: 100 µs during the first
/// millisecond, 250 µs until 5 ms, 1 ms until 50 ms, 2 ms after that.
pub const STEPS: [(Duration, Duration); 4] = [
    (Duration::from_millis(1), Duration::from_micros(100)),
    (Duration::from_millis(5), Duration::from_micros(250)),
    (Duration::from_millis(50), Duration::from_millis(1)),
    (Duration::MAX, Duration::from_millis(2)),
];

/// Retries of the write lock so far, in this process (the `sqlite_lock_retries` metric).
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many times a SQLite connection of this process has found the write lock taken and
/// retried: a busy database shows as a steep rise.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// How long to sleep before retry number `count` (0 for the first), or `None` once the waits so
/// far add up to `timeout`.
pub fn pause(count: u32, timeout: Duration) -> Option<Duration> {
    let mut waited = Duration::ZERO;
    let mut left = count;
    for (until, step) in STEPS {
        // Retries spent in this tier before it ends.
        let in_tier = (until.saturating_sub(waited)).as_micros() / step.as_micros();
        let in_tier = u32::try_from(in_tier).unwrap_or(u32::MAX);
        if left < in_tier {
            waited += step * left;
            return (waited < timeout).then_some(step);
        }
        waited += step * in_tier;
        left -= in_tier;
    }
    None
}

/// The busy handler: `arg` carries the timeout in milliseconds (not a pointer to anything).
extern "C" fn on_busy(arg: *mut c_void, count: c_int) -> c_int {
    let timeout = Duration::from_millis(arg as usize as u64);
    match pause(u32::try_from(count).unwrap_or(u32::MAX), timeout) {
        Some(d) => {
            RETRIES.fetch_add(1, Ordering::Relaxed);
            // SQLite calls this on the connection's own worker thread (sqlx runs each SQLite
            // connection on a thread of its own), so sleeping here blocks no async task.
            std::thread::sleep(d);
            1
        }
        None => 0,
    }
}

/// Installs the handler on `conn`, replacing the one `busy_timeout` set.
pub async fn install(conn: &mut SqliteConnection, timeout: Duration) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    let ms = usize::try_from(timeout.as_millis()).unwrap_or(usize::MAX);
    // SAFETY: `db` is this connection's open handle, and the lock taken above keeps sqlx's
    // worker thread off it during the call. The callback has the signature SQLite requires and
    // reads `arg` as a number only, so nothing it points to has to outlive the connection.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(db.as_ptr(), Some(on_busy), ms as *mut c_void)
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(StoreError::Connect(format!(
            "could not install the SQLite busy handler (code {rc})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_finely_first_then_coarsely_and_gives_up_at_the_timeout() {
        let timeout = Duration::from_secs(1);
        assert_eq!(pause(0, timeout), Some(Duration::from_micros(100)));
        assert_eq!(pause(9, timeout), Some(Duration::from_micros(100)));
        assert_eq!(pause(10, timeout), Some(Duration::from_micros(250)));
        assert_eq!(pause(25, timeout), Some(Duration::from_micros(250)));
        assert_eq!(pause(26, timeout), Some(Duration::from_millis(1)));
        assert_eq!(pause(71, timeout), Some(Duration::from_millis(2)));
        let mut waited = Duration::ZERO;
        let mut count = 0;
        while let Some(d) = pause(count, timeout) {
            waited += d;
            count += 1;
        }
        assert!(waited >= timeout, "{waited:?}");
        assert!(waited < timeout + Duration::from_millis(4), "{waited:?}");
    }

    #[test]
    fn a_zero_timeout_never_waits() {
        assert_eq!(pause(0, Duration::ZERO), None);
    }

    /// A writer that meets another connection's transaction retries through this handler (many
    /// short tries, not SQLite's own 1, 2, 5, 10 ms sleeps) and commits once the lock is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_writer_retries_finely_and_commits() {
        let path = std::env::temp_dir().join(format!(
            "salvage-busy-{}-{}.db",
            std::process::id(),
            line!()
        ));
        let url = format!("sqlite://{}", path.display());
        let backend = crate::store::Backend::connect(&url, None).await.unwrap();
        let crate::store::Backend::Sqlite(pool) = &backend else {
            unreachable!("a SQLite URL")
        };
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        let mut holder = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(&mut *holder)
            .await
            .unwrap();
        let before = retries();
        let writer = {
            let pool = pool.clone();
            tokio::spawn(async move {
                sqlx::query("INSERT INTO t (v) VALUES (2)")
                    .execute(&pool)
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!writer.is_finished(), "the writer waits for the lock");
        holder.commit().await.unwrap();
        writer.await.unwrap().unwrap();
        // SQLite's own handler would have tried about five times in 60 ms.
        let tries = retries() - before;
        assert!(tries > 10, "{tries} retries");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
        pool.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
