//! A PostgreSQL connection kept between statements by a caller that runs many in a row (the
//! group commit's committer). sqlx's pool checks every connection given back to it with a
//! round trip to the server; a connection kept is not given back after each statement, so each
//! statement saves that round trip (on both sides: measured in docs/benchmarks.md, issue 18).
//! After a store error the connection is given back (the pool checks it and closes it if it is
//! broken) and the next statement takes another. On SQLite nothing is kept: the pool is used
//! as before.

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Postgres;

/// See the module's doc.
#[derive(Debug, Default)]
pub struct HeldConnection {
    conn: Option<PoolConnection<Postgres>>,
}

impl HeldConnection {
    /// The connection kept, or one taken from `pool` and kept.
    pub async fn get(&mut self, pool: &PgPool) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(pool.acquire().await?);
        }
        match self.conn.as_deref_mut() {
            Some(conn) => Ok(conn),
            // Set just above.
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Gives the connection back to the pool (after an error on it).
    pub fn release(&mut self) {
        self.conn = None;
    }

    /// `result` of a statement run on the kept connection, the connection given back if it
    /// failed.
    pub fn released_on_error<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.release();
        }
        result
    }

    /// Whether a connection is kept.
    pub fn holds(&self) -> bool {
        self.conn.is_some()
    }
}
