//! Verified FlexFactor deliveries per second, and their latency, through the real service on
//! loopback, on SQLite and on PostgreSQL, beside the same machine's pgbench single-row insert
//! TPS as the ceiling. Each delivery is signed (fresh nonce) and completes a pending salvage.
//!
//! Then a burst: SALVAGE_BENCH_BURST deliveries (default 20,000) offered at once over
//! SALVAGE_BENCH_BURST_CONCURRENCY connections (default 256): the time until every one is
//! acknowledged, the p99 of acknowledgement, how many answered 5xx (or anything but 2xx), and
//! the time until the background work (views, outbox) has caught up with them.
//!
//! Run: `cargo bench -p salvage-gateway --bench service_load`
//! (PostgreSQL from SALVAGE_TEST_POSTGRES_URL; SALVAGE_BENCH_DELIVERIES sets the deliveries per
//! measurement, default 2000; SALVAGE_BENCH_CONCURRENCY the load generator's connections,
//! default 16; SALVAGE_BENCH_STORES `sqlite`, `postgres` or both, the default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use salvage_domain::order::{AttemptResult, OrderCommand, PlaceOrder};
use salvage_domain::{Clock, DeclineFacts, DeclineType, SystemClock};
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use secrecy::SecretString;

/// The allocator of the `salvage` binary that serves in production (src/main.rs), so that the
/// service is measured as it ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLE: &str = include_str!("../../examples/salvage.toml");
const HMAC: &str =
    "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";

fn place(order: &str) -> OrderCommand {
    OrderCommand::Place(Box::new(PlaceOrder {
        order_id: order.into(),
        order_type: salvage_domain::OrderType::NewSale,
        campaign_id: "skincare".into(),
        subscription_id: None,
        ip_address: Some("203.0.113.7".into()),
        amount: salvage_domain::Money {
            amount_minor: 1999,
            currency: salvage_domain::Currency::USD,
        },
        customer: Default::default(),
        // Each order its own card: one card declined thousands of times a minute is not traffic,
        // and the card-network rules (N1-N9) would read and hold back every later attempt on it.
        card: salvage_domain::customer::CardToken {
            token: format!("tok_{order}"),
            bin: "411111".into(),
            last4: "1111".into(),
            exp_month: 9,
            exp_year: 2030,
            holder: "A B".into(),
            fingerprint: None,
        },
        items: vec![],
        gateway: "stripe-eu".into(),
        gateway_profile: None,
        result: AttemptResult::Declined(DeclineFacts {
            gateway: "stripe-eu".into(),
            response_code: "91".into(),
            response_message: "Issuer unavailable".into(),
            processor_verdict: DeclineType::Soft,
            visa_category: None,
            mastercard_advice_code: None,
        }),
    }))
}

