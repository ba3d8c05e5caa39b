//! Webhook bookkeeping: deliveries already applied (W2, O7), nonces seen within the tolerance
//! (W2), and verified deliveries for orders Salvage does not know, kept for reconciliation (W4).

use sqlx::Row;

use super::guarded_commit::{self, Bind, CommitError, Write};
use super::held_connection::HeldConnection;
use super::{Backend, StoreError};

const INSERT_NONCE: &str = "INSERT INTO salvage_webhook_nonces (nonce, seen_at) VALUES ($1, $2) \
    ON CONFLICT (nonce) DO NOTHING";
const INSERT_DELIVERY: &str = "INSERT INTO salvage_webhook_deliveries \
    (delivery_key, event, order_id, flexfactor_order_id, received_at, outcome) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_key) DO NOTHING";
const INSERT_UNMATCHED: &str = "INSERT INTO salvage_unmatched_deliveries \
    (delivery_key, event, order_id, flexfactor_order_id, body, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_key) DO NOTHING";

/// Why a guarded webhook write refused (see [`Write::guard`]).
pub const REPLAYED_NONCE: &str = "the nonce was already seen (W2)";
/// See [`REPLAYED_NONCE`].
pub const DELIVERY_RECORDED: &str = "the delivery was already recorded (O7)";

/// Records a nonce, in the transaction of the delivery's effect; refused when already seen.
pub fn nonce_write(nonce: &str, now: i64) -> Write {
    Write {
        sql: INSERT_NONCE.into(),
        binds: vec![Bind::Text(nonce.to_string()), Bind::Int(now)],
        guard: Some(REPLAYED_NONCE),
        rows: 1,
    }
}

/// A delivery's record (see [`record_delivery`]), in the transaction of its effect; refused when
/// already recorded.
pub fn delivery_write(
    delivery_key: &str,
    event: &str,
    order_id: Option<&str>,
    flexfactor_order_id: Option<&str>,
    now: i64,
    outcome: &str,
) -> Write {
    Write {
        sql: INSERT_DELIVERY.into(),
        binds: vec![
            Bind::Text(delivery_key.to_string()),
            Bind::Text(event.to_string()),
            Bind::OptText(order_id.map(str::to_string)),
            Bind::OptText(flexfactor_order_id.map(str::to_string)),
            Bind::Int(now),
            Bind::Text(outcome.to_string()),
        ],
        guard: Some(DELIVERY_RECORDED),
        rows: 1,
    }
}

/// Keeps a delivery for an unknown order (see [`park_unmatched`]) in a guarded transaction.
pub fn unmatched_write(d: &UnmatchedDelivery) -> Write {
    Write {
        sql: INSERT_UNMATCHED.into(),
        binds: vec![
            Bind::Text(d.delivery_key.clone()),
            Bind::Text(d.event.clone()),
            Bind::OptText(d.order_id.clone()),
            Bind::OptText(d.flexfactor_order_id.clone()),
            Bind::Text(d.body.clone()),
            Bind::Int(d.received_at),
        ],
        guard: None,
        rows: 1,
    }
}

/// Whether a delivery is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Fresh,
    Duplicate,
}

/// Records `nonce` as seen at `now`; false when it was already seen (a replay).
pub async fn remember_nonce(backend: &Backend, nonce: &str, now: i64) -> Result<bool, StoreError> {
    commit_one(backend, nonce_write(nonce, now)).await
}

