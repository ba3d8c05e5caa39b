//! Test mode (`[test_mode] enabled = true`): said in every answer's header, in `/readyz` and in
//! the metrics; off, none of it, no `/v1/test` route exists, and a request naming a sandbox is
//! refused. (Sandboxes themselves: `tests/conform_sandboxes.rs` at the workspace root.)

mod support;

use std::sync::Arc;

use salvage_domain::ManualClock;
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, ServeOptions};
use support::*;

const KEY: &str = "test-api-key-0123456789";

async fn serve(test_mode: bool) -> (salvage_gateway::service::RunningService, Place) {
    let place = Place::new_sqlite();
    let Place::Sqlite(url) = &place else {
        unreachable!()
    };
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{url}\"\napi_keys = [\"{KEY}\"]\n\
         [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\n[test_mode]\nenabled = {test_mode}\n"
    );
    let config =
        ServiceConfig::from_str(&text, std::path::Path::new("t.toml"), &|_| None).expect("config");
    let clock = Arc::new(ManualClock::new(t0()));
    let running = start(config, ServeOptions::new(clock))
        .await
        .expect("starts");
    (running, place)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_is_said_everywhere_and_production_says_nothing() {
    let http = reqwest::Client::new();
    for on in [true, false] {
        let (svc, place) = serve(on).await;
        let ready = http
            .get(format!("{}/readyz", svc.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.headers().get("x-salvage-test-mode").is_some(),
            on,
            "the header on /readyz"
        );
        assert_eq!(ready.text().await.unwrap().contains("test mode"), on);
        let api = http
            .get(format!("{}/v1/orders/nope", svc.url()))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), reqwest::StatusCode::NOT_FOUND);
        assert_eq!(
            api.headers().get("x-salvage-test-mode").is_some(),
            on,
            "every answer"
        );
        let metrics = http
            .get(format!("{}/metrics", svc.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!("salvage_test_mode {}", i32::from(on));
        assert!(metrics.lines().any(|l| l == line), "{line} in the metrics");
        if !on {
            // Production: no test route exists.
            let r = http
                .post(format!("{}/v1/test/sandboxes", svc.url()))
                .bearer_auth(KEY)
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
            // A request that believes it is in a sandbox never reaches production.
            let r = http
                .get(format!("{}/v1/orders/nope", svc.url()))
                .bearer_auth(KEY)
                .header("x-salvage-sandbox", "sbx-1")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "not_test_mode");
        }
        svc.shutdown().await.unwrap();
        place.cleanup().await;
    }
}