/// FlexFactor as far as the bench needs it: a token, and every `/evaluate` answered
/// "submitted" at once, so that the background work (projector, dispatcher, the submissions)
/// runs at the service's own pace, as it does beside a FlexFactor that answers.
async fn flexfactor_stub() -> String {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/v1/oauth2/token",
            post(|| async {
                let expires = SystemClock.now().timestamp_millis() + 3_600_000;
                axum::Json(serde_json::json!({
                    "accessToken": "bench-token", "refreshToken": "bench-refresh",
                    "expires": expires, "success": true
                }))
            }),
        )
        .route(
            "/v1/evaluate",
            post(|body: axum::Json<serde_json::Value>| async move {
                let id = body
                    .get("orderId")
                    .and_then(|v| v.as_str())
                    .unwrap_or("x")
                    .to_string();
                axum::Json(serde_json::json!({
                    "orderSessionKey": format!("ff-{id}"), "orderId": format!("ff-{id}"),
                    "success": true, "result": "Success", "status": "SUBMITTED",
                    "errors": [], "customProperties": {}
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("stub listener");
    let addr = listener.local_addr().expect("stub address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}

async fn service(store_url: &str, schema: Option<String>) -> RunningService {
    let flexfactor = flexfactor_stub().await;
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{store_url}\"\napi_keys = [\"bench-key-0123456789\"]\n\
         [flexfactor]\nbase_url = \"{flexfactor}\"\nrequest_timeout_ms = 2000\n"
    );
    let config = ServiceConfig::from_str(&text, std::path::Path::new("bench.toml"), &|_| None)
        .expect("config");
    let mut options = ServeOptions::new(Arc::new(SystemClock));
    options.pg_schema = schema;
    start(config, options).await.expect("service")
}

/// Orders with a pending rerun salvage, ready to be completed by a delivery (placed by eight
/// tasks at once, so that a burst's orders are ready in seconds).
async fn pending_orders(svc: &RunningService, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let chunk = n.div_ceil(8).max(1);
    let mut tasks = Vec::new();
    for part in ids.chunks(chunk) {
        let engine = svc.state.engine.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            for id in part {
                engine
                    .order(&id.as_str().into(), place(&id))
                    .await
                    .expect("place");
                engine
                    .order(
                        &id.as_str().into(),
                        OrderCommand::RequestRerun {
                            gateway: "flexfactor".into(),
                        },
                    )
                    .await
                    .expect("rerun");
            }
        }));
    }
    for t in tasks {
        t.await.expect("placing task");
    }
    ids
}

struct Signed {
    body: String,
    headers: Vec<(&'static str, String)>,
}

fn sign_all(svc: &RunningService, ids: &[String]) -> Vec<Signed> {
    let key = WebhookKey::from_base64(&SecretString::from(HMAC)).expect("key");
    let host = svc.addr.to_string();
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let body = format!(
                r#"{{"Event":"order.completed","TimeStamp":"2026-03-20T17:16:40Z","EventData":null,"ExternalOrderId":"{id}","OrderId":"ff-{id}","ConfirmationId":"C{i}","IsTestMode":true,"IsResent":false}}"#
            );
            let date = format_fc_date(SystemClock.now());
            let signed = sign_webhook(&key, &host, &format!("nonce-{id}"), &date, body.as_bytes());
            let headers = signed.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
            Signed { body, headers }
        })
        .collect()
}

/// What a load run saw.
struct Run {
    /// Acknowledged deliveries per second.
    per_second: f64,
    /// Each acknowledged delivery's latency (ms), sorted.
    latencies: Vec<f64>,
    /// From the first send to the last answer.
    elapsed: Duration,
    /// Answers other than 2xx: (status, count).
    refused: std::collections::BTreeMap<u16, usize>,
}

/// Sends every delivery with `concurrency` connections, at most `rate` per second (0: as fast as
/// possible).
async fn load(url: &str, deliveries: Vec<Signed>, concurrency: usize, rate: f64) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let queue = Arc::new(tokio::sync::Mutex::new(deliveries.into_iter().enumerate()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, queue, url) = (client.clone(), queue.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut refused = Vec::new();
            loop {
                let next = queue.lock().await.next();
                let Some((i, d)) = next else { break };
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let mut req = client.post(&url).body(d.body);
                for (k, v) in &d.headers {
                    req = req.header(*k, v);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    Ok(r) => refused.push(r.status().as_u16()),
                    // The connection failed: counted as no answer (0).
                    Err(_) => refused.push(0),
                }
            }
            (lat, refused)
        }));
    }
    let mut all = Vec::new();
    let mut refused = std::collections::BTreeMap::new();
    for t in tasks {
        let (lat, r) = t.await.expect("task");
        all.extend(lat);
        for s in r {
            *refused.entry(s).or_insert(0) += 1;
        }
    }
    let elapsed = started.elapsed();
    all.sort_by(|a, b| a.total_cmp(b));
    Run {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        latencies: all,
        elapsed,
        refused,
    }
}

/// The group commit's figures from the service's metrics: commits, deliveries committed in
/// them, and the batches undone (each of their deliveries then stored alone).
async fn batch_figures(svc: &RunningService) -> String {
    let text = reqwest::get(format!("{}/metrics", svc.url()))
        .await
        .ok()
        .map(|r| r.text());
    let text = match text {
        Some(t) => t.await.unwrap_or_default(),
        None => String::new(),
    };
    let pick = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    };
    let mut out = pick("salvage_webhook_commit_batch_size_count");
    out.extend(pick("salvage_webhook_commit_batch_size_sum"));
    out.extend(pick("salvage_webhook_batches_undone_total"));
    if out.is_empty() {
        "no group-commit metrics (the code before)".into()
    } else {
        out.join("; ")
    }
}

