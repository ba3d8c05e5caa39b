//! Cascade overhead: the service's latency for a soft-declined sale that cascades to FlexFactor
//! (tokenize, place, submit, record, answer), beside the latency of the same two FlexFactor calls
//! (tokenize and a CIT evaluate) made directly with the client against the same fake FlexFactor.
//! The difference is what Salvage adds. Both run on one machine, sequentially, after a warm-up.
//!
//! Run: `cargo bench -p salvage --bench cascade_overhead` (SALVAGE_BENCH_CASCADES, default 500).

use std::sync::Arc;
use std::time::Instant;

use salvage_domain::customer::{CardDetails, Customer};
use salvage_domain::ports::{FlexFactor, SalvageRequest, SubmissionMode};
use salvage_domain::{DeclineFacts, DeclineType, SystemClock};
use salvage_gateway::flexfactor::{FlexFactorClient, FlexFactorConfig};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, ServeOptions};
use salvage_sim::fake_flexfactor::{FakeConfig, FakeFlexFactor};
use secrecy::SecretString;
use serde_json::json;

const SAMPLE: &str = include_str!("../examples/salvage.toml");
const KEY: &str = "bench-key-0123456789";

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SALVAGE_BENCH_CASCADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut fake_config = FakeConfig::sandbox_defaults();
    fake_config.webhooks_for_sync_answers = false;
    // Every cascade is another customer's card (one card cascading a thousand times a minute is
    // not traffic, and the card-network rules would stop it): FlexFactor approves them all.
    fake_config.rules.default_cit = salvage_sim::fake_flexfactor::Outcome::Approved;
    let fake = FakeFlexFactor::start(fake_config).await.expect("fake");
    let dir = std::env::temp_dir().join(format!("salvage-cascade-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut rows = Vec::new();
    for (name, url) in [
        (
            "SQLite (WAL, synchronous=FULL)",
            format!("sqlite://{}", dir.join("c.db").display()),
        ),
        (
            "PostgreSQL 15 (loopback)",
            std::env::var("SALVAGE_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        ),
    ] {
        let schema = format!("salvage_cascade_{}", std::process::id());
        let text = format!(
            "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{url}\"\napi_keys = [\"{KEY}\"]\n[flexfactor]\nbase_url = \"{}\"\n",
            fake.base_url()
        );
        let config = ServiceConfig::from_str(&text, std::path::Path::new("bench.toml"), &|_| None)
            .expect("config");
        let mut options = ServeOptions::new(Arc::new(SystemClock));
        if url.starts_with("postgres") {
            options.pg_schema = Some(schema.clone());
        }
        let svc = start(config, options).await.expect("service");
        let http = reqwest::Client::new();
        let mut service_ms = Vec::with_capacity(n);
        for i in 0..(n + 50) {
            let body = json!({
                "order_id": format!("c-{}-{i}", &name[..6]), "order_type": "new_sale", "campaign_id": "skincare",
                "ip_address": "203.0.113.7", "amount_minor": 1999, "currency": "USD",
                "card": {"number": format!("4111112{:09}", i), "cvv": "123", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
                "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
                "attempt": {"gateway_id": "nmi-main", "gateway_profile_id": "atri-us", "result": "declined",
                            "response_code": "91", "response_message": "Issuer unavailable", "decline_type": "soft"}
            });
            let t = Instant::now();
            let r = http
                .post(format!("{}/v1/orders", svc.url()))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .expect("send");
            let out: serde_json::Value = r.json().await.expect("json");
            assert_eq!(out["status"], "complete", "{out}");
            if i >= 50 {
                service_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        svc.shutdown().await.expect("shutdown");
        if url.starts_with("postgres") {
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await;
            }
        }
        rows.push((name, service_ms));
    }
    // The same FlexFactor calls made directly.
    let client = FlexFactorClient::new(
        FlexFactorConfig::new(fake.base_url()),
        fake.credentials(),
        Arc::new(SystemClock),
    )
    .expect("client");
    let mut direct_ms = Vec::with_capacity(n);
    for i in 0..(n + 50) {
        let t = Instant::now();
        let card = client
            .tokenize(&CardDetails {
                number: SecretString::from("4111111111111111"),
                cvv: Some(SecretString::from("123")),
                exp_month: 9,
                exp_year: 2030,
                holder: "Cure Tester".into(),
            })
            .await
            .expect("tokenize");
        let request = SalvageRequest {
            flexfactor_gateway: "flexfactor".into(),
            order_id: format!("d-{i}").as_str().into(),
            idempotency_key: salvage_domain::idempotency::IdempotencyKey::salvage(
                &format!("d-{i}").as_str().into(),
                1,
            ),
            mode: SubmissionMode::Cit {
                customer_ip: "203.0.113.7".into(),
            },
            amount: salvage_domain::Money {
                amount_minor: 1999,
                currency: salvage_domain::Currency::USD,
            },
            decline: DeclineFacts {
                gateway: "nmi-main".into(),
                response_code: "91".into(),
                response_message: "Issuer unavailable".into(),
                processor_verdict: DeclineType::Soft,
                visa_category: None,
                mastercard_advice_code: None,
            },
            card,
            customer: Customer::default(),
            items: vec![],
            subscription: None,
        };
        client.evaluate(&request).await.expect("evaluate");
        if i >= 50 {
            direct_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (d50, d99) = (pct(&mut direct_ms.clone(), 0.5), pct(&mut direct_ms, 0.99));
    println!("| store | service p50 / p90 / p99 / max (ms) | FlexFactor calls alone p50 / p99 (ms) | overhead p50 / p99 (ms) |");
    println!("|---|---|---|---|");
    for (name, mut ms) in rows {
        let (s50, s90, s99, max) = (
            pct(&mut ms, 0.5),
            pct(&mut ms, 0.9),
            pct(&mut ms, 0.99),
            pct(&mut ms, 1.0),
        );
        println!(
            "| {name} | {s50:.2} / {s90:.2} / {s99:.2} / {max:.2} | {d50:.2} / {d99:.2} | {:.2} / {:.2} |",
            s50 - d50,
            s99 - d99
        );
    }
    fake.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
