//! `salvage calibrate` round trip: a trace made by the simulator from known parameters (its
//! events as the service's feed holds them, exported as a trace), replayed and fitted, gives
//! those parameters back within their 95% intervals; the scenario it writes loads and runs.

mod common;

use std::sync::Arc;

use common::*;
use salvage_domain::order::OrderEvent;
use salvage_sim::calibrate::{Fit, Share};
use salvage_sim::engine::Recorded;
use salvage_sim::replay::replay;
use salvage_sim::report::Report;
use salvage_sim::sim_trace::simulated_trace;
use salvage_sim::stats::Interval;
use salvage_sim::trace::NumberedLine;
use salvage_sim::{Engine, RunOptions, Scenario, ScenarioOverrides};

/// Known parameters. No decline says "never" (the models would then refuse the card, which a
/// fitted share cannot tell apart), and O6 rebills approve like the others.
const KNOWN: &str = r#"
name = "known"
seed = 99
horizon_days = 150
setup = { path = "setup.toml" }

[population]
customers = 2500
arrival_days = 30
ip_address_share = 0.7
card_networks = { visa = 50, mastercard = 40, other = 10 }
products = [
  { campaign = "coaching", product = "coaching-monthly", weight = 3 },
  { campaign = "skincare", product = "cleanser", weight = 1 },
]

[gateways]
new_sale_approval = 0.6
rebill_approval = 0.7
cascade_approval = 0.3
recycle_approval = [0.2, 0.15, 0.1]
soft_share = 0.85
card_number_without_cvv_factor = 1.0
never_retry_approval_factor = 1.0
soft_declines = [
  { code = "51", message = "Insufficient funds", weight = 3, visa_category = 2, mastercard_advice_code = "02" },
  { code = "05", message = "Do not honor", weight = 1 },
]
hard_declines = [{ code = "54", message = "Expired card", weight = 1, visa_category = 3, mastercard_advice_code = "01" }]

[flexfactor]
cascade_approval = 0.3
rerun_recovery = 0.45
lost_webhook_share = 0.1

[flexfactor.recycle_recovery]
"4-6" = 0.5
"7-9" = 0.35
final = 0.3

[crm]
rerun_share = 0.6
rerun_trial_share = 0.0

[after_sale]
chargeback_share = 0.1
chargeback_delay_days = [5, 20]
refund_share = 0.0
"#;

fn covers(name: &str, s: &Share, truth: f64) {
    let (lo, hi) = s.interval().unwrap_or_else(|| panic!("{name}: no sample"));
    assert!(
        lo <= truth && truth <= hi,
        "{name}: {truth} outside {lo:.4}-{hi:.4} ({} of {})",
        s.hits,
        s.n
    );
}

