//! The console's reads. Every page reads projections (the order view's console columns, the
//! hourly funnel, the webhook book, the outbox, the checkpoints) or one aggregate's own events;
//! nothing folds event history per request.

use super::console_view::Outcome;
use super::{Backend, StoreError};

/// One cell of the funnel summed over a window.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FunnelRow {
    pub route: String,
    pub slot: String,
    pub currency: String,
    pub outcome: String,
    pub orders: i64,
    pub amount_minor: i64,
}

/// The funnel's grain: the hourly table, or the daily one (the same cells summed by day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Grain::Hour => ("salvage_funnel_hourly", "hour"),
            Grain::Day => ("salvage_funnel_daily", "day"),
        }
    }
}

/// The funnel of the orders first declined in period `since` or later (hours or days since the
/// epoch, by `grain`), summed by route, slot, currency and outcome.
pub async fn funnel(
    backend: &Backend,
    grain: Grain,
    since: i64,
) -> Result<Vec<FunnelRow>, StoreError> {
    let (table, period) = grain.table();
    let sql = format!(
        "SELECT route, slot, currency, outcome, CAST(SUM(orders) AS BIGINT) AS orders, \
                CAST(SUM(amount_minor) AS BIGINT) AS amount_minor \
           FROM {table} WHERE {period} >= $1 \
          GROUP BY route, slot, currency, outcome \
          ORDER BY route, slot, currency, outcome"
    );
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, FunnelRow>(&sql)
            .bind(since)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// Per period of `grain` from period `since`: (period, orders sent to FlexFactor, orders
/// recovered), by the first decline. Periods with no decline are absent.
pub async fn recovery_by_period(
    backend: &Backend,
    grain: Grain,
    since: i64,
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let (table, period) = grain.table();
    let sql = format!(
        "SELECT {period}, \
                CAST(SUM(CASE WHEN outcome <> 'not_sent' THEN orders ELSE 0 END) AS BIGINT), \
                CAST(SUM(CASE WHEN outcome = 'recovered' THEN orders ELSE 0 END) AS BIGINT) \
           FROM {table} WHERE {period} >= $1 \
          GROUP BY {period} ORDER BY {period}"
    );
    let rows: Vec<(i64, i64, i64)> = crate::on_pool!(backend, pool => {
        sqlx::query_as(&sql).bind(since).fetch_all(pool).await?
    });
    Ok(rows)
}

/// How the orders page sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    AmountHigh,
    AmountLow,
}

impl Sort {
    pub const ALL: [Sort; 4] = [
        Sort::Newest,
        Sort::Oldest,
        Sort::AmountHigh,
        Sort::AmountLow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::AmountHigh => "amount_desc",
            Sort::AmountLow => "amount_asc",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn column(self) -> &'static str {
        match self {
            Sort::Newest | Sort::Oldest => "placed_at",
            Sort::AmountHigh | Sort::AmountLow => "amount_minor",
        }
    }

    fn descending(self) -> bool {
        matches!(self, Sort::Newest | Sort::AmountHigh)
    }
}

/// Where a page starts: after the row with this sort key and order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub order_id: String,
}

impl Cursor {
    /// `KEY.ORDER_ID`, as the page links carry it.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.key, self.order_id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (key, id) = s.split_once('.')?;
        Some(Cursor {
            key: key.parse().ok()?,
            order_id: id.to_string(),
        })
    }
}

/// The orders page's filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub outcome: Option<Outcome>,
    pub route: Option<String>,
    pub gateway: Option<String>,
    /// Placed at or after (milliseconds).
    pub from_ms: Option<i64>,
    /// Placed before (milliseconds).
    pub to_ms: Option<i64>,
    /// An order id, a subscription id or a customer's e-mail (exact; e-mail in any case).
    pub search: Option<String>,
    pub sort: Sort,
}

/// One row of the orders page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: String,
    pub order_type: String,
    pub status: String,
    pub placed_at: Option<i64>,
    pub declined_at: Option<i64>,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub subscription_id: Option<String>,
    pub gateway: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub route: String,
    pub slot: String,
    pub outcome: String,
    pub expires_at: Option<i64>,
    pub card_bin: Option<String>,
    pub card_last4: Option<String>,
}

impl OrderRow {
    /// The cursor of the page that starts after this row.
    pub fn cursor(&self, sort: Sort) -> Cursor {
        let key = match sort {
            Sort::Newest | Sort::Oldest => self.placed_at.unwrap_or(0),
            Sort::AmountHigh | Sort::AmountLow => self.amount_minor.unwrap_or(0),
        };
        Cursor {
            key,
            order_id: self.order_id.clone(),
        }
    }
}

