//! Model-based conformance: a small reference model of Salvage's rules, checked against the
//! domain's Order and Subscription aggregates and the process manager with
//! `proptest-state-machine`, and the fuzz entry points shared by `conformance/fuzz` and the
//! stable `fuzz_*` tests.
//!
//! - [`rules`]: the sample setup's rules (`examples/salvage.toml`) written out by hand, apart
//!   from the domain: decline mapping (D2), cascade routes (C1, C3, C4), recycle plans (Y1, Y3).
//! - [`reference`]: the reference state machine: per order status / paid / salvage outcome, per
//!   subscription status / cycle / billing gateway, and the transitions (commands, FlexFactor
//!   answers and results with duplicates, reorders and late arrivals, the clock).
//! - [`world`]: the system under test: the real aggregates and the real process manager, run in
//!   memory with a manual clock and timers, effects answered by scripted gateways.
//! - [`network`]: the card-network rules N1-N5 written a second time, apart from the domain's
//!   guard: what the reference predicts, and the checker of the attempts made on each card.
//! - [`invariants`]: the rule invariants checked on the system after every step, and the
//!   comparison with the reference model.
//! - [`harness`]: the `StateMachineTest` glue and the focus (transition weights) of each test.
//! - [`deliveries`]: O7: one FlexFactor outcome delivered in any order, duplicated and resent.
//! - [`fuzz_entry`]: the fuzz targets' logic (webhook, CRM requests, setup loader);
//!   [`fuzz_corpus`]: their seeds and corpus for the stable `fuzz_*` tests.
//!
//! Run: `cargo test -p salvage-conformance --test 'model_*'` (set `PROPTEST_CASES` for more or
//! fewer cases).

pub mod deliveries;
pub mod fixtures;
pub mod fuzz_corpus;
pub mod fuzz_entry;
pub mod harness;
pub mod invariants;
pub mod network;
pub mod reference;
pub mod rules;
pub mod world;

/// A proptest configuration with `default_cases` cases, unless `PROPTEST_CASES` says otherwise.
/// Failure persistence is off: the suite's regressions are kept as named tests, not files.
pub fn config(default_cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default_cases);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