/// Forgets nonces seen before `before` (outside the tolerance they are refused by date anyway).
pub async fn prune_nonces(backend: &Backend, before: i64) -> Result<u64, StoreError> {
    let n = crate::on_pool!(backend, pool => {
        sqlx::query("DELETE FROM salvage_webhook_nonces WHERE seen_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}

/// Records a delivery by its key (event and FlexFactor order, so a resent delivery has the same
/// key); `Duplicate` when it was recorded before.
pub async fn record_delivery(
    backend: &Backend,
    delivery_key: &str,
    event: &str,
    order_id: Option<&str>,
    flexfactor_order_id: Option<&str>,
    now: i64,
    outcome: &str,
) -> Result<Delivery, StoreError> {
    let write = delivery_write(
        delivery_key,
        event,
        order_id,
        flexfactor_order_id,
        now,
        outcome,
    );
    Ok(if commit_one(backend, write).await? {
        Delivery::Fresh
    } else {
        Delivery::Duplicate
    })
}

/// Commits one write on its own: false when its guard refused it.
async fn commit_one(backend: &Backend, write: Write) -> Result<bool, StoreError> {
    match guarded_commit::commit(backend, &[], &[write]).await {
        Ok(()) => Ok(true),
        Err(CommitError::Guard(_)) => Ok(false),
        Err(CommitError::Store(e)) => Err(e),
        Err(CommitError::Conflict) => Ok(false),
    }
}

/// A verified delivery for an order Salvage does not know (W4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedDelivery {
    pub delivery_key: String,
    pub event: String,
    pub order_id: Option<String>,
    pub flexfactor_order_id: Option<String>,
    pub body: String,
    pub received_at: i64,
}

/// Keeps a verified delivery for an unknown order; idempotent by key.
pub async fn park_unmatched(backend: &Backend, d: &UnmatchedDelivery) -> Result<(), StoreError> {
    commit_one(backend, unmatched_write(d)).await.map(|_| ())
}

/// The unmatched deliveries not yet resolved, oldest first.
pub async fn unmatched(backend: &Backend) -> Result<Vec<UnmatchedDelivery>, StoreError> {
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query("SELECT delivery_key, event, order_id, flexfactor_order_id, body, received_at
                       FROM salvage_unmatched_deliveries WHERE resolved_at IS NULL ORDER BY received_at, delivery_key")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(UnmatchedDelivery {
                    delivery_key: r.try_get("delivery_key")?,
                    event: r.try_get("event")?,
                    order_id: r.try_get("order_id")?,
                    flexfactor_order_id: r.try_get("flexfactor_order_id")?,
                    body: r.try_get("body")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// Marks an unmatched delivery resolved (applied after its order arrived, or dismissed).
pub async fn resolve_unmatched(
    backend: &Backend,
    delivery_key: &str,
    now: i64,
) -> Result<(), StoreError> {
    crate::on_pool!(backend, pool => {
        sqlx::query("UPDATE salvage_unmatched_deliveries SET resolved_at = $1 WHERE delivery_key = $2")
            .bind(now)
            .bind(delivery_key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Whether a delivery with this key was already recorded.
pub async fn delivery_seen(backend: &Backend, delivery_key: &str) -> Result<bool, StoreError> {
    let n: i64 = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM salvage_webhook_deliveries WHERE delivery_key = $1")
            .bind(delivery_key)
            .fetch_one(pool)
            .await?
    });
    Ok(n > 0)
}

/// Of `nonces` and `delivery_keys`, those already stored (nonces seen, deliveries recorded), in
/// one query: a group commit leaves them out, so that one redelivery does not undo the batch.
/// On PostgreSQL the lists are bound as arrays (one statement text, planned once) over the
/// connection `held` keeps.
pub async fn already_stored(
    backend: &Backend,
    held: &mut HeldConnection,
    nonces: &[&str],
    delivery_keys: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    if nonces.is_empty() && delivery_keys.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<String> = match backend {
        Backend::Sqlite(pool) => {
            let sql = already_stored_sql(nonces.len(), delivery_keys.len());
            let sql = backend.statement(&sql);
            let mut q = sqlx::query_scalar(&sql);
            for v in nonces.iter().chain(delivery_keys) {
                q = q.bind(*v);
            }
            q.fetch_all(pool).await?
        }
        Backend::Postgres(pool) => {
            let result = sqlx::query_scalar(
                "SELECT nonce AS v FROM salvage_webhook_nonces WHERE nonce = ANY($1::text[]) \
                 UNION ALL SELECT delivery_key AS v FROM salvage_webhook_deliveries \
                 WHERE delivery_key = ANY($2::text[])",
            )
            .bind(nonces)
            .bind(delivery_keys)
            .fetch_all(held.get(pool).await?)
            .await;
            held.released_on_error(result)?
        }
    };
    Ok(found.into_iter().collect())
}

/// [`already_stored`]'s query on SQLite: `IN` lists of `nonces` then `keys` placeholders.
fn already_stored_sql(nonces: usize, keys: usize) -> String {
    let list = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if nonces > 0 {
        parts.push(format!(
            "SELECT nonce AS v FROM salvage_webhook_nonces WHERE nonce IN ({})",
            list(1, nonces)
        ));
    }
    if keys > 0 {
        parts.push(format!(
            "SELECT delivery_key AS v FROM salvage_webhook_deliveries WHERE delivery_key IN ({})",
            list(nonces + 1, keys)
        ));
    }
    parts.join(" UNION ALL ")
}

/// How many refused deliveries the inbox keeps (the newest).
pub const REFUSALS_KEPT: i64 = 5_000;

/// A refused delivery, as the console's inbox shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    pub received_at: i64,
    pub reason: &'a str,
    pub detail: &'a str,
    pub nonce: &'a str,
    pub event: &'a str,
    /// The first bytes of the body, as text, with long digit runs masked.
    pub body_excerpt: String,
}

/// The first `max` characters of `body` as text, every run of 12 or more digits (a card number
/// sent by mistake) masked but for its first six and last four.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(body).chars().take(max).collect();
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 12 {
            let n = digits.len();
            out.push_str(&digits[..6]);
            out.push_str(&"*".repeat(n - 10));
            out.push_str(&digits[n - 4..]);
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Records a refused delivery for the inbox, keeping the newest [`REFUSALS_KEPT`].
pub async fn record_refusal(backend: &Backend, r: &Refusal<'_>) -> Result<(), StoreError> {
    crate::on_pool!(backend, pool => {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO salvage_webhook_refusals (received_at, reason, detail, nonce, event, body_excerpt) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(r.received_at)
        .bind(r.reason)
        .bind(r.detail)
        .bind(r.nonce)
        .bind(r.event)
        .bind(&r.body_excerpt)
        .fetch_one(pool)
        .await?;
        if id % 100 == 0 {
            sqlx::query("DELETE FROM salvage_webhook_refusals WHERE id <= $1")
                .bind(id - REFUSALS_KEPT)
                .execute(pool)
                .await?;
        }
    });
    Ok(())
}

#[cfg(test)]
mod refusal_tests {
    use super::excerpt;

    #[test]
    fn long_digit_runs_are_masked() {
        assert_eq!(
            excerpt(b"{\"card\":\"4111111111111111\",\"n\":42}", 100),
            "{\"card\":\"411111******1111\",\"n\":42}"
        );
        assert_eq!(excerpt(b"12345678901", 100), "12345678901");
        assert_eq!(excerpt(b"abcdef", 3), "abc");
    }
}
