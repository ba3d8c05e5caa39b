//! The scenario runner itself: a broken expectation fails and says where and why; scenario
//! files with mistakes are refused naming the file, the scenario and the field; reports carry
//! every rule; `--only` filters by rule and group.

use std::path::Path;

use salvage_conformance::runner::{run_in_process, Status};
use salvage_conformance::scenario::{load_file, Templates};
use salvage_conformance::{catalogue, report};
use salvage_conformance::{Suite, SCENARIO_DIR};

fn suite_of(text: &str) -> Suite {
    let templates = Templates::new();
    let file =
        load_file(text, Path::new("inline.toml"), &templates).unwrap_or_else(|e| panic!("{e}"));
    Suite { files: vec![file] }
}

const SALE: &str = r#"
[templates.sale]
order_id = "x"
order_type = "new_sale"
campaign_id = "skincare"
ip_address = "203.0.113.7"
amount_minor = 1999
currency = "USD"
card = { number = "4111111111111111", cvv = "123", exp_month = 9, exp_year = 2030, holder = "Cure Tester" }
items = [{ product_id = "cleanser", quantity = 1, price_minor = 1999 }]
attempt = { gateway_id = "stripe-eu", result = "declined", response_code = "91", response_message = "Issuer unavailable", decline_type = "soft" }
"#;

/// The suite can fail: a scenario expecting what the service does not do fails, naming the
/// step, the field, the expected and the actual value; the passing one beside it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_fails_and_says_where() {
    let text = format!(
        r#"{SALE}
[[scenario]]
id = "right"
rules = ["C1"]
[[scenario.when]]
post = "/v1/orders"
template = "sale"
set = {{ order_id = "${{id}}" }}
expect = {{ status = 201, body = {{ status = "declined", cascade_skipped_reason = "no_cascade_profile" }} }}

[[scenario]]
id = "wrong"
rules = ["C1"]
[[scenario.when]]
post = "/v1/orders"
template = "sale"
set = {{ order_id = "${{id}}" }}
expect = {{ status = 201, body = {{ status = "complete" }} }}
[[scenario.then]]
flexfactor_evaluate = {{ order_id = "${{id}}", count = 1 }}
"#
    );
    let result = run_in_process(&suite_of(&text), 1).await;
    assert_eq!(result.results.len(), 2);
    assert_eq!(
        result.results[0].status,
        Status::Passed,
        "{:?}",
        result.results[0]
    );
    let wrong = &result.results[1];
    assert_eq!(wrong.status, Status::Failed);
    let why = wrong.failures.join("\n");
    assert!(why.contains("when[1]"), "{why}");
    assert!(why.contains("`status`"), "{why}");
    assert!(
        why.contains("\"complete\"") && why.contains("\"declined\""),
        "{why}"
    );
    assert!(!result.ok());
    // The rule table says C1 failed.
    let table = report::terminal(&result);
    assert!(table.contains("C1    FAILED"), "{table}");
    let md = report::markdown(&result);
    assert!(md.contains("| C1 | ❌ **failed**"), "{md}");
    let xml = report::junit(&result);
    assert!(
        xml.contains(r#"failures="1""#) && xml.contains("<failure message="),
        "{xml}"
    );
}

/// A text answer (`/metrics`) is checked with `body_contains`: present passes, absent fails
/// naming the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_contains_checks_a_text_answer() {
    let text = r#"
[[scenario]]
id = "has-it"
rules = ["C1"]
when = [{ get = "/metrics", expect = { status = 200, body_contains = ["salvage_outbox_pending"] } }]

[[scenario]]
id = "lacks-it"
rules = ["C1"]
when = [{ get = "/metrics", expect = { body_contains = ["no_such_metric_total"] } }]
"#;
    let result = run_in_process(&suite_of(text), 1).await;
    assert_eq!(
        result.results[0].status,
        Status::Passed,
        "{:?}",
        result.results[0]
    );
    assert_eq!(result.results[1].status, Status::Failed);
    let why = result.results[1].failures.join("\n");
    assert!(
        why.contains("does not contain \"no_such_metric_total\""),
        "{why}"
    );
}

/// A setup check that expects a refusal the service does not give fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_setup_expectation_fails() {
    let text = r#"
[[scenario]]
id = "expiry-21-is-fine"
rules = ["S2"]
given.setup = [{ set = "gateways[id=flexfactor].expiry_days", value = 21 }]
when = [{ start_service = true, expect = { fails = true, message_contains = ["[S2]"] } }]
"#;
    let result = run_in_process(&suite_of(text), 1).await;
    assert_eq!(result.results[0].status, Status::Failed);
    assert!(
        result.results[0].failures[0].contains("the service started"),
        "{:?}",
        result.results[0].failures
    );
}

#[test]
fn file_errors_name_the_file_the_scenario_and_the_field() {
    let dir = std::env::temp_dir().join(format!("salvage-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        r#"
[[scenario]]
id = "bad-one"
rules = ["C1"]
[[scenario.when]]
post = "/v1/orders"
expect = { status = 201, bdy = {} }
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = Suite::load_dir(&dir).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(e.contains("bad.toml"), "{e}");
    assert!(e.contains("\"bad-one\""), "{e}");
    assert!(e.contains("when[1].expect.bdy"), "{e}");
}

#[test]
fn the_suite_loads_covers_every_rule_and_filters() {
    let suite = Suite::load_dir(Path::new(SCENARIO_DIR)).unwrap_or_else(|e| panic!("{e}"));
    assert!(suite.uncovered_rules().is_empty());
    let c3 = suite.clone().only(&["C3".to_string()]);
    assert!(c3.scenarios().count() >= 1);
    assert!(c3.scenarios().all(|s| s.rules.iter().any(|r| r == "C3")));
    let w = suite.only(&["w".to_string()]);
    assert!(w
        .scenarios()
        .all(|s| s.rules.iter().any(|r| r.starts_with('W'))));
    assert!(catalogue::is_filter("c3") && catalogue::is_filter("K") && !catalogue::is_filter("Z9"));
}
