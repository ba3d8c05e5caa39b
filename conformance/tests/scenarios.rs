//! The scenario suite, in-process: every scenario file of `conformance/scenarios/` against the
//! service and the fake FlexFactor on one manual clock. Fails when a scenario fails (naming it,
//! its rules, the step and what came back) or when a rule of the catalogue has no scenario.
//!
//! Every run writes `target/conformance/report.md` and `target/conformance/junit.xml` (CI
//! prints the Markdown). `SALVAGE_CONFORMANCE_ONLY=C3,O` runs only the scenarios of those rules
//! (and then writes no report).

use salvage_conformance::report;
use salvage_conformance::runner::run_in_process;
use salvage_conformance::{Suite, SCENARIO_DIR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_has_a_scenario_and_every_scenario_passes() {
    let suite = match Suite::load_dir(std::path::Path::new(SCENARIO_DIR)) {
        Ok(s) => s,
        Err(e) => panic!("the scenario files do not load: {e}"),
    };
    let only: Vec<String> = std::env::var("SALVAGE_CONFORMANCE_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let filtered = !only.is_empty();
    if !filtered {
        let uncovered = suite.uncovered_rules();
        assert!(
            uncovered.is_empty(),
            "rules without a scenario: {uncovered:?}"
        );
    }
    let suite = suite.only(&only);
    let result = run_in_process(&suite, 4).await;
    let text = report::terminal(&result);
    println!("{text}");
    if !filtered {
        let dir = salvage_conformance::default_report_dir();
        report::write(&dir.join("report.md"), &report::markdown(&result))
            .unwrap_or_else(|e| panic!("{e}"));
        report::write(&dir.join("junit.xml"), &report::junit(&result))
            .unwrap_or_else(|e| panic!("{e}"));
        println!("reports: {}", dir.display());
    }
    assert!(result.ok(), "scenarios failed:\n{text}");
}