#[test]
fn a_simulated_trace_gives_its_parameters_back() {
    let scenario = scenario(KNOWN);
    let engine = Engine::new(&scenario);
    let lines = simulated_trace(&engine, 0).unwrap();
    let numbered: Vec<NumberedLine> = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| NumberedLine {
            number: i + 1,
            line,
        })
        .collect();
    let setup = scenario.base_setup.clone();
    let outcome = replay(Arc::clone(&setup), &numbered);
    assert!(
        outcome.refused.is_empty(),
        "{:?}",
        &outcome.refused[..3.min(outcome.refused.len())]
    );
    let fit = Fit::of_events(&setup, &outcome.events);

    assert_eq!(fit.new_sales, 2500);
    covers("ip_address_share", &fit.ip_address, 0.7);
    covers("new_sale_approval", &fit.new_sale_approval, 0.6);
    covers("rebill_approval", &fit.rebill_approval, 0.7);
    covers("soft_share", &fit.soft, 0.85);
    covers("cascade_approval", &fit.cascade_approval, 0.3);
    covers("recycle_approval[1]", &fit.recycle_approval[&1], 0.2);
    covers("flexfactor.cascade_approval", &fit.flexfactor_cascade, 0.3);
    covers("rerun_recovery", &fit.rerun_recovery, 0.45);
    covers("recycle_recovery 4-6", &fit.recycle_recovery[0], 0.5);
    covers("lost_webhook_share", &fit.lost_webhook, 0.1);
    covers("chargeback_share", &fit.chargeback, 0.1);
    covers("rerun_share", &fit.rerun, 0.6);
    let visa = Share {
        hits: fit.networks[0],
        n: fit.networks.iter().sum(),
    };
    covers("visa share", &visa, 0.5);
    let coaching = Share {
        hits: fit.products[&("coaching".to_string(), "coaching-monthly".to_string())],
        n: fit.new_sales,
    };
    covers("product mix", &coaching, 0.75);
    let (lo, hi) = fit.chargeback_days.unwrap();
    assert!(lo >= 5 && hi <= 20, "{lo}-{hi}");
    // The advice goes with the card's network.
    let nsf = &fit.codes[&(true, "51".to_string(), "Insufficient funds".to_string())];
    assert_eq!(nsf.visa_categories.keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(
        nsf.mastercard_advice.keys().cloned().collect::<Vec<_>>(),
        ["02"]
    );
    let dnh = Share {
        hits: fit.codes[&(true, "05".to_string(), "Do not honor".to_string())].count,
        n: fit
            .codes
            .iter()
            .filter(|(k, _)| k.0)
            .map(|(_, c)| c.count)
            .sum(),
    };
    covers("soft code mix", &dnh, 0.25);
    // The delays: the default weights put 20 of 110 on day 0.
    let day0 = Share {
        hits: fit.delay_days[0],
        n: fit.delay_days.iter().sum(),
    };
    covers("delay day 0", &day0, 20.0 / 110.0);

    // The scenario written loads (next to setup.toml) and runs.
    let text = fit.to_scenario_toml("fitted", "setup.toml", "a simulated trace");
    assert!(text.contains("new_sale_approval = 0."), "{text}");
    assert!(
        text.contains("of 2500 first attempts of new sales approved"),
        "{text}"
    );
    let fitted = Scenario::from_toml_str(
        &text,
        &scenarios_dir().join("fitted.toml"),
        ScenarioOverrides {
            customers: Some(200),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_sound(&run(&fitted, 2));
}

/// Item 4's promise: `salvage simulate` on the scenario `salvage calibrate` wrote from a trace
/// reproduces the trace's own recovery rate within the interval the report gives. The trace is
/// the simulator's, from the known parameters (1,000 customers); its own figures are those of
/// the run that made it (the same customers, seed and draws; checked against the trace's
/// events). The fitted scenario is then run on 6 seeds, as `salvage simulate --seeds 6` does,
/// and the trace's recovered revenue per declined revenue must lie within the 95% interval of
/// that rate over the seeds (as the report makes its intervals), and its recovered orders within
/// the report's own interval of `recovered_orders`.
#[test]
fn the_fitted_scenario_reproduces_the_traces_recovery_rate() {
    let known = Scenario::from_toml_str(
        KNOWN,
        &scenarios_dir().join("test.toml"),
        ScenarioOverrides {
            customers: Some(1000),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(&known);
    let lines = simulated_trace(&engine, 0).unwrap();
    let own = Report::build(
        &known,
        &engine.run(&RunOptions {
            threads: 2,
            progress: None,
        }),
    );
    let own = &own.variants[0].summary;

    let numbered: Vec<NumberedLine> = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| NumberedLine {
            number: i + 1,
            line,
        })
        .collect();
    let setup = known.base_setup.clone();
    let outcome = replay(Arc::clone(&setup), &numbered);
    assert!(outcome.refused.is_empty());
    // The run's figures are the trace's: as many FlexFactor recoveries in its events.
    let salvaged = outcome
        .events
        .iter()
        .filter(|e| matches!(e, Recorded::Order(_, OrderEvent::SalvageSucceeded { .. })))
        .count() as u64;
    assert_eq!(salvaged, own.flexfactor_recovered_orders);
    let fit = Fit::of_events(&setup, &outcome.events);
    let text = fit.to_scenario_toml("fitted", "setup.toml", "a simulated trace");
    let fitted = Scenario::from_toml_str(
        &text,
        &scenarios_dir().join("fitted.toml"),
        ScenarioOverrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(fitted.spec.population.customers, 1000);

    let seeds: Vec<u64> = (0..6).map(|i| fitted.spec.seed + i).collect();
    let runs = Engine::new(&fitted).run_seeds(
        &seeds,
        &RunOptions {
            threads: 2,
            progress: None,
        },
    );
    let report = Report::build_seeds(&fitted, &seeds, &runs);
    assert_sound(&report);
    let figure = |name: &str| {
        report
            .uncertainty
            .figure(0, name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let recovered = figure("recovered_minor");
    let declined = figure("declined_minor");
    let rates: Vec<f64> = recovered
        .per_seed
        .iter()
        .zip(&declined.per_seed)
        .map(|(r, d)| *r as f64 / *d as f64)
        .collect();
    let rate = Interval::of(&rates);
    let trace_rate = own.recovered_minor as f64 / own.declined_minor as f64;
    assert!(
        rate.covers(trace_rate),
        "the trace recovered {trace_rate:.4} of its declined revenue; the fitted scenario \
         {:.4} ({:?}-{:?}) over {rates:?}",
        rate.mean,
        rate.low,
        rate.high
    );
    let orders = &figure("recovered_orders").interval;
    assert!(
        orders.covers(own.recovered_orders as f64),
        "the trace recovered {} orders; the fitted scenario {orders:?}",
        own.recovered_orders
    );
}