/// Waits until the background work has caught up: the projector and the dispatcher with the
/// log, and no outbox row due.
async fn caught_up(svc: &RunningService) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let lag = salvage_gateway::store::console::lag(&svc.state.store.backend)
            .await
            .expect("lag");
        // The outbox too: what the events asked for (FlexFactor's calls) is done.
        let now = SystemClock.now().timestamp_millis();
        let due = salvage_gateway::store::outbox::stats(&svc.state.store.backend, now)
            .await
            .expect("outbox")
            .due;
        if due == 0
            && !lag.checkpoints.is_empty()
            && lag.checkpoints.iter().all(|(_, p)| *p >= lag.head)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the background work did not catch up: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn pgbench(url: &str) -> String {
    let script = std::env::temp_dir().join("salvage-pgbench.sql");
    if std::fs::write(&script, "INSERT INTO salvage_pgbench (v) VALUES (1);\n").is_err() {
        return "not run".into();
    }
    let setup = std::process::Command::new("psql")
        .args([url, "-q", "-c", "DROP TABLE IF EXISTS salvage_pgbench; CREATE TABLE salvage_pgbench (id bigserial PRIMARY KEY, v int)"])
        .output();
    if !setup.map(|o| o.status.success()).unwrap_or(false) {
        return "not run (psql failed)".into();
    }
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", "16", "-j", "2", "-T", "10", "-f"])
        .arg(&script)
        .arg(url)
        .output();
    let _ = std::process::Command::new("psql")
        .args([url, "-q", "-c", "DROP TABLE IF EXISTS salvage_pgbench"])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.starts_with("tps"))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("?").to_string())
            .unwrap_or_else(|| "?".into()),
        Err(_) => "not run (no pgbench)".into(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SALVAGE_BENCH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = std::env::var("SALVAGE_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let pg_url = std::env::var("SALVAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let burst: usize = std::env::var("SALVAGE_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let burst_concurrency: usize = std::env::var("SALVAGE_BENCH_BURST_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let stores = std::env::var("SALVAGE_BENCH_STORES").unwrap_or_else(|_| "both".into());
    let dir = std::env::temp_dir().join(format!("salvage-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let schema = format!("salvage_load_{}", std::process::id());
    let mut all = vec![
        (
            "SQLite (WAL, synchronous=FULL)",
            format!("sqlite://{}", dir.join("load.db").display()),
            None,
        ),
        (
            "PostgreSQL 15 (loopback)",
            pg_url.clone(),
            Some(schema.clone()),
        ),
    ];
    all.retain(|(name, _, _)| match stores.as_str() {
        "sqlite" => name.starts_with("SQLite"),
        "postgres" => name.starts_with("PostgreSQL"),
        _ => true,
    });
    let mut table = vec![
        format!("| store | max verified deliveries/s ({concurrency} connections) | p50 / p99 at max (ms) | rate for latency (/s) | p50 / p99 at that rate (ms) |"),
        "|---|---|---|---|---|".to_string(),
    ];
    let mut bursts = vec![
        format!("| store | burst | acknowledged in (s) | acknowledged/s | p50 / p99 of acknowledgement (ms) | not 2xx | caught up in (s) |"),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    for (name, url, schema) in all {
        let svc = service(&url, schema).await;
        let hook = format!("{}/webhooks/flexfactor", svc.url());
        let ids = pending_orders(&svc, "max", n).await;
        caught_up(&svc).await;
        let signed = sign_all(&svc, &ids);
        // Markers on stderr (unbuffered) for a profiler started from outside.
        eprintln!("phase: {name} at max rate");
        let max = load(&hook, signed, concurrency, 0.0).await;
        eprintln!("phase: done");
        assert!(
            max.refused.is_empty(),
            "deliveries refused: {:?}",
            max.refused
        );
        let half = (max.per_second / 2.0).max(1.0);
        let ids = pending_orders(&svc, "half", n / 2).await;
        caught_up(&svc).await;
        let at_half = load(&hook, sign_all(&svc, &ids), concurrency, half).await;
        assert!(
            at_half.refused.is_empty(),
            "deliveries refused: {:?}",
            at_half.refused
        );
        table.push(format!(
            "| {name} | {:.0} | {:.1} / {:.1} | {half:.0} | {:.1} / {:.1} |",
            max.per_second,
            pct(&max.latencies, 0.5),
            pct(&max.latencies, 0.99),
            pct(&at_half.latencies, 0.5),
            pct(&at_half.latencies, 0.99)
        ));
        println!("{}", table.last().map(String::as_str).unwrap_or(""));
        if burst > 0 {
            let ids = pending_orders(&svc, "burst", burst).await;
            caught_up(&svc).await;
            let signed = sign_all(&svc, &ids);
            eprintln!("phase: {name} burst");
            let offered = Instant::now();
            let b = load(&hook, signed, burst_concurrency, 0.0).await;
            caught_up(&svc).await;
            eprintln!("phase: done");
            let settled = offered.elapsed();
            let not_2xx: usize = b.refused.values().sum();
            bursts.push(format!(
                "| {name} | {burst} at once, {burst_concurrency} connections | {:.2} | {:.0} | {:.1} / {:.1} | {not_2xx}{} | {:.2} |",
                b.elapsed.as_secs_f64(),
                b.per_second,
                pct(&b.latencies, 0.5),
                pct(&b.latencies, 0.99),
                if b.refused.is_empty() { String::new() } else { format!(" {:?}", b.refused) },
                settled.as_secs_f64(),
            ));
            println!("{}", bursts.last().map(String::as_str).unwrap_or(""));
        }
        println!("{name}: {}", batch_figures(&svc).await);
        svc.shutdown().await.expect("shutdown");
    }
    let tps = pgbench(&pg_url);
    println!();
    for l in &table {
        println!("{l}");
    }
    if burst > 0 {
        println!();
        for l in &bursts {
            println!("{l}");
        }
    }
    println!("\npgbench single-row INSERT, 16 clients, 10 s, same PostgreSQL: {tps} TPS");
    if let Ok(pool) = sqlx::PgPool::connect(&pg_url).await {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
