//! The service over real HTTP with the fake FlexFactor as its upstream (signed webhooks), both on
//! one manual clock: the world the root integration tests drive.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, Utc};
use salvage_domain::{Clock, ManualClock};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use salvage_sim::fake_flexfactor::{ClockMode, FakeConfig, FakeFlexFactor, RunningFake};
use serde_json::Value;

pub const SAMPLE: &str = include_str!("../../examples/salvage.toml");

pub struct World {
    pub svc: RunningService,
    pub fake: RunningFake,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    /// The test's own directory (the SQLite store is in it); removed by [`World::stop`].
    pub dir: PathBuf,
    key: &'static str,
}

impl World {
    /// Starts the fake FlexFactor (sandbox defaults edited by `fake_edit`, no automatic
    /// deliveries) and the service over a SQLite file in a fresh directory named after `name`,
    /// with the sample setup edited by `setup_edit`, API key `key`, sandbox charges.
    pub async fn start(
        name: &str,
        key: &'static str,
        setup_edit: impl Fn(String) -> String,
        fake_edit: impl FnOnce(&mut FakeConfig),
    ) -> World {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let mut fake_config = FakeConfig::sandbox_defaults();
        fake_config.clock = ClockMode::Shared(clock.clone());
        fake_config.auto_deliver = None;
        fake_edit(&mut fake_config);
        let fake = FakeFlexFactor::start(fake_config)
            .await
            .expect("fake FlexFactor");
        let dir = std::env::temp_dir().join(format!(
            "salvage-{name}-{}-{}",
            std::process::id(),
            clock.now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let text = format!(
            "{}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"sqlite://{}\"\napi_keys = [\"{key}\"]\n[flexfactor]\nbase_url = \"{}\"\n",
            setup_edit(SAMPLE.to_string()),
            dir.join("s.db").display(),
            fake.base_url()
        );
        let config =
            ServiceConfig::from_str(&text, Path::new("t.toml"), &|_| None).expect("config");
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        let svc = start(config, options).await.expect("service");
        fake.set_webhook_url(Some(&format!("{}/webhooks/flexfactor", svc.url())))
            .expect("webhook url");
        World {
            svc,
            fake,
            clock,
            http: reqwest::Client::new(),
            dir,
            key,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.svc.url()))
            .bearer_auth(self.key)
            .json(body)
            .send()
            .await
            .expect("POST");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// GET `path`: the JSON answer, `null` when there is none.
    pub async fn get(&self, path: &str) -> Value {
        self.get_status(path).await.1
    }

    /// GET `path`, which must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get_status(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn get_status(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.svc.url()))
            .bearer_auth(self.key)
            .send()
            .await
            .expect("GET");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Moves both clocks, lets the fake deliver what became due and the service run what
    /// followed.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.fake.deliver_due().await;
        self.settle().await;
    }

    /// Runs until nothing is due: no outbox row due now (claimed or not) and no delivery the
    /// fake still has to make now (bounded: 20 s of real time).
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            self.svc.state.drive().await.expect("drive");
            let report = self.fake.deliver_due().await;
            let now = self.clock.now().timestamp_millis();
            let stats = salvage_gateway::store::outbox::stats(&self.svc.state.store.backend, now)
                .await
                .expect("outbox stats");
            if stats.due == 0 && report.sent == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the service did not settle: {} outbox row(s) due",
                stats.due
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub async fn stop(self) {
        self.svc.shutdown().await.expect("shutdown");
        self.fake.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
