//! The same scenario and seed give the same report.json bytes, run after run and whatever the
//! number of threads; variants see the same traffic.

mod common;

use common::*;
use salvage_sim::{Scenario, ScenarioOverrides};

fn default_scenario(customers: u32, seed: Option<u64>) -> Scenario {
    Scenario::load(
        &scenarios_dir().join("default.toml"),
        ScenarioOverrides {
            customers: Some(customers),
            horizon_days: Some(120),
            seed,
        },
    )
    .unwrap()
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let s = default_scenario(700, None);
    let one = run(&s, 1).to_json().unwrap();
    let again = run(&s, 1).to_json().unwrap();
    let three = run(&s, 3).to_json().unwrap();
    let eight = run(&s, 8).to_json().unwrap();
    assert_eq!(one, again, "two runs");
    assert_eq!(one, three, "1 vs 3 threads");
    assert_eq!(one, eight, "1 vs 8 threads");
    let html_one = salvage_sim::html::render(&run(&s, 1)).unwrap();
    let html_two = salvage_sim::html::render(&run(&s, 2)).unwrap();
    assert_eq!(html_one, html_two, "the HTML page too");
}

#[test]
fn another_seed_gives_another_report() {
    let a = run(&default_scenario(200, Some(1)), 2).to_json().unwrap();
    let b = run(&default_scenario(200, Some(2)), 2).to_json().unwrap();
    assert_ne!(a, b);
}

#[test]
fn variants_see_the_same_traffic() {
    let s = Scenario::load(
        &scenarios_dir().join("expiry_days.toml"),
        ScenarioOverrides {
            customers: Some(400),
            horizon_days: Some(90),
            ..Default::default()
        },
    )
    .unwrap();
    let report = run(&s, 2);
    let (long, short) = (&report.variants[0], &report.variants[1]);
    assert_eq!(
        long.new_sales, short.new_sales,
        "the same sales and first attempts"
    );
    assert_eq!(
        long.cascade, short.cascade,
        "cascades do not depend on expiry_days (S2)"
    );
    let (rl, rs) = (
        &long.flexfactor.by_route["rerun"].counts,
        &short.flexfactor.by_route["rerun"].counts,
    );
    // The same submissions get the same draws, so a shorter expiry can only lose recoveries:
    // every sale recovered within 7 days is recovered within 21 (and so is its subscription's
    // trial completion).
    assert_eq!(
        long.reruns.requested_for_new_sales,
        short.reruns.requested_for_new_sales
    );
    assert!(rs.recovered <= rl.recovered, "{rs:?} vs {rl:?}");
    assert_sound(&report);
}

#[test]
fn the_report_holds_no_wall_clock_time_and_money_is_integer() {
    let report = run(&default_scenario(100, None), 1);
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    let summary = &json["variants"][0]["summary"];
    assert!(summary["recovered_minor"].is_i64());
    assert!(summary["collected_minor"].is_i64());
    assert_eq!(json["format"], "salvage-sim/report/v2");
    assert_eq!(json["scenario"]["start"], "2026-01-05T00:00:00+00:00");
}

/// A run of several variants shares each customer's run up to its first decline between them
/// (`customer::Prefix`): every variant's tallies are still exactly those of the variant run
/// alone, for scenarios whose variants change recycle slots, the network rules, the cascade,
/// the expiry, reruns and FlexFactor's rates.
#[test]
fn a_variant_counts_the_same_with_others_as_alone() {
    for (file, customers) in [
        ("slots.toml", 300),
        ("network_rules.toml", 300),
        ("cascade_all.toml", 300),
        ("expiry_days.toml", 300),
        ("sweep_slot.toml", 150),
    ] {
        let path = scenarios_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let overrides = ScenarioOverrides {
            customers: Some(customers),
            horizon_days: Some(200),
            ..Default::default()
        };
        let all = Scenario::from_toml_str(&text, &path, overrides).unwrap();
        let seeds = [3, 4];
        let options = salvage_sim::RunOptions {
            threads: 2,
            progress: None,
        };
        let together = salvage_sim::Engine::new(&all).run_seeds(&seeds, &options);
        for (v, variant) in all.variants.iter().enumerate() {
            // The scenario with this variant only.
            let mut alone = all.clone();
            alone.variants = vec![variant.clone()];
            alone.sweeps.clear();
            let by_itself = salvage_sim::Engine::new(&alone).run_seeds(&seeds, &options);
            for (s, run) in by_itself.iter().enumerate() {
                assert!(
                    run[0] == together[s][v],
                    "{file}: variant {} on seed {}",
                    variant.spec.name,
                    seeds[s]
                );
            }
        }
    }
}
