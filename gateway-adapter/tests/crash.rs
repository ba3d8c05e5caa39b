//! The crash test: a child process (`salvage-crash-child`) places orders and dispatches their
//! effects to a local endpoint; it is killed with SIGKILL at many random points and restarted,
//! on SQLite and on PostgreSQL. At the end: every order it acknowledged is stored, every effect
//! the log calls for reached the endpoint, and no effect was performed twice (the endpoint
//! applies each idempotency key once and counts every call; repeated calls of one key are only
//! the ones a kill interrupted).

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use support::*;

type Calls = Arc<Mutex<HashMap<String, usize>>>;

async fn endpoint() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .route(
            "/effects",
            post(
                |State(calls): State<Calls>, Json(body): Json<serde_json::Value>| async move {
                    let key = body["key"].as_str().unwrap_or_default().to_string();
                    *calls.lock().unwrap().entry(key).or_default() += 1;
                    "ok"
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/effects"), calls)
}

/// A small deterministic generator for kill delays.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

fn child(place: &Place, endpoint: &str, orders: usize) -> std::process::Child {
    let (url, schema) = match place {
        Place::Sqlite(url) => (url.clone(), "-".to_string()),
        Place::Postgres(schema) => (postgres_url(), schema.clone()),
    };
    Command::new(env!("CARGO_BIN_EXE_salvage-crash-child"))
        .args([url, schema, endpoint.to_string(), orders.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child")
}

async fn crash_test(place: Place, kills: usize, seed: u64) {
    const ORDERS: usize = 240;
    // Create the schema once before the children race to migrate it.
    drop(place.open().await);
    let (url, calls) = endpoint().await;
    let mut rng = Lcg(seed);
    let mut acked = std::collections::BTreeSet::new();
    let mut survived = 0;
    for _ in 0..kills {
        let mut c = child(&place, &url, ORDERS);
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let delay = rng.next(80, 700);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let finished = c.try_wait().unwrap().is_some();
        c.kill().ok(); // SIGKILL
        c.wait().unwrap();
        let lines = reader.join().unwrap();
        if !finished {
            survived += 1;
        }
        acked.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("ack ").map(str::to_string)),
        );
    }
    // The last run goes to the end.
    let mut c = child(&place, &url, ORDERS);
    let stdout = c.stdout.take().unwrap();
    let started = Instant::now();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = c.wait().unwrap();
    assert!(
        status.success(),
        "the final run failed after {:?}",
        started.elapsed()
    );
    assert_eq!(lines.last().map(String::as_str), Some("done"));

    let store = place.open().await;
    // Every acknowledged order is stored (and every order, since the last run finished).
    for id in &acked {
        let (_, n) = store.orders.load(id).await.unwrap();
        assert!(n > 0, "acknowledged order {id} was lost");
    }
    for i in 0..ORDERS {
        let id = format!("crash-{i}");
        let (order, n) = store.orders.load(&id).await.unwrap();
        assert!(n > 0, "{id} missing");
        if i % 3 == 0 {
            let s = order.salvage.expect("rerun submitted");
            assert_eq!(s.attempt, 1, "{id}: submitted exactly once (F3)");
        }
    }
    // Every effect row the log produced was delivered, each key once applied.
    let effect_keys: Vec<String> = salvage_gateway::on_pool!(&store.backend, pool => {
        sqlx::query_scalar("SELECT key FROM salvage_outbox WHERE kind = 'effect' AND due_at <= $1 ORDER BY key")
            .bind(chrono::Utc::now().timestamp_millis())
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let undone: i64 = salvage_gateway::on_pool!(&store.backend, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM salvage_outbox WHERE state <> 'done' AND due_at <= $1")
            .bind(chrono::Utc::now().timestamp_millis())
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(undone, 0, "every due row is done");
    let calls = calls.lock().unwrap().clone();
    let mut delivered: Vec<String> = calls.keys().cloned().collect();
    delivered.sort();
    assert_eq!(
        delivered, effect_keys,
        "each effect reached the endpoint, and nothing else"
    );
    // 2 effects per approved order (completion notice) and per rerun (submission); none lost.
    assert_eq!(effect_keys.len(), ORDERS);
    let total: usize = calls.values().sum();
    let repeated = total - calls.len();
    // A key is sent again only when a kill interrupted it between the call and its record:
    // at most one batch of claimed rows per kill.
    assert!(
        repeated <= kills * 8,
        "{repeated} repeated calls for {kills} kills"
    );
    println!(
        "crash test ({}): survived {survived} kills, {} acknowledged orders, {} effects delivered, {repeated} replays under the same key",
        match place { Place::Sqlite(_) => "sqlite", Place::Postgres(_) => "postgres" },
        acked.len(),
        calls.len()
    );
    place.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_at_random_points_loses_nothing_and_doubles_nothing() {
    crash_test(Place::new_sqlite(), 15, 0x5a17_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_at_random_points_loses_nothing_and_doubles_nothing() {
    crash_test(Place::new_postgres(), 15, 0x5a17_0002).await;
}