enum Param {
    Text(String),
    Int(i64),
}

/// One page of at most `limit` orders that entered salvage, matching `filter`, after `after`
/// (keyset pagination: the cost is the page's, however deep). Also says whether more follow.
pub async fn orders_page(
    backend: &Backend,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<OrderRow>, bool), StoreError> {
    // Every order in salvage was placed and has an amount: the sort keys are never null, so
    // the order by and the keyset use the (key, order_id) indexes as they are.
    let mut clauses = vec!["outcome IS NOT NULL".to_string()];
    let mut params: Vec<Param> = Vec::new();
    let next = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    if let Some(o) = filter.outcome {
        let n = next(&mut params, Param::Text(o.as_str().into()));
        clauses.push(format!("outcome = {n}"));
    }
    if let Some(r) = &filter.route {
        let n = next(&mut params, Param::Text(r.clone()));
        clauses.push(format!("route = {n}"));
    }
    if let Some(g) = &filter.gateway {
        let n = next(&mut params, Param::Text(g.clone()));
        clauses.push(format!("gateway = {n}"));
    }
    if let Some(f) = filter.from_ms {
        let n = next(&mut params, Param::Int(f));
        clauses.push(format!("placed_at >= {n}"));
    }
    if let Some(t) = filter.to_ms {
        let n = next(&mut params, Param::Int(t));
        clauses.push(format!("placed_at < {n}"));
    }
    if let Some(s) = filter
        .search
        .as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let a = next(&mut params, Param::Text(s.to_string()));
        let b = next(&mut params, Param::Text(s.to_string()));
        let c = next(&mut params, Param::Text(s.to_lowercase()));
        clauses.push(format!(
            "(order_id = {a} OR subscription_id = {b} OR customer_email = {c})"
        ));
    }
    let col = filter.sort.column();
    let (cmp, dir) = if filter.sort.descending() {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = after {
        let k = next(&mut params, Param::Int(c.key));
        let i = next(&mut params, Param::Text(c.order_id.clone()));
        clauses.push(format!("({col}, order_id) {cmp} ({k}, {i})"));
    }
    let l = next(&mut params, Param::Int(limit + 1));
    let sql = format!(
        "SELECT order_id, order_type, status, placed_at, declined_at, customer_email, \
                customer_name, subscription_id, gateway, amount_minor, currency, \
                COALESCE(route, '') AS route, COALESCE(slot, '') AS slot, \
                COALESCE(outcome, '') AS outcome, expires_at, card_bin, card_last4 \
           FROM salvage_order_view WHERE {} \
          ORDER BY {col} {dir}, order_id {dir} LIMIT {l}",
        clauses.join(" AND ")
    );
    let mut rows = crate::on_pool!(backend, pool => {
        let mut q = sqlx::query_as::<_, OrderRow>(&sql);
        for p in &params {
            q = match p {
                Param::Text(t) => q.bind(t.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q.fetch_all(pool).await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((rows, more))
}

/// One stored event of an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub sequence: i64,
    pub event_type: String,
    pub payload: serde_json::Value,
}

/// Every event of one aggregate, in order (its own history: one aggregate's rows).
pub async fn aggregate_events(
    backend: &Backend,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows: Vec<(i64, String, String)> = crate::on_pool!(backend, pool => {
        sqlx::query_as(
            "SELECT sequence, event_type, CAST(payload AS TEXT) FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(sequence, event_type, payload)| {
            Ok(StoredEvent {
                sequence,
                event_type,
                payload: serde_json::from_str(&payload)?,
            })
        })
        .collect()
}

/// A verified webhook delivery as the webhook book recorded it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_key: String,
    pub event: String,
    pub order_id: Option<String>,
    pub flexfactor_order_id: Option<String>,
    pub received_at: i64,
    pub outcome: String,
}

/// The verified deliveries for one order.
pub async fn deliveries_for_order(
    backend: &Backend,
    order_id: &str,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, DeliveryRow>(
            "SELECT delivery_key, event, order_id, flexfactor_order_id, received_at, outcome \
               FROM salvage_webhook_deliveries WHERE order_id = $1 ORDER BY received_at, delivery_key",
        )
        .bind(order_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// A refused webhook delivery (kept for the inbox; the newest few thousand).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalRow {
    pub id: i64,
    pub received_at: i64,
    pub reason: String,
    pub detail: String,
    pub nonce: String,
    pub event: String,
    pub body_excerpt: String,
}

/// The newest `limit` refused deliveries.
pub async fn refusals(backend: &Backend, limit: i64) -> Result<Vec<RefusalRow>, StoreError> {
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, RefusalRow>(
            "SELECT id, received_at, reason, detail, nonce, event, body_excerpt \
               FROM salvage_webhook_refusals ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// A verified delivery for an order Salvage does not know (W4), parked for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnmatchedRow {
    pub delivery_key: String,
    pub event: String,
    pub order_id: Option<String>,
    pub flexfactor_order_id: Option<String>,
    pub received_at: i64,
    pub resolved_at: Option<i64>,
}

/// The newest `limit` parked deliveries, unresolved first.
pub async fn unmatched(backend: &Backend, limit: i64) -> Result<Vec<UnmatchedRow>, StoreError> {
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, UnmatchedRow>(
            "SELECT delivery_key, event, order_id, flexfactor_order_id, received_at, resolved_at \
               FROM salvage_unmatched_deliveries \
              ORDER BY resolved_at IS NOT NULL, received_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// An outbox row as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub key: String,
    pub kind: String,
    pub payload: String,
    pub due_at: i64,
    pub state: String,
    pub attempts: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

const OUTBOX_COLUMNS: &str = "key, kind, payload, due_at, state, \
    CAST(attempts AS BIGINT) AS attempts, lease_until, last_error, created_at, done_at";

/// Effects (FlexFactor calls, charges, CRM notifications) pending or failed, and any row that
/// failed for good: failed first, then by due time. At most `limit`.
pub async fn outbox_attention(backend: &Backend, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM salvage_outbox \
          WHERE state = 'failed' OR (state = 'pending' AND kind = 'effect') \
          ORDER BY state = 'pending', due_at, key LIMIT $1"
    );
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, OutboxRow>(&sql)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// The outbox rows an aggregate's events caused (their keys start `{type}:{id}:`), in order.
pub async fn outbox_for(
    backend: &Backend,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<OutboxRow>, StoreError> {
    // The keys of one aggregate are a range of the primary key: `type:id:` up to `type:id;`.
    let from = format!("{aggregate_type}:{aggregate_id}:");
    let to = format!("{aggregate_type}:{aggregate_id};");
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM salvage_outbox WHERE key >= $1 AND key < $2 \
          ORDER BY created_at, key"
    );
    let rows = crate::on_pool!(backend, pool => {
        sqlx::query_as::<_, OutboxRow>(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// What asking for a retry came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAsked {
    /// The row is due now; the worker runs it on its next round.
    Due,
    /// A worker holds the row at this moment: it is running already.
    Running,
    /// Done already: nothing to retry.
    Done,
    NotFound,
}

/// An operator's "retry now": a pending or failed row is made due at `now` (a failed row goes
/// back to pending). The row runs through the outbox like any other, under its own key, so a
/// retry can never run it twice at once or around the lease.
pub async fn retry_now(backend: &Backend, key: &str, now: i64) -> Result<RetryAsked, StoreError> {
    let changed = crate::on_pool!(backend, pool => {
        sqlx::query(
            "UPDATE salvage_outbox SET due_at = $1, state = 'pending', done_at = NULL \
              WHERE key = $2 AND (state = 'failed' OR state = 'pending') \
                AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed > 0 {
        return Ok(RetryAsked::Due);
    }
    let state: Option<String> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT state FROM salvage_outbox WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
    });
    Ok(match state.as_deref() {
        None => RetryAsked::NotFound,
        Some("done") => RetryAsked::Done,
        Some(_) => RetryAsked::Running,
    })
}

/// The background work's position against the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    /// The log's last position.
    pub head: i64,
    /// Each checkpoint's name and position.
    pub checkpoints: Vec<(String, i64)>,
}

pub async fn lag(backend: &Backend) -> Result<Lag, StoreError> {
    let (head, checkpoints) = crate::on_pool!(backend, pool => {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM salvage_event_log")
            .fetch_one(pool)
            .await?;
        let checkpoints: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, position FROM salvage_checkpoints ORDER BY name")
                .fetch_all(pool)
                .await?;
        (head, checkpoints)
    });
    Ok(Lag {
        head: head.unwrap_or(0),
        checkpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_even_with_dots_in_the_id() {
        let c = Cursor {
            key: -5,
            order_id: "a.b.c".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x.y"), None);
        assert_eq!(Cursor::decode("nodot"), None);
    }

    #[test]
    fn sorts_parse_back() {
        for s in Sort::ALL {
            assert_eq!(Sort::parse(s.as_str()), Some(s));
        }
    }
}
