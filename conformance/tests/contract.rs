//! The contract suite: Salvage's FlexFactor client against the fake FlexFactor (always), and
//! against FlexFactor's sandbox when its credentials are in the environment (F1 token reuse and
//! refresh, F2 tokenize, C5 CIT approved/declined/challenged and external-cancel, R2 MIT
//! submitted, O8 order status, F4 refund in dollars and capture in cents, F3 idempotent replay
//! and 409). Each run writes `target/conformance/contract.md`.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use salvage_conformance::contract::{self, ContractReport, ContractTarget, SANDBOX_ENV};
use salvage_domain::SystemClock;
use salvage_gateway::flexfactor::{FlexFactorConfig, RetryConfig};
use salvage_sim::fake_flexfactor::{FakeConfig, FakeFlexFactor};

fn save(report: &ContractReport, file: &str) {
    let dir = salvage_conformance::default_report_dir();
    let text = format!("```text\n{}```\n", report.render());
    if let Err(e) = salvage_conformance::report::write(&dir.join(file), &text) {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_suite_against_the_fake_flexfactor() {
    let start = chrono::Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(chrono::Utc::now);
    let fake = FakeFlexFactor::start(FakeConfig::driven(start))
        .await
        .unwrap_or_else(|e| panic!("the fake FlexFactor did not start: {e}"));
    let mut config = FlexFactorConfig::new(fake.base_url());
    config.request_timeout = Duration::from_secs(5);
    config.retry = RetryConfig {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    let target = ContractTarget {
        name: "the fake FlexFactor (in-process, driven clock)".into(),
        config,
        credentials: fake.credentials(),
        clock: fake.clock(),
        fake: Some(&fake),
        run_id: contract::run_id(),
    };
    let report = contract::run(&target)
        .await
        .unwrap_or_else(|e| panic!("the client could not be built: {e}"));
    println!("{}", report.render());
    save(&report, "contract.md");
    assert!(report.ok(), "{}", report.render());
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_suite_against_the_flexfactor_sandbox_when_credentials_are_set() {
    let env = |name: &str| std::env::var(name).ok();
    let Some((mut config, credentials)) =
        contract::sandbox_from_env(&env).unwrap_or_else(|e| panic!("{e}"))
    else {
        let vars: Vec<&str> = SANDBOX_ENV.iter().map(|(_, v)| *v).collect();
        println!(
            "FlexFactor sandbox contract suite: NOT RUN (no credentials; set {} and optionally {})",
            vars.join(", "),
            contract::SANDBOX_URL_ENV
        );
        return;
    };
    config.request_timeout = Duration::from_secs(30);
    let target = ContractTarget {
        name: format!("the FlexFactor sandbox at {}", config.base_url),
        config,
        credentials,
        clock: Arc::new(SystemClock),
        fake: None,
        run_id: contract::run_id(),
    };
    let report = contract::run(&target)
        .await
        .unwrap_or_else(|e| panic!("the client could not be built: {e}"));
    println!("{}", report.render());
    save(&report, "contract-sandbox.md");
    assert!(report.ok(), "{}", report.render());
}

/// The suite can fail: against a FlexFactor that answers 503 to every tokenization, the checks
/// that need a token fail and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_suite_fails_against_a_misbehaving_flexfactor() {
    use salvage_sim::fake_flexfactor::{Endpoint, Fault, FaultRule};
    let fake = FakeFlexFactor::start(FakeConfig::driven(chrono::Utc::now()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    fake.add_fault(FaultRule::on(
        Endpoint::Tokenize,
        Fault::ServerError { status: 503 },
        None,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut config = FlexFactorConfig::new(fake.base_url());
    config.retry = RetryConfig {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    let target = ContractTarget {
        name: "a broken fake".into(),
        config,
        credentials: fake.credentials(),
        clock: fake.clock(),
        fake: Some(&fake),
        run_id: contract::run_id(),
    };
    let report = contract::run(&target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.ok());
    let text = report.render();
    assert!(text.contains("FAILED [F2] f2_tokenize: tokenize"), "{text}");
    fake.shutdown().await;
}
