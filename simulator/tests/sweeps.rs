//! Sweeps: every value of a `[[sweep]]` is a variant on the same seeds; the report gives
//! recovered revenue with its interval per value, a table and a chart; bad sweeps are refused
//! with the field named.

mod common;

use common::*;
use salvage_sim::{Engine, Report, RunOptions, Scenario, ScenarioOverrides};

fn run_seeds(s: &Scenario, seeds: &[u64]) -> Report {
    let runs = Engine::new(s).run_seeds(
        seeds,
        &RunOptions {
            threads: 2,
            progress: None,
        },
    );
    Report::build_seeds(s, seeds, &runs)
}

#[test]
fn the_shipped_slot_sweep_hands_over_at_each_value() {
    let s = Scenario::load(
        &scenarios_dir().join("sweep_slot.toml"),
        ScenarioOverrides {
            customers: Some(150),
            horizon_days: Some(150),
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = s.variants.iter().map(|v| v.name()).collect();
    assert_eq!(names[0], "flexfactor_slot = 4");
    assert_eq!(names[7], "flexfactor_slot = none");
    let report = run_seeds(&s, &[1, 2, 3]);
    assert_sound(&report);
    let sweep = &report.sweeps[0];
    assert_eq!(sweep.parameter, "flexfactor_slot");
    let values: Vec<&str> = sweep.points.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(values, ["4", "5", "6", "7", "8", "9", "final", "none"]);
    let slot = |v: usize, slot: &str| report.variants[v].flexfactor.by_slot[slot].counts.submitted;
    assert!(
        slot(1, "4-6") > 0 && slot(1, "7-9") == 0,
        "re-attempt 5 is slot 4-6"
    );
    assert!(
        slot(4, "7-9") > 0 && slot(4, "4-6") == 0,
        "re-attempt 8 is slot 7-9"
    );
    assert!(slot(6, "final") > 0);
    assert_eq!(
        report.variants[7].flexfactor.by_route["recycle"]
            .counts
            .submitted,
        0
    );
    for p in &sweep.points {
        assert_eq!(p.recovered_minor.n, 3);
        assert!(p.recovered_minor.low.is_some());
    }
    let table = report.summary_table();
    assert!(table.contains("Sweep over flexfactor_slot"), "{table}");
    let html = salvage_sim::html::render(&report).unwrap();
    assert!(html.contains("Recovered revenue per run against flexfactor_slot"));
    let json = report.to_json().unwrap();
    assert!(json.contains("\"sweeps\""));
}

const HEAD: &str = r#"
name = "sweeps"
seed = 3
horizon_days = 120
setup = { path = "setup.toml" }

[population]
customers = 300
arrival_days = 10
products = [{ campaign = "coaching", product = "coaching-monthly" }]

[crm]
rerun_share = 1.0
"#;

/// Common random numbers: a higher recovery rate recovers every submission a lower one did,
/// so the recovered reruns grow with the rate on every seed.
#[test]
fn a_swept_recovery_rate_recovers_more_as_it_grows() {
    // Sales without ip_address do not cascade to FlexFactor (C3): the CRM reruns them.
    let head = HEAD
        .replace(
            "arrival_days = 10",
            "arrival_days = 10\nip_address_share = 0.0",
        )
        .replace(
            "{ campaign = \"coaching\", product = \"coaching-monthly\" }",
            "{ campaign = \"skincare\", product = \"cleanser\" }",
        );
    let s = scenario(&format!(
        "{head}\n[gateways]\nnew_sale_approval = 0.5\n\n[[sweep]]\nparameter = \"flexfactor.rerun_recovery\"\nvalues = [0.1, 0.4, 0.8]\n"
    ));
    assert_eq!(s.variants[2].flexfactor.rerun_recovery, 0.8);
    let report = run_seeds(&s, &[10, 11]);
    assert_sound(&report);
    let reruns: Vec<u64> = report
        .variants
        .iter()
        .map(|v| v.flexfactor.by_route["rerun"].counts.recovered)
        .collect();
    assert!(reruns[0] < reruns[1] && reruns[1] < reruns[2], "{reruns:?}");
    let submitted: Vec<u64> = report
        .variants
        .iter()
        .map(|v| v.flexfactor.by_route["rerun"].counts.submitted)
        .collect();
    assert!(
        submitted.windows(2).all(|w| w[0] == w[1]),
        "the same reruns"
    );
}

#[test]
fn waits_expiry_and_cascade_all_can_be_swept_next_to_variants() {
    let s = scenario(&format!(
        "{HEAD}\n[[variants]]\nname = \"as is\"\n\n[[sweep]]\nparameter = \"recycle_wait_days\"\nprofile = \"recycle-ladder\"\nvalues = [1, 3]\n\n[[sweep]]\nparameter = \"expiry_days\"\nvalues = [7, 21]\n\n[[sweep]]\nparameter = \"cascade_all\"\nvalues = [false, true]\n"
    ));
    assert_eq!(s.variants.len(), 7);
    assert_eq!(s.variants[0].name(), "as is");
    assert_eq!(
        s.sweeps[1].points,
        vec![("7".to_string(), 3), ("21".to_string(), 4)]
    );
    let waits = |v: usize| -> Vec<i64> {
        s.variants[v].setup.recycle_profiles[0]
            .attempts
            .iter()
            .map(|a| a.wait_days)
            .collect()
    };
    assert!(waits(1).iter().all(|w| *w == 1));
    assert!(waits(2).iter().all(|w| *w == 3));
    let report = run_seeds(&s, &[4, 5]);
    assert_sound(&report);
    assert_eq!(report.sweeps.len(), 3);
}

fn refused(sweep: &str) -> String {
    match Scenario::from_toml_str(
        &format!("{HEAD}\n{sweep}"),
        &scenarios_dir().join("bad.toml"),
        ScenarioOverrides::default(),
    ) {
        Ok(_) => panic!("refused: {sweep}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_sweeps_are_refused_with_the_field() {
    let e = refused("[[sweep]]\nparameter = \"price\"\nvalues = [1]\n");
    assert!(
        e.contains("sweep[0].parameter") && e.contains("cannot be swept"),
        "{e}"
    );
    let e = refused("[[sweep]]\nparameter = \"flexfactor_slot\"\nvalues = [4]\n");
    assert!(e.contains("sweep[0].profile"), "{e}");
    let e = refused(
        "[[sweep]]\nparameter = \"flexfactor_slot\"\nprofile = \"recycle-ladder\"\nvalues = [4, \"first\", 99]\n",
    );
    assert!(e.contains("sweep[0].values[1]"), "{e}");
    assert!(e.contains("re-attempt 99 does not exist"), "{e}");
    let e = refused("[[sweep]]\nparameter = \"flexfactor.rerun_recovery\"\nvalues = [1.5]\n");
    assert!(e.contains("sweep[0].values[0]"), "{e}");
    let e = refused("[[sweep]]\nparameter = \"expiry_days\"\nvalues = [30]\n");
    assert!(e.contains("[S2]"), "the setup rule: {e}");
    let e = refused("[[sweep]]\nparameter = \"cascade_all\"\nvalues = []\n");
    assert!(e.contains("sweep[0].values"), "{e}");
}
