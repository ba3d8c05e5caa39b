//! Every shipped scenario loads and runs (small population and horizon for speed); bad
//! scenarios are refused with the file and the field named.

mod common;

use std::path::Path;

use common::*;
use salvage_sim::{Engine, RunOptions, Scenario, ScenarioError, ScenarioOverrides};

fn shipped() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        // Simulation scenarios have a population (setup.toml and other tools' files do not).
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("[population]"))
        })
        .collect();
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/million.toml"));
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_loads_and_runs() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "default.toml",
        "slots.toml",
        "cascade_all.toml",
        "expiry_days.toml",
        "network_rules.toml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} is shipped");
    }
    for file in files {
        let scenario = Scenario::load(
            &file,
            ScenarioOverrides {
                customers: Some(60),
                horizon_days: Some(60),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let report = run(&scenario, 2);
        assert_sound(&report);
        assert!(report.variants.len() >= 2 || file.ends_with("million.toml"));
        for v in &report.variants {
            assert_eq!(v.customers, 60, "{}", file.display());
        }
        salvage_sim::html::render(&report).unwrap();
    }
}

#[test]
fn the_slot_comparison_hands_over_at_the_slot_of_each_variant() {
    let scenario = Scenario::load(
        &scenarios_dir().join("slots.toml"),
        ScenarioOverrides {
            customers: Some(150),
            horizon_days: Some(120),
            ..Default::default()
        },
    )
    .unwrap();
    let report = run(&scenario, 1);
    let handovers = |variant: usize, slot: &str| {
        report.variants[variant].flexfactor.by_slot[slot]
            .counts
            .submitted
    };
    assert!(handovers(0, "4-6") > 0);
    assert_eq!(handovers(0, "7-9") + handovers(0, "final"), 0);
    assert!(handovers(1, "7-9") > 0);
    assert_eq!(handovers(1, "4-6") + handovers(1, "final"), 0);
    assert_eq!(handovers(2, "4-6") + handovers(2, "7-9"), 0);
    let none = &report.variants[3];
    assert_eq!(none.flexfactor.by_route["recycle"].counts.submitted, 0);
    assert!(none.recycle.gateway_reattempts > report.variants[0].recycle.gateway_reattempts);
}

fn load_err(text: &str) -> String {
    match Scenario::from_toml_str(
        text,
        &scenarios_dir().join("bad.toml"),
        ScenarioOverrides::default(),
    ) {
        Ok(_) => panic!("the scenario should be refused"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = r#"
name = "bad"
seed = 1
horizon_days = 30
setup = { path = "setup.toml" }
"#;

#[test]
fn bad_fields_are_named_with_the_file() {
    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\nip_address_share = 1.5\nproducts = [{{ campaign = \"nope\", product = \"x\" }}]\n[flexfactor]\nrerun_recovery = -0.1\n"
    ));
    assert!(e.contains("bad.toml"), "{e}");
    assert!(e.contains("population.ip_address_share"), "{e}");
    assert!(e.contains("population.products[0].campaign"), "{e}");
    assert!(e.contains("flexfactor.rerun_recovery"), "{e}");

    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[gateways]\nnew_sale_aproval = 0.5\n"
    ));
    assert!(
        e.contains("bad.toml") && e.contains("new_sale_aproval"),
        "{e}"
    );
}

#[test]
fn bad_network_fields_are_named() {
    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\ncard_networks = {{ visa = 0, mastercard = 0, other = 0 }}\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[gateways]\nnever_retry_approval_factor = 2.0\nsoft_declines = [{{ code = \"51\", message = \"m\", visa_category = 5, mastercard_advice_code = \"3\" }}]\n"
    ));
    assert!(e.contains("population.card_networks"), "{e}");
    assert!(e.contains("gateways.never_retry_approval_factor"), "{e}");
    assert!(e.contains("gateways.soft_declines[0].visa_category"), "{e}");
    assert!(
        e.contains("gateways.soft_declines[0].mastercard_advice_code"),
        "{e}"
    );

    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[[variants]]\nname = \"v\"\nnetwork_rules = {{ enabled = false, nope = 1 }}\n"
    ));
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn s2_a_variant_making_an_invalid_setup_is_named() {
    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[[variants]]\nname = \"too long\"\nexpiry_days = 30\n"
    ));
    assert!(e.contains("variant \"too long\""), "{e}");
    assert!(e.contains("S2"), "{e}");

    let e = load_err(&format!(
        "{HEAD}\n[population]\ncustomers = 10\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[[variants]]\nname = \"v\"\nrecycle_flexfactor = {{ recycle-ladder = [12], nope = [4] }}\n"
    ));
    assert!(
        e.contains("variants[0].recycle_flexfactor.\"recycle-ladder\""),
        "{e}"
    );
    assert!(e.contains("re-attempt 12 does not exist"), "{e}");
    assert!(e.contains("\"nope\""), "{e}");
}

#[test]
fn a_missing_setup_or_scenario_file_is_named() {
    let e = load_err(
        "name = \"bad\"\nseed = 1\nhorizon_days = 30\nsetup = { path = \"missing.toml\" }\n[population]\ncustomers = 1\nproducts = []\n",
    );
    assert!(
        e.contains("setup.path") && e.contains("missing.toml"),
        "{e}"
    );
    let e = Scenario::load(
        Path::new("/nonexistent/scenario.toml"),
        ScenarioOverrides::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ScenarioError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/scenario.toml"));
}

#[test]
fn an_inline_setup_works_like_a_file() {
    let setup = std::fs::read_to_string(scenarios_dir().join("setup.toml")).unwrap();
    let table: toml::Table = toml::from_str(&setup).unwrap();
    let mut doc = toml::Table::new();
    doc.insert("name".into(), "inline".into());
    doc.insert("seed".into(), 5.into());
    doc.insert("horizon_days".into(), 40.into());
    let mut source = toml::Table::new();
    source.insert("inline".into(), table.into());
    doc.insert("setup".into(), source.into());
    let population: toml::Table = toml::from_str(
        "customers = 30\nproducts = [{ campaign = \"coaching\", product = \"coaching-monthly\" }]",
    )
    .unwrap();
    doc.insert("population".into(), population.into());
    let s = scenario(&toml::to_string(&doc).unwrap());
    let report = run(&s, 1);
    assert_eq!(report.scenario.setup, "(inline)");
    assert_sound(&report);
}

#[test]
fn progress_counts_every_customer_of_every_variant() {
    let s = Scenario::load(
        &scenarios_dir().join("cascade_all.toml"),
        ScenarioOverrides {
            customers: Some(300),
            horizon_days: Some(20),
            ..Default::default()
        },
    )
    .unwrap();
    let done = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    let engine = Engine::new(&s);
    engine.run(&RunOptions {
        threads: 2,
        progress: Some(&progress),
    });
    assert_eq!(done.into_inner(), engine.total_work());
    assert_eq!(engine.total_work(), 600);
}

/// default.toml writes out the models' defaults (decline mixes with their network advice, card
/// networks), so that the file documents them.
#[test]
fn default_toml_writes_out_the_model_defaults() {
    use salvage_sim::scenario::{CardNetworkMix, GatewayModelSpec};
    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }
    let s = Scenario::load(
        &scenarios_dir().join("default.toml"),
        ScenarioOverrides::default(),
    )
    .unwrap();
    let mut gateways = s.spec.gateways.clone();
    gateways.per_gateway.clear();
    assert_eq!(json(&gateways), json(&GatewayModelSpec::default()));
    assert_eq!(
        json(&s.spec.population.card_networks),
        json(&CardNetworkMix::default())
    );
}
