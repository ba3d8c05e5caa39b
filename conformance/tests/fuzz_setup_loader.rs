//! The `setup_loader` fuzz target's logic on the stable toolchain (S1-S8): every seed and
//! corpus file, arbitrary text, mutated seeds and generated setups go through
//! `salvage_conformance::model::fuzz_entry::setup_loader` (`Setup::from_toml_str`, then every
//! route, plan, mapping and aggregate that reads a setup that loaded) without a panic.

use proptest::prelude::*;
use salvage_conformance::model::config;
use salvage_conformance::model::fuzz_corpus::{corpus, mutated, no_panic};
use salvage_conformance::model::fuzz_entry::setup_loader;

#[test]
fn fuzz_setup_loader_seeds_and_corpus_do_not_panic() {
    let files = corpus("setup_loader");
    assert!(files.len() >= 5, "the setup_loader seeds are missing");
    for (name, data) in &files {
        no_panic(name, || setup_loader(data));
    }
}

/// A setup in the sample's shape with its numbers and flags drawn at random, within what a
/// real setup uses (see the ignored test below for what lies beyond).
fn setup_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => 1i64..=21, 1 => -2i64..30],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![4 => 1i64..=400, 1 => -2i64..3],
        proptest::option::of(prop_oneof![4 => 1i64..=60, 1 => -2i64..3]),
        proptest::collection::vec(
            (
                prop_oneof![6 => 0i64..=40, 1 => Just(-1i64)],
                proptest::bool::weighted(0.1),
            ),
            0..11,
        ),
        prop_oneof![Just("nmi"), Just("stripe"), Just("")],
        prop_oneof![4 => Just("insufficient funds"), 1 => Just(""), 1 => Just(" "), 1 => Just("İ")],
        any::<bool>(),
    )
        .prop_map(
            |(
                expiry,
                cascade_all,
                chargebacks,
                interval,
                trial,
                attempts,
                processor,
                message,
                single,
            )| {
                let trial = trial
                    .map(|t| format!(", trial_days = {t}"))
                    .unwrap_or_default();
                let attempts: Vec<String> = attempts
                    .iter()
                    .map(|(w, ff)| format!("{{ wait_days = {w}, flexfactor = {ff} }}"))
                    .collect();
                format!(
                    r#"
[[gateways]]
kind = "regular"
id = "g1"
processor = "{processor}"
cascade_profile = "cp"

[[gateways]]
kind = "regular"
id = "g2"
processor = "nmi"

[[gateways]]
kind = "flexfactor"
id = "ff"
expiry_days = {expiry}
cascade_all = {cascade_all}
include_chargebacks = {chargebacks}
[gateways.credentials]
app_key = "k"
app_secret = "s"
mid = "m"
site_id = "x"
environment_key = "e"
hmac_signing_key = "c2VjcmV0"

[[cascade_profiles]]
id = "cp"
gateways = ["g2", "ff"]

[[gateway_profiles]]
id = "gp"
members = ["g1", "g2"]
cascade_profile = "cp"

[[campaigns]]
id = "c"
currency = "USD"
single_transaction = {single}
gateway_profile = "gp"

[[campaigns.products]]
id = "p"
price_minor = 100
recurring = {{ interval_days = {interval}{trial} }}

[[recycle_profiles]]
id = "r"
gateways = ["g1", "g2"]
flexfactor_gateway = "ff"
attempts = [{attempts}]

[[decline_mappings]]
name = "m"
gateway_type = "nmi"
message_contains = "{message}"
map_to = "soft"
"#,
                    attempts = attempts.join(", ")
                )
            },
        )
}

/// The generated setups are mostly valid, so the exercise after loading is reached.
#[test]
fn fuzz_setup_loader_generated_setups_mostly_load() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = setup_text();
    let loaded = (0..200)
        .filter(|_| {
            strategy
                .new_tree(&mut runner)
                .map(|t| salvage_domain::Setup::from_toml_str(&t.current()).is_ok())
                .unwrap_or(false)
        })
        .count();
    assert!(loaded >= 40, "only {loaded} of 200 generated setups load");
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn fuzz_setup_loader_arbitrary_text_does_not_panic(text in ".{0,512}") {
        setup_loader(text.as_bytes());
    }

    #[test]
    fn fuzz_setup_loader_mutated_seeds_do_not_panic(data in mutated("setup_loader")) {
        setup_loader(&data);
    }

    #[test]
    fn fuzz_setup_loader_generated_setups_do_not_panic(text in setup_text()) {
        setup_loader(text.as_bytes());
    }
}
