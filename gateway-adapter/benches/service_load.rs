//! Verified FlexFactor deliveries per second, and their latency, through the real service on
//! loopback, on SQLite and on PostgreSQL, beside the same machine's pgbench single-row insert
//! TPS as the ceiling. Each delivery is signed (fresh nonce) and completes a pending salvage.
//!
//! Run: `cargo bench -p salvage-gateway --bench service_load`
//! (PostgreSQL from SALVAGE_TEST_POSTGRES_URL; SALVAGE_BENCH_DELIVERIES sets the deliveries per
//! measurement, default 2000; SALVAGE_BENCH_CONCURRENCY the load generator's connections,
//! default 16).

use std::sync::Arc;
use std::time::{Duration, Instant};

use salvage_domain::order::{AttemptResult, OrderCommand, PlaceOrder};
use salvage_domain::{Clock, DeclineFacts, DeclineType, SystemClock};
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use secrecy::SecretString;

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
        card: salvage_domain::customer::CardToken {
            token: "tok".into(),
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

async fn service(store_url: &str, schema: Option<String>) -> RunningService {
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{store_url}\"\napi_keys = [\"bench-key-0123456789\"]\n\
         [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\nrequest_timeout_ms = 200\n"
    );
    let config = ServiceConfig::from_str(&text, std::path::Path::new("bench.toml"), &|_| None)
        .expect("config");
    let mut options = ServeOptions::new(Arc::new(SystemClock));
    options.pg_schema = schema;
    start(config, options).await.expect("service")
}

/// Orders with a pending rerun salvage, ready to be completed by a delivery.
async fn pending_orders(svc: &RunningService, prefix: &str, n: usize) -> Vec<String> {
    let engine = &svc.state.engine;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}-{i}");
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
        ids.push(id);
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

/// Sends every delivery with `concurrency` connections, at most `rate` per second (0: as fast as
/// possible); returns (deliveries per second, latencies in ms sorted).
async fn load(
    url: &str,
    deliveries: Vec<Signed>,
    concurrency: usize,
    rate: f64,
) -> (f64, Vec<f64>) {
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
                let r = req.send().await.expect("send");
                assert!(r.status().is_success(), "delivery refused: {}", r.status());
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let per_second = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    (per_second, all)
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
    let dir = std::env::temp_dir().join(format!("salvage-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    println!("| store | max verified deliveries/s ({concurrency} connections) | p50 / p99 at max (ms) | rate for latency (/s) | p50 / p99 at that rate (ms) |");
    println!("|---|---|---|---|---|");
    let schema = format!("salvage_load_{}", std::process::id());
    for (name, url, schema) in [
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
    ] {
        let svc = service(&url, schema).await;
        let hook = format!("{}/webhooks/flexfactor", svc.url());
        let ids = pending_orders(&svc, "max", n).await;
        let (max_rate, lat) = load(&hook, sign_all(&svc, &ids), concurrency, 0.0).await;
        let half = (max_rate / 2.0).max(1.0);
        let ids = pending_orders(&svc, "half", n / 2).await;
        let (_, lat_half) = load(&hook, sign_all(&svc, &ids), concurrency, half).await;
        println!(
            "| {name} | {max_rate:.0} | {:.1} / {:.1} | {half:.0} | {:.1} / {:.1} |",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat_half, 0.5),
            pct(&lat_half, 0.99)
        );
        svc.shutdown().await.expect("shutdown");
    }
    println!(
        "\npgbench single-row INSERT, 16 clients, 10 s, same PostgreSQL: {} TPS",
        pgbench(&pg_url)
    );
    if let Ok(pool) = sqlx::PgPool::connect(&pg_url).await {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
