//! Helpers shared by the simulator's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use salvage_sim::report::Report;
use salvage_sim::{Engine, RunOptions, Scenario, ScenarioOverrides};

pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// A scenario from text, anchored in `simulator/scenarios/` (so `path = "setup.toml"` works).
pub fn scenario(text: &str) -> Scenario {
    match Scenario::from_toml_str(
        text,
        &scenarios_dir().join("test.toml"),
        ScenarioOverrides::default(),
    ) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

pub fn run(scenario: &Scenario, threads: usize) -> Report {
    let tallies = Engine::new(scenario).run(&RunOptions {
        threads,
        progress: None,
    });
    Report::build(scenario, &tallies)
}

/// Every invariant the engine watches, and the audit, hold in every variant.
pub fn assert_sound(report: &Report) {
    for v in &report.variants {
        assert!(v.audit.balanced, "{}: audit {:#?}", v.name, v.audit);
        assert_eq!(v.invariants, Default::default(), "{}", v.name);
        for (name, r) in v
            .flexfactor
            .by_route
            .iter()
            .chain(v.flexfactor.by_slot.iter())
        {
            let c = &r.counts;
            assert!(c.recovered <= c.submitted, "{}: {name}: {c:?}", v.name);
            assert!(c.recovered_minor <= c.submitted_minor, "{}: {name}", v.name);
            let failed: u64 = c.failed.values().sum();
            assert_eq!(
                c.submitted,
                c.recovered + failed + c.pending_at_horizon,
                "{}: {name}: every submission ends recovered, failed or pending",
                v.name
            );
        }
        let routes: i64 = v
            .flexfactor
            .by_route
            .values()
            .map(|r| r.counts.recovered_minor)
            .sum();
        assert_eq!(routes, v.summary.flexfactor_recovered_minor, "{}", v.name);
        let slots: i64 = v
            .flexfactor
            .by_slot
            .values()
            .map(|r| r.counts.recovered_minor)
            .sum();
        assert_eq!(
            slots, v.flexfactor.by_route["recycle"].counts.recovered_minor,
            "{}: the slots split the recycle route",
            v.name
        );
        let daily: i64 = v.daily.flexfactor_recovered_minor.values().flatten().sum();
        assert_eq!(daily, v.summary.flexfactor_recovered_minor, "{}", v.name);
    }
}
