//! Versioned schema migrations, applied at start in order, each once, each in its own
//! transaction, recorded in `salvage_schema_migrations`. On PostgreSQL a session advisory lock
//! keeps two starting processes from migrating at the same time.

use super::{Backend, StoreError};

/// One migration: its version, a name, and its SQL for each database.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The lock key migrations take on PostgreSQL.
const MIGRATION_LOCK: i64 = 0x5a17_0001;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "cqrs-es event and snapshot tables",
        // The schemas of sqlite-es and postgres-es (their own init scripts).
        sqlite: r#"
CREATE TABLE IF NOT EXISTS events (
  aggregate_type text NOT NULL,
  aggregate_id   text NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text NOT NULL,
  event_version  text NOT NULL,
  payload        text NOT NULL,
  metadata       text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;
CREATE TABLE IF NOT EXISTS snapshots (
  aggregate_type   text NOT NULL,
  aggregate_id     text NOT NULL,
  last_sequence    integer CHECK (last_sequence >= 0) NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload          text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;
"#,
        postgres: r#"
CREATE TABLE IF NOT EXISTS events (
  aggregate_type text NOT NULL,
  aggregate_id   text NOT NULL,
  sequence       bigint CHECK (sequence >= 0) NOT NULL,
  event_type     text NOT NULL,
  event_version  text NOT NULL,
  payload        json NOT NULL,
  metadata       json NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE IF NOT EXISTS snapshots (
  aggregate_type   text NOT NULL,
  aggregate_id     text NOT NULL,
  last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
  current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
  payload          json NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
"#,
    },
    Migration {
        version: 2,
        name: "ordered event log",
        // SQLite has one writer at a time: an AUTOINCREMENT key filled by a trigger in the
        // committing transaction is in commit order.
        sqlite: r#"
CREATE TABLE salvage_event_log (
  position       INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_type TEXT NOT NULL,
  aggregate_id   TEXT NOT NULL,
  sequence       INTEGER NOT NULL,
  UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE TRIGGER salvage_event_log_append AFTER INSERT ON events
BEGIN
  INSERT INTO salvage_event_log (aggregate_type, aggregate_id, sequence)
  VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
END;
"#,
        // PostgreSQL: a plain sequence can commit out of order (a transaction that took position
        // 7 may commit after one that took 8, and a reader at 8 would skip 7 for ever). The
        // trigger takes a transaction-level advisory lock before it draws a position; the lock is
        // held until commit, so positions are drawn and committed in the same order, and a
        // reader that sees position N has already been able to see every position below N.
        postgres: r#"
CREATE SEQUENCE salvage_event_log_position;
CREATE TABLE salvage_event_log (
  position       bigint PRIMARY KEY,
  aggregate_type text NOT NULL,
  aggregate_id   text NOT NULL,
  sequence       bigint NOT NULL,
  UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE FUNCTION salvage_event_log_append() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock(1511522305);
  INSERT INTO salvage_event_log (position, aggregate_type, aggregate_id, sequence)
  VALUES (nextval('salvage_event_log_position'), NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER salvage_event_log_append AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION salvage_event_log_append();
"#,
    },
    Migration {
        version: 3,
        name: "checkpoints and outbox (effects, commands and timers)",
        sqlite: r#"
CREATE TABLE salvage_checkpoints (
  name     TEXT PRIMARY KEY,
  position INTEGER NOT NULL
);
CREATE TABLE salvage_outbox (
  key             TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,
  payload         TEXT NOT NULL,
  due_at          INTEGER NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending',
  attempts        INTEGER NOT NULL DEFAULT 0,
  lease_until     INTEGER,
  last_error      TEXT,
  source_position INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  done_at         INTEGER
);
CREATE INDEX salvage_outbox_due ON salvage_outbox (state, due_at);
"#,
        postgres: r#"
CREATE TABLE salvage_checkpoints (
  name     text PRIMARY KEY,
  position bigint NOT NULL
);
CREATE TABLE salvage_outbox (
  key             text PRIMARY KEY,
  kind            text NOT NULL,
  payload         text NOT NULL,
  due_at          bigint NOT NULL,
  state           text NOT NULL DEFAULT 'pending',
  attempts        integer NOT NULL DEFAULT 0,
  lease_until     bigint,
  last_error      text,
  source_position bigint NOT NULL,
  created_at      bigint NOT NULL,
  done_at         bigint
);
CREATE INDEX salvage_outbox_due ON salvage_outbox (state, due_at);
"#,
    },
    Migration {
        version: 4,
        name: "projections: orders, subscriptions, pending salvages",
        sqlite: r#"
CREATE TABLE salvage_order_view (
  order_id         TEXT PRIMARY KEY,
  order_type       TEXT NOT NULL,
  status           TEXT NOT NULL,
  state            TEXT NOT NULL,
  last_sequence    INTEGER NOT NULL,
  updated_position INTEGER NOT NULL
);
CREATE TABLE salvage_subscription_view (
  subscription_id  TEXT PRIMARY KEY,
  status           TEXT NOT NULL,
  billing_gateway  TEXT,
  cycle            INTEGER NOT NULL,
  next_bill_at     INTEGER,
  state            TEXT NOT NULL,
  last_sequence    INTEGER NOT NULL,
  updated_position INTEGER NOT NULL
);
CREATE TABLE salvage_pending_salvage_view (
  order_id            TEXT PRIMARY KEY,
  attempt             INTEGER NOT NULL,
  route               TEXT NOT NULL,
  salvage_state       TEXT NOT NULL,
  expires_at          INTEGER,
  flexfactor_order_id TEXT,
  updated_position    INTEGER NOT NULL
);
CREATE INDEX salvage_pending_salvage_expiry ON salvage_pending_salvage_view (expires_at);
"#,
        postgres: r#"
CREATE TABLE salvage_order_view (
  order_id         text PRIMARY KEY,
  order_type       text NOT NULL,
  status           text NOT NULL,
  state            text NOT NULL,
  last_sequence    bigint NOT NULL,
  updated_position bigint NOT NULL
);
CREATE TABLE salvage_subscription_view (
  subscription_id  text PRIMARY KEY,
  status           text NOT NULL,
  billing_gateway  text,
  cycle            bigint NOT NULL,
  next_bill_at     bigint,
  state            text NOT NULL,
  last_sequence    bigint NOT NULL,
  updated_position bigint NOT NULL
);
CREATE TABLE salvage_pending_salvage_view (
  order_id            text PRIMARY KEY,
  attempt             bigint NOT NULL,
  route               text NOT NULL,
  salvage_state       text NOT NULL,
  expires_at          bigint,
  flexfactor_order_id text,
  updated_position    bigint NOT NULL
);
CREATE INDEX salvage_pending_salvage_expiry ON salvage_pending_salvage_view (expires_at);
"#,
    },
    Migration {
        version: 5,
        name: "webhook bookkeeping: deliveries, nonces, deliveries for unknown orders",
        sqlite: r#"
CREATE TABLE salvage_webhook_deliveries (
  delivery_key        TEXT PRIMARY KEY,
  event               TEXT NOT NULL,
  order_id            TEXT,
  flexfactor_order_id TEXT,
  received_at         INTEGER NOT NULL,
  outcome             TEXT NOT NULL
);
CREATE TABLE salvage_webhook_nonces (
  nonce   TEXT PRIMARY KEY,
  seen_at INTEGER NOT NULL
);
CREATE INDEX salvage_webhook_nonces_seen ON salvage_webhook_nonces (seen_at);
CREATE TABLE salvage_unmatched_deliveries (
  delivery_key        TEXT PRIMARY KEY,
  event               TEXT NOT NULL,
  order_id            TEXT,
  flexfactor_order_id TEXT,
  body                TEXT NOT NULL,
  received_at         INTEGER NOT NULL,
  resolved_at         INTEGER
);
"#,
        postgres: r#"
CREATE TABLE salvage_webhook_deliveries (
  delivery_key        text PRIMARY KEY,
  event               text NOT NULL,
  order_id            text,
  flexfactor_order_id text,
  received_at         bigint NOT NULL,
  outcome             text NOT NULL
);
CREATE TABLE salvage_webhook_nonces (
  nonce   text PRIMARY KEY,
  seen_at bigint NOT NULL
);
CREATE INDEX salvage_webhook_nonces_seen ON salvage_webhook_nonces (seen_at);
CREATE TABLE salvage_unmatched_deliveries (
  delivery_key        text PRIMARY KEY,
  event               text NOT NULL,
  order_id            text,
  flexfactor_order_id text,
  body                text NOT NULL,
  received_at         bigint NOT NULL,
  resolved_at         bigint
);
"#,
    },
    Migration {
        version: 6,
        name: "ordered event log: positions after commit (PostgreSQL), a plain key (SQLite)",
        // SQLite: one writer at a time, so a trigger filling the log in the committing
        // transaction is in commit order already. The key becomes a plain INTEGER PRIMARY KEY
        // (max + 1; rows are never deleted, so it only grows) instead of AUTOINCREMENT, and the
        // redundant unique index goes: readers join from the log to the events' primary key.
        sqlite: r#"
CREATE TABLE salvage_event_log_v6 (
  position       INTEGER PRIMARY KEY,
  aggregate_type TEXT NOT NULL,
  aggregate_id   TEXT NOT NULL,
  sequence       INTEGER NOT NULL
);
INSERT INTO salvage_event_log_v6 (position, aggregate_type, aggregate_id, sequence)
  SELECT position, aggregate_type, aggregate_id, sequence FROM salvage_event_log ORDER BY position;
DROP TRIGGER salvage_event_log_append;
DROP TABLE salvage_event_log;
ALTER TABLE salvage_event_log_v6 RENAME TO salvage_event_log;
CREATE TRIGGER salvage_event_log_append AFTER INSERT ON events
BEGIN
  INSERT INTO salvage_event_log (aggregate_type, aggregate_id, sequence)
  VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
END;
"#,
        // PostgreSQL: no lock on the write path any more. Every event row records the id of
        // the transaction that wrote it (`log_tx`) and a draw from a sequence (`log_seq`), both
        // column defaults. The sequencer (`event_log::sequence`) gives log positions, after
        // commit, to the rows whose transaction is older than every transaction still running
        // (`pg_snapshot_xmin`), in (log_tx, log_seq) order: a transaction still running has an
        // id at or above that horizon, so nothing can later appear before what was sequenced.
        // Rows logged before this migration keep their positions (their log_tx is NULL).
        postgres: r#"
DROP TRIGGER salvage_event_log_append ON events;
DROP FUNCTION salvage_event_log_append();
CREATE SEQUENCE salvage_event_write_seq;
ALTER TABLE events ADD COLUMN log_tx xid8, ADD COLUMN log_seq bigint;
ALTER TABLE events
  ALTER COLUMN log_tx SET DEFAULT pg_current_xact_id(),
  ALTER COLUMN log_seq SET DEFAULT nextval('salvage_event_write_seq');
CREATE INDEX salvage_events_write_order ON events (log_tx, log_seq);
CREATE TABLE salvage_log_sequencer (
  id            integer PRIMARY KEY CHECK (id = 1),
  last_tx       xid8 NOT NULL,
  last_seq      bigint NOT NULL,
  last_position bigint NOT NULL
);
INSERT INTO salvage_log_sequencer (id, last_tx, last_seq, last_position)
  SELECT 1, '0'::xid8, 0, COALESCE(MAX(position), 0) FROM salvage_event_log;
CREATE FUNCTION salvage_sequence_log(
  max_rows integer, OUT sequenced bigint, OUT horizon xid8, OUT next_xid xid8
) LANGUAGE plpgsql AS $fn$
BEGIN
  -- One sequencer at a time; each statement below takes its snapshot after this lock.
  PERFORM pg_advisory_xact_lock(1511522305);
  SELECT pg_snapshot_xmin(pg_current_snapshot()), pg_snapshot_xmax(pg_current_snapshot())
    INTO horizon, next_xid;
  WITH w AS (
    SELECT last_tx, last_seq, last_position FROM salvage_log_sequencer WHERE id = 1
  ), batch AS (
    SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.log_tx, e.log_seq,
           w.last_position + row_number() OVER (ORDER BY e.log_tx, e.log_seq) AS position
      FROM w, events e
     WHERE (e.log_tx, e.log_seq) > (w.last_tx, w.last_seq)
       AND e.log_tx < horizon
     ORDER BY e.log_tx, e.log_seq
     LIMIT max_rows
  ), ins AS (
    INSERT INTO salvage_event_log (position, aggregate_type, aggregate_id, sequence)
    SELECT position, aggregate_type, aggregate_id, sequence FROM batch
    RETURNING position
  ), upd AS (
    UPDATE salvage_log_sequencer s
       SET last_tx = b.log_tx, last_seq = b.log_seq, last_position = b.position
      FROM (SELECT log_tx, log_seq, position FROM batch ORDER BY position DESC LIMIT 1) b
     WHERE s.id = 1
  )
  SELECT count(*) INTO sequenced FROM ins;
END
$fn$;
"#,
    },
    Migration {
        version: 7,
        name: "guarded commits in one statement (PostgreSQL)",
        sqlite: "SELECT 1;",
        // `store::guarded_commit` sends a command's events and the writes that commit with them
        // as one statement; a guarded write that changed no row calls this with `ok = false`,
        // which undoes the whole statement.
        postgres: r#"
CREATE FUNCTION salvage_guard(ok boolean, which integer) RETURNS integer
LANGUAGE plpgsql AS $fn$
BEGIN
  IF NOT ok THEN
    RAISE EXCEPTION 'salvage guarded write %', which USING ERRCODE = 'SG001';
  END IF;
  RETURN 1;
END
$fn$;
"#,
    },
    Migration {
        version: 8,
        name: "the log sequencer scans from its watermark (PostgreSQL)",
        sqlite: "SELECT 1;",
        // Version 6 joined the watermark row into the batch query, so the function's cached
        // (generic) plan scanned every event below the horizon and filtered on the watermark:
        // each call cost time in proportion to the whole events table. Read into variables, the
        // watermark is an index bound, and a call costs what it sequences.
        postgres: r#"
CREATE OR REPLACE FUNCTION salvage_sequence_log(
  max_rows integer, OUT sequenced bigint, OUT horizon xid8, OUT next_xid xid8
) LANGUAGE plpgsql AS $fn$
DECLARE
  from_tx xid8;
  from_seq bigint;
  from_position bigint;
BEGIN
  -- One sequencer at a time; each statement below takes its snapshot after this lock.
  PERFORM pg_advisory_xact_lock(1511522305);
  SELECT pg_snapshot_xmin(pg_current_snapshot()), pg_snapshot_xmax(pg_current_snapshot())
    INTO horizon, next_xid;
  SELECT last_tx, last_seq, last_position INTO from_tx, from_seq, from_position
    FROM salvage_log_sequencer WHERE id = 1;
  WITH batch AS (
    SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.log_tx, e.log_seq,
           from_position + row_number() OVER (ORDER BY e.log_tx, e.log_seq) AS position
      FROM events e
     WHERE (e.log_tx, e.log_seq) > (from_tx, from_seq)
       AND e.log_tx < horizon
     ORDER BY e.log_tx, e.log_seq
     LIMIT max_rows
  ), ins AS (
    INSERT INTO salvage_event_log (position, aggregate_type, aggregate_id, sequence)
    SELECT position, aggregate_type, aggregate_id, sequence FROM batch
    RETURNING position
  ), upd AS (
    UPDATE salvage_log_sequencer s
       SET last_tx = b.log_tx, last_seq = b.log_seq, last_position = b.position
      FROM (SELECT log_tx, log_seq, position FROM batch ORDER BY position DESC LIMIT 1) b
     WHERE s.id = 1
  )
  SELECT count(*) INTO sequenced FROM ins;
END
$fn$;
"#,
    },
    Migration {
        version: 9,
        name:
            "the views name their card (fingerprint, else token) for the network rules' ledger (N8)",
        sqlite: r#"
ALTER TABLE salvage_order_view ADD COLUMN card_token TEXT;
ALTER TABLE salvage_subscription_view ADD COLUMN card_token TEXT;
UPDATE salvage_order_view SET card_token = coalesce(json_extract(state, '$.details.card.fingerprint'), json_extract(state, '$.details.card.token'));
UPDATE salvage_subscription_view SET card_token = json_extract(state, '$.card.token');
CREATE INDEX salvage_order_view_card ON salvage_order_view (card_token);
CREATE INDEX salvage_subscription_view_card ON salvage_subscription_view (card_token);
"#,
        postgres: r#"
ALTER TABLE salvage_order_view ADD COLUMN card_token TEXT;
ALTER TABLE salvage_subscription_view ADD COLUMN card_token TEXT;
UPDATE salvage_order_view SET card_token = coalesce(state::json #>> '{details,card,fingerprint}', state::json #>> '{details,card,token}');
UPDATE salvage_subscription_view SET card_token = state::json #>> '{card,token}';
CREATE INDEX salvage_order_view_card ON salvage_order_view (card_token);
CREATE INDEX salvage_subscription_view_card ON salvage_subscription_view (card_token);
"#,
    },
    Migration {
        version: 10,
        name: "the console's read side: order columns, the hourly and daily salvage funnel, refused webhooks (views rebuilt from the log)",
        sqlite: r#"
ALTER TABLE salvage_order_view ADD COLUMN placed_at INTEGER;
ALTER TABLE salvage_order_view ADD COLUMN declined_at INTEGER;
ALTER TABLE salvage_order_view ADD COLUMN customer_email TEXT;
ALTER TABLE salvage_order_view ADD COLUMN customer_name TEXT;
ALTER TABLE salvage_order_view ADD COLUMN subscription_id TEXT;
ALTER TABLE salvage_order_view ADD COLUMN gateway TEXT;
ALTER TABLE salvage_order_view ADD COLUMN amount_minor INTEGER;
ALTER TABLE salvage_order_view ADD COLUMN currency TEXT;
ALTER TABLE salvage_order_view ADD COLUMN route TEXT;
ALTER TABLE salvage_order_view ADD COLUMN slot TEXT;
ALTER TABLE salvage_order_view ADD COLUMN outcome TEXT;
ALTER TABLE salvage_order_view ADD COLUMN expires_at INTEGER;
ALTER TABLE salvage_order_view ADD COLUMN card_bin TEXT;
ALTER TABLE salvage_order_view ADD COLUMN card_last4 TEXT;
CREATE INDEX salvage_order_view_placed ON salvage_order_view (placed_at, order_id);
CREATE INDEX salvage_order_view_amount ON salvage_order_view (amount_minor, order_id);
CREATE INDEX salvage_order_view_subscription ON salvage_order_view (subscription_id);
CREATE INDEX salvage_order_view_email ON salvage_order_view (customer_email);
CREATE INDEX salvage_order_view_outcome ON salvage_order_view (outcome, placed_at, order_id);
CREATE TABLE salvage_funnel_hourly (
  hour         INTEGER NOT NULL,
  route        TEXT NOT NULL,
  slot         TEXT NOT NULL,
  currency     TEXT NOT NULL,
  outcome      TEXT NOT NULL,
  orders       INTEGER NOT NULL,
  amount_minor INTEGER NOT NULL,
  PRIMARY KEY (hour, route, slot, currency, outcome)
);
CREATE TABLE salvage_funnel_daily (
  day          INTEGER NOT NULL,
  route        TEXT NOT NULL,
  slot         TEXT NOT NULL,
  currency     TEXT NOT NULL,
  outcome      TEXT NOT NULL,
  orders       INTEGER NOT NULL,
  amount_minor INTEGER NOT NULL,
  PRIMARY KEY (day, route, slot, currency, outcome)
);
CREATE TABLE salvage_webhook_refusals (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at INTEGER NOT NULL,
  reason      TEXT NOT NULL,
  detail      TEXT NOT NULL,
  nonce       TEXT NOT NULL,
  event       TEXT NOT NULL,
  body_excerpt TEXT NOT NULL
);
DELETE FROM salvage_order_view;
DELETE FROM salvage_subscription_view;
DELETE FROM salvage_pending_salvage_view;
UPDATE salvage_checkpoints SET position = 0 WHERE name = 'projections';
"#,
        postgres: r#"
ALTER TABLE salvage_order_view ADD COLUMN placed_at bigint;
ALTER TABLE salvage_order_view ADD COLUMN declined_at bigint;
ALTER TABLE salvage_order_view ADD COLUMN customer_email text;
ALTER TABLE salvage_order_view ADD COLUMN customer_name text;
ALTER TABLE salvage_order_view ADD COLUMN subscription_id text;
ALTER TABLE salvage_order_view ADD COLUMN gateway text;
ALTER TABLE salvage_order_view ADD COLUMN amount_minor bigint;
ALTER TABLE salvage_order_view ADD COLUMN currency text;
ALTER TABLE salvage_order_view ADD COLUMN route text;
ALTER TABLE salvage_order_view ADD COLUMN slot text;
ALTER TABLE salvage_order_view ADD COLUMN outcome text;
ALTER TABLE salvage_order_view ADD COLUMN expires_at bigint;
ALTER TABLE salvage_order_view ADD COLUMN card_bin text;
ALTER TABLE salvage_order_view ADD COLUMN card_last4 text;
CREATE INDEX salvage_order_view_placed ON salvage_order_view (placed_at, order_id);
CREATE INDEX salvage_order_view_amount ON salvage_order_view (amount_minor, order_id);
CREATE INDEX salvage_order_view_subscription ON salvage_order_view (subscription_id);
CREATE INDEX salvage_order_view_email ON salvage_order_view (customer_email);
CREATE INDEX salvage_order_view_outcome ON salvage_order_view (outcome, placed_at, order_id);
CREATE TABLE salvage_funnel_hourly (
  hour         bigint NOT NULL,
  route        text NOT NULL,
  slot         text NOT NULL,
  currency     text NOT NULL,
  outcome      text NOT NULL,
  orders       bigint NOT NULL,
  amount_minor bigint NOT NULL,
  PRIMARY KEY (hour, route, slot, currency, outcome)
);
CREATE TABLE salvage_funnel_daily (
  day          bigint NOT NULL,
  route        text NOT NULL,
  slot         text NOT NULL,
  currency     text NOT NULL,
  outcome      text NOT NULL,
  orders       bigint NOT NULL,
  amount_minor bigint NOT NULL,
  PRIMARY KEY (day, route, slot, currency, outcome)
);
CREATE TABLE salvage_webhook_refusals (
  id          bigserial PRIMARY KEY,
  received_at bigint NOT NULL,
  reason      text NOT NULL,
  detail      text NOT NULL,
  nonce       text NOT NULL,
  event       text NOT NULL,
  body_excerpt text NOT NULL
);
DELETE FROM salvage_order_view;
DELETE FROM salvage_subscription_view;
DELETE FROM salvage_pending_salvage_view;
UPDATE salvage_checkpoints SET position = 0 WHERE name = 'projections';
"#,
    },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Applies every migration not applied yet. Returns the versions applied now.
pub async fn migrate(backend: &Backend) -> Result<Vec<i64>, StoreError> {
    migrate_up_to(backend, i64::MAX).await
}

/// Applies the migrations up to version `last` only: for tests of an upgrade from an older
/// schema.
#[doc(hidden)]
pub async fn migrate_up_to(backend: &Backend, last: i64) -> Result<Vec<i64>, StoreError> {
    let mut applied_now = Vec::new();
    match backend {
        Backend::Sqlite(pool) => {
            sqlx::raw_sql(TABLE).execute(pool).await?;
            for m in MIGRATIONS {
                if m.version > last {
                    continue;
                }
                if apply_sqlite(pool, m).await? {
                    applied_now.push(m.version);
                }
            }
        }
        Backend::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
            let result = apply_postgres(&mut conn, last).await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
            applied_now = result?;
        }
    }
    Ok(applied_now)
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS salvage_schema_migrations (
    version bigint PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)";

const RECORD: &str = "INSERT INTO salvage_schema_migrations (version, name, applied_at) \
     VALUES ($1, $2, CAST(CURRENT_TIMESTAMP AS TEXT))";

const DONE: &str = "SELECT version FROM salvage_schema_migrations WHERE version = $1";

/// Applies `m` on SQLite in its own transaction unless it was; whether it was applied now.
async fn apply_sqlite(pool: &sqlx::SqlitePool, m: &'static Migration) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let done: Option<i64> = sqlx::query_scalar(DONE)
        .bind(m.version)
        .fetch_optional(&mut *tx)
        .await?;
    if done.is_some() {
        return Ok(false);
    }
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.sqlite))
        .await
        .map_err(|e| fail(m, e))?;
    sqlx::query(RECORD)
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| fail(m, e))?;
    tx.commit().await?;
    Ok(true)
}

/// Applies the PostgreSQL migrations up to `last` on `conn` (which holds the migration lock),
/// each in its own transaction; the versions applied now.
async fn apply_postgres(conn: &mut sqlx::PgConnection, last: i64) -> Result<Vec<i64>, StoreError> {
    let mut applied_now = Vec::new();
    sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(TABLE)).await?;
    for m in MIGRATIONS {
        if m.version > last {
            continue;
        }
        let done: Option<i64> = sqlx::query_scalar(DONE)
            .bind(m.version)
            .fetch_optional(&mut *conn)
            .await?;
        if done.is_some() {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.postgres))
            .await
            .map_err(|e| fail(m, e))?;
        sqlx::query(RECORD)
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(m, e))?;
        tx.commit().await?;
        applied_now.push(m.version);
    }
    Ok(applied_now)
}

/// The schema version in the database (0 before any migration).
pub async fn current_version(backend: &Backend) -> Result<i64, StoreError> {
    let v: Option<i64> = crate::on_pool!(backend, pool => {
        sqlx::query_scalar("SELECT MAX(version) FROM salvage_schema_migrations")
            .fetch_one(pool)
            .await
            .ok()
            .flatten()
    });
    Ok(v.unwrap_or(0))
}

fn fail(m: &Migration, e: sqlx::Error) -> StoreError {
    StoreError::Migration {
        version: m.version,
        name: m.name,
        reason: e.to_string(),
    }
}
