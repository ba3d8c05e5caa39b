//! Test clocks and sandboxes against a deployed service on PostgreSQL: `salvage conform
//! --target URL` runs every scenario, each in its own sandbox, none skipped; the sandbox API
//! refuses what it must (a bad setup, a read-only key, a clock moved back, an unknown
//! sandbox), keeps sandboxes apart, and removes a sandbox with its data.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use salvage_domain::SystemClock;
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use salvage_sim::fake_flexfactor::FakeStarter;
use serde_json::{json, Value};

const KEY: &str = "deployment-key-0123456789";
const READ_ONLY: &str = "deployment-read-only-0123456789";
const SAMPLE: &str = include_str!("../examples/salvage.toml");

fn postgres_url() -> String {
    std::env::var("SALVAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A deployment in test mode on PostgreSQL (its own schema), as `salvage serve` runs it.
async fn deployment(schema: &str) -> RunningService {
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{}\"\napi_keys = [\"{KEY}\"]\n\
         read_only_api_keys = [\"{READ_ONLY}\"]\n[flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [test_mode]\nenabled = true\n",
        postgres_url()
    );
    let config = ServiceConfig::from_str(&text, std::path::Path::new("deployment.toml"), &|_| None)
        .expect("config");
    let mut options = ServeOptions::new(Arc::new(SystemClock));
    options.pg_schema = Some(schema.to_string());
    options.sandbox_flexfactor = Some(Arc::new(FakeStarter));
    start(config, options).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is required by this test and could not be used: {e}",
            postgres_url()
        )
    })
}

async fn drop_schema(schema: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
    }
}

async fn schemas_like(prefix: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE $1",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&pool)
    .await
    .unwrap()
}

fn schema_name(tag: &str) -> String {
    format!(
        "salvage_dep_{tag}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_subsec_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_runs_against_a_deployment_on_postgres_with_none_skipped() {
    let schema = schema_name("suite");
    let svc = deployment(&schema).await;
    let url = svc.url();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_salvage"))
            .args(["conform", "--target", &url, "--api-key", KEY, "--jobs", "4"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.contains(" scenarios: "))
        .unwrap_or_default()
        .to_string();
    println!("{summary} (wall {:.1} s)", took.as_secs_f64());
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "N scenarios: N passed, 0 failed, 0 skipped in ..."
    let total: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(total >= 90, "{summary}");
    assert!(
        summary.contains(&format!(
            "{total} scenarios: {total} passed, 0 failed, 0 skipped"
        )),
        "{summary}"
    );
    // Every sandbox was removed with its schema.
    assert_eq!(
        schemas_like(&format!("{schema}_sbx_")).await.len(),
        0,
        "sandboxes left behind"
    );
    svc.shutdown().await.unwrap();
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_apart_refuse_what_they_must_and_go_with_their_data() {
    let schema = schema_name("api");
    let svc = deployment(&schema).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", svc.url());
    let create = |setup: Value, key: &'static str| {
        let http = http.clone();
        let u = url("/v1/test/sandboxes");
        async move {
            let r = http
                .post(u)
                .bearer_auth(key)
                .json(&json!({"setup": setup, "start": "2026-03-02T12:00:00Z"}))
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A setup that breaks a rule is refused with the rule, as check-config words it.
    let broken = SAMPLE.replace("expiry_days = 21", "expiry_days = 40");
    let (s, body) = create(json!(broken), KEY).await;
    assert_eq!(s, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expiry_days"),
        "{body}"
    );
    // A read-only key cannot create one.
    let (s, _) = create(json!(SAMPLE), READ_ONLY).await;
    assert_eq!(s, reqwest::StatusCode::FORBIDDEN);

    let (s, a) = create(json!(SAMPLE), KEY).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{a}");
    let (s, b) = create(json!(SAMPLE), KEY).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{b}");
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(a, b);
    assert_eq!(
        schemas_like(&format!("{schema}_{}", a.replace('-', "_")))
            .await
            .len(),
        1
    );

    // An order placed in sandbox A is A's only.
    let order = json!({
        "order_id": "o-1", "order_type": "new_sale", "campaign_id": "skincare",
        "amount_minor": 1999, "currency": "USD",
        "card": {"token": "tok_test", "bin": "411111", "last4": "1111", "exp_month": 9, "exp_year": 2030},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
        "attempt": {"gateway_id": "stripe-eu", "result": "approved"}
    });
    let r = http
        .post(url("/v1/orders"))
        .bearer_auth(KEY)
        .header("x-salvage-sandbox", &a)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let get = |sandbox: Option<&str>| {
        let mut req = http.get(url("/v1/orders/o-1")).bearer_auth(KEY);
        if let Some(id) = sandbox {
            req = req.header("x-salvage-sandbox", id);
        }
        req.send()
    };
    assert_eq!(
        get(Some(&a)).await.unwrap().status(),
        reqwest::StatusCode::OK
    );
    assert_eq!(
        get(Some(&b)).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(None).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(Some("sbx-nope")).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );

    // The clock moves forward only, and only the sandbox's.
    let advance = |id: &str, to: &str| {
        http.post(url(&format!("/v1/test/sandboxes/{id}/advance")))
            .bearer_auth(KEY)
            .json(&json!({"to": to}))
            .send()
    };
    let r = advance(&a, "2026-04-01T00:00:00Z").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["now"],
        "2026-04-01T00:00:00Z"
    );
    let r = advance(&a, "2026-03-05T00:00:00Z").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let b_now: Value = http
        .get(url(&format!("/v1/test/sandboxes/{b}")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b_now["now"], "2026-03-02T12:00:00Z");

    // Removed, with its data.
    let r = http
        .delete(url(&format!("/v1/test/sandboxes/{a}")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(
        get(Some(&a)).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );
    assert!(schemas_like(&format!("{schema}_{}", a.replace('-', "_")))
        .await
        .is_empty());
    svc.shutdown().await.unwrap();
    assert!(
        schemas_like(&format!("{schema}_{}", b.replace('-', "_")))
            .await
            .is_empty(),
        "shutting down removes the rest"
    );
    drop_schema(&schema).await;
}
