//! The fault suite: the real service (`salvage serve --config`, a child process) killed with
//! SIGKILL and restarted repeatedly under load, while the fake FlexFactor answers 5xx, times
//! out, and delivers duplicate, late, resent and reordered webhooks. At the end every order is
//! in the state the model predicts, Salvage's view of the money agrees with FlexFactor's, and
//! no effect happened twice. The test prints how many kills, deliveries and faults it survived.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use salvage_sim::fake_flexfactor::{
    Endpoint, FakeConfig, FakeFlexFactor, Fault, FaultRule, OrderStatus, RedeliveryPolicy, RuleSet,
};
use serde_json::{json, Value};

const SAMPLE: &str = include_str!("../examples/salvage.toml");
const KEY: &str = "fault-key-0123456789";
const APPROVED: &str = "4111111111111111";
const DECLINED: &str = "4000300011112220";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(http: &reqwest::Client, url: &str, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("the service did not become ready; see {}", log.display());
}

struct Service {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Service {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_salvage"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start salvage serve");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok(); // SIGKILL
            c.wait().ok();
        }
    }
}

/// POST with retries while the service is down or busy; the same body is idempotent.
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http
            .post(url)
            .bearer_auth(KEY)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            let status = r.status().as_u16();
            if status == 200 || status == 201 {
                return r.json().await.unwrap_or(Value::Null);
            }
            assert!(status >= 500, "{url} answered {status}");
        }
        assert!(Instant::now() < deadline, "{url}: no answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn order(id: &str, card: &str, cascade: bool) -> Value {
    let (gateway, profile) = if cascade {
        ("nmi-main", json!("atri-us"))
    } else {
        ("stripe-eu", Value::Null)
    };
    json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare", "ip_address": "203.0.113.7",
        "amount_minor": 1999, "currency": "USD",
        "card": {"number": card, "cvv": "123", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
        "attempt": {"gateway_id": gateway, "gateway_profile_id": profile, "result": "declined",
                    "response_code": "91", "response_message": "Issuer unavailable", "decline_type": "soft"}
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    CascadeApproved,
    CascadeDeclined,
    RerunApproved,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_flexfactor_faults_lose_nothing_and_double_nothing() {
    const ORDERS: usize = 45;
    const KILLS: usize = 8;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut fake_config = FakeConfig::sandbox_defaults();
    let mut rules = RuleSet::sandbox();
    rules.mit_delay_secs = 1;
    fake_config.rules = rules;
    fake_config.auto_deliver = Some(Duration::from_millis(100));
    fake_config.redelivery = RedeliveryPolicy {
        first_retry: chrono::Duration::milliseconds(200),
        max_interval: chrono::Duration::seconds(1),
        max_attempts: 1000,
    };
    fake_config.webhook_url = Some(format!("{url}/webhooks/flexfactor"));
    fake_config.faults = vec![
        // The first two submissions time out after taking effect (cascades come first).
        FaultRule::on(
            Endpoint::Evaluate,
            Fault::Timeout {
                hold_ms: 2500,
                applied: true,
            },
            Some(2),
        ),
        FaultRule::on(
            Endpoint::Evaluate,
            Fault::ServerError { status: 503 },
            Some(4),
        ),
        FaultRule::on_webhooks(Fault::Duplicate, None),
        FaultRule::on_webhooks(Fault::Resent, None),
        FaultRule::on_webhooks(Fault::Reordered, None),
        FaultRule::on_webhooks(Fault::Late { delay_secs: 1 }, Some(5)),
    ];
    let fake = FakeFlexFactor::start(fake_config)
        .await
        .expect("fake FlexFactor");
    let dir = std::env::temp_dir().join(format!("salvage-fault-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("salvage.toml");
    std::fs::write(
        &config,
        format!(
            "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:{port}\"\nstore_url = \"sqlite://{}\"\napi_keys = [\"{KEY}\"]\nwork_lease_seconds = 2\n[flexfactor]\nbase_url = \"{}\"\nrequest_timeout_ms = 1000\n",
            dir.join("salvage.db").display(),
            fake.base_url()
        ),
    )
    .unwrap();
    let service = Arc::new(Mutex::new(Service {
        config,
        log: dir.join("service.log"),
        child: None,
    }));
    let http = reqwest::Client::new();
    service.lock().unwrap().spawn();
    let log = dir.join("service.log");
    wait_ready(&http, &url, &log).await;

    // The load: cascades first (so the two timeouts hit cascades), then reruns.
    let kinds: BTreeMap<String, Kind> = (0..ORDERS)
        .map(|i| {
            let kind = match i % 3 {
                0 => Kind::CascadeApproved,
                1 => Kind::CascadeDeclined,
                _ => Kind::RerunApproved,
            };
            (format!("f-{i:03}"), kind)
        })
        .collect();
    let load = {
        let (http, url, kinds) = (http.clone(), url.clone(), kinds.clone());
        tokio::spawn(async move {
            let mut sorted: Vec<_> = kinds.into_iter().collect();
            sorted.sort_by_key(|(id, k)| (*k == Kind::RerunApproved, id.clone()));
            for chunk in sorted.chunks(3) {
                let mut tasks = Vec::new();
                for (id, kind) in chunk.iter().cloned() {
                    let (http, url) = (http.clone(), url.clone());
                    tasks.push(tokio::spawn(async move {
                        let card = if kind == Kind::CascadeDeclined {
                            DECLINED
                        } else {
                            APPROVED
                        };
                        post(
                            &http,
                            &format!("{url}/v1/orders"),
                            &order(&id, card, kind != Kind::RerunApproved),
                        )
                        .await;
                        if kind == Kind::RerunApproved {
                            post(
                                &http,
                                &format!("{url}/v1/orders/{id}/rerun"),
                                &json!({"gateway_id": "flexfactor"}),
                            )
                            .await;
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    };
    // The killer.
    let mut kills = 0;
    let mut seed: u64 = 0x5a17_f417;
    while kills < KILLS && !load.is_finished() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(300 + (seed >> 33) % 700)).await;
        service.lock().unwrap().kill();
        kills += 1;
        service.lock().unwrap().spawn();
        wait_ready(&http, &url, &log).await;
    }
    load.await.unwrap();

    // Everything settles: every order reaches a final status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut finals = BTreeMap::new();
    loop {
        finals.clear();
        for id in kinds.keys() {
            let r = http
                .get(format!("{url}/v1/orders/{id}"))
                .bearer_auth(KEY)
                .send()
                .await;
            if let Ok(r) = r {
                if let Ok(v) = r.json::<Value>().await {
                    finals.insert(id.clone(), v);
                }
            }
        }
        let settled = finals.len() == kinds.len()
            && finals
                .values()
                .all(|v| v["status"] == "complete" || v["status"] == "declined");
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The model's predictions and the invariants.
    let ff = fake.state();
    let mut timed_out_cascades = 0;
    for (id, kind) in &kinds {
        let v = finals.get(id).unwrap_or_else(|| panic!("{id}: lost"));
        let status = v["status"].as_str().unwrap_or("");
        let history: Vec<&str> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["type"].as_str().unwrap())
            .collect();
        let ff_orders: Vec<_> = ff
            .orders
            .iter()
            .filter(|o| o.external_order_id == *id)
            .collect();
        assert!(
            ff_orders.len() <= 1,
            "{id}: submitted to FlexFactor more than once: {ff_orders:?}"
        );
        let paid_at_ff = ff_orders.iter().any(|o| o.status == OrderStatus::Completed);
        match kind {
            Kind::CascadeDeclined => assert_eq!(status, "declined", "{id}"),
            Kind::RerunApproved => assert_eq!(status, "complete", "{id}: {v}"),
            Kind::CascadeApproved => {
                if status == "declined" {
                    // C5: the evaluate timed out; the order was declined and cancelled at FlexFactor.
                    timed_out_cascades += 1;
                    assert!(
                        history.contains(&"ExternalCancelRequested"),
                        "{id}: {history:?}"
                    );
                } else {
                    assert_eq!(status, "complete", "{id}");
                }
            }
        }
        // Salvage's money agrees with FlexFactor's.
        assert_eq!(
            status == "complete",
            paid_at_ff,
            "{id}: Salvage says {status}, FlexFactor {ff_orders:?}"
        );
        assert!(
            history.iter().filter(|t| **t == "SalvageSucceeded").count() <= 1,
            "{id}: O7"
        );
        let fulfil = history
            .iter()
            .filter(|t| **t == "FulfillmentRequested")
            .count();
        assert_eq!(
            fulfil,
            usize::from(status == "complete"),
            "{id}: one fulfillment per paid order"
        );
    }
    service.lock().unwrap().kill();
    let attempts = fake.delivery_attempts().len();
    let calls = fake.calls();
    println!(
        "fault suite: survived {kills} kills, {} orders, {} webhook sends ({} deliveries), {} evaluate calls, 2 timeouts (of which {timed_out_cascades} declined and cancelled a cascade), 4 5xx answers, duplicate/resent/reordered/late deliveries",
        kinds.len(),
        attempts,
        fake.deliveries().len(),
        calls.count(Endpoint::Evaluate),
    );
    fake.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
