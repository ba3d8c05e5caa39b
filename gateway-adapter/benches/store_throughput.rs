//! Commands per second with projections caught up, on SQLite and on PostgreSQL, beside the bare
//! sqlite-es / postgres-es repositories driving a trivial aggregate, in the same run and on the
//! same connection pool. Run: `cargo bench -p salvage-gateway --bench store_throughput`
//! (PostgreSQL from SALVAGE_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test;
//! SALVAGE_BENCH_COMMANDS sets the number of commands per measurement, default 1000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework, DomainEvent};
use postgres_es::PostgresEventRepository;
use salvage_domain::order::{FlexFactorResult, OrderCommand, ResultSource};
use salvage_domain::samples::sale;
use salvage_domain::{DomainServices, ManualClock, Setup};
use salvage_gateway::store::{projection, Backend, Store};
use serde::{Deserialize, Serialize};
use sqlite_es::SqliteEventRepository;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Incremented {
    by: u64,
}

impl DomainEvent for Incremented {
    fn event_type(&self) -> String {
        "Incremented".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Counter {
    const TYPE: &'static str = "bench_counter";
    type Command = u64;
    type Event = Incremented;
    type Error = Never;
    type Services = ();
    async fn handle(&mut self, by: u64, _: &(), sink: &EventSink<Self>) -> Result<(), Never> {
        sink.write(Incremented { by }, self).await;
        Ok(())
    }
    fn apply(&mut self, e: Incremented) {
        self.n += e.by;
    }
}

async fn bare(backend: &Backend, n: usize, tag: &str) -> f64 {
    let started = Instant::now();
    match backend {
        Backend::Sqlite(pool) => {
            let cqrs = CqrsFramework::new(
                PersistedEventStore::new_event_store(SqliteEventRepository::new(pool.clone())),
                Vec::<Box<dyn cqrs_es::Query<Counter>>>::new(),
                (),
            );
            for i in 0..n {
                cqrs.execute(&format!("{tag}-{i}"), 1)
                    .await
                    .expect("bare command");
            }
        }
        Backend::Postgres(pool) => {
            let cqrs = CqrsFramework::new(
                PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone())),
                Vec::<Box<dyn cqrs_es::Query<Counter>>>::new(),
                (),
            );
            for i in 0..n {
                cqrs.execute(&format!("{tag}-{i}"), 1)
                    .await
                    .expect("bare command");
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Our stack: a domain command through the store (with the ordered log), then projections
/// caught up. `one_event` uses a command that adds one event to an existing order (like the
/// trivial aggregate); otherwise each command places a new order (three events).
async fn salvage(
    store: &Store,
    services: &DomainServices,
    n: usize,
    tag: &str,
    one_event: bool,
) -> f64 {
    if one_event {
        store
            .orders
            .execute(tag, sale(tag, true), services, HashMap::new())
            .await
            .expect("place");
        projection::catch_up(&store.backend)
            .await
            .expect("catch up");
    }
    let started = Instant::now();
    for i in 0..n {
        if one_event {
            let cmd = OrderCommand::ApplyFlexFactorResult {
                result: FlexFactorResult::Refunded,
                source: ResultSource::StatusPoll,
            };
            let id = format!("{tag}-{}", i % 50);
            if i < 50 {
                store
                    .orders
                    .execute(&id, sale(&id, true), services, HashMap::new())
                    .await
                    .expect("place");
            }
            store
                .orders
                .execute(&id, cmd, services, HashMap::new())
                .await
                .expect("command");
        } else {
            let id = format!("{tag}-{i}");
            store
                .orders
                .execute(&id, sale(&id, true), services, HashMap::new())
                .await
                .expect("command");
        }
        if i % 100 == 99 {
            projection::catch_up(&store.backend)
                .await
                .expect("catch up");
        }
    }
    projection::catch_up(&store.backend)
        .await
        .expect("catch up");
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SALVAGE_BENCH_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let setup = Setup::from_toml_str(include_str!("../../examples/salvage.toml")).expect("setup");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let services = DomainServices::new(Arc::new(setup), clock);
    let dir = std::env::temp_dir().join(format!("salvage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pg_url = std::env::var("SALVAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("salvage_bench_{}", std::process::id());
    let targets = [
        (
            "SQLite (WAL, synchronous=FULL)",
            format!("sqlite://{}", dir.join("bench.db").display()),
            None,
        ),
        (
            "PostgreSQL 15 (loopback)",
            pg_url.clone(),
            Some(schema.clone()),
        ),
    ];
    println!("| store | bare cqrs-es, trivial aggregate (cmd/s) | Salvage, 1-event command + projections (cmd/s) | ratio | Salvage, place order (3 events) + projections (cmd/s) | ratio |");
    println!("|---|---|---|---|---|---|");
    for (name, url, schema) in targets {
        let store = match Store::open_in_schema(&url, schema.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                println!("| {name} | not run: {e} | | | | |");
                continue;
            }
        };
        // Warm up both paths, then measure alternately and keep the best of three.
        bare(&store.backend, 50, "warm").await;
        salvage(&store, &services, 50, "warm", false).await;
        let (mut b, mut one, mut three) = (0f64, 0f64, 0f64);
        for round in 0..3 {
            b = b.max(bare(&store.backend, n, &format!("b{round}")).await);
            one = one.max(salvage(&store, &services, n, &format!("one{round}"), true).await);
            three = three.max(salvage(&store, &services, n, &format!("three{round}"), false).await);
        }
        println!(
            "| {name} | {b:.0} | {one:.0} | {:.0}% | {three:.0} | {:.0}% |",
            100.0 * one / b,
            100.0 * three / b
        );
        if let Backend::Postgres(pool) = &store.backend {
            let _ = sqlx::raw_sql(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                schema.unwrap_or_default()
            ))
            .execute(pool)
            .await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
