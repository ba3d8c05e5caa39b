//! The shipped scenario `network_rules.toml`: with the guard on, attempts are blocked under every
//! rule and delayed under N4; with it off none is, and the forbidden attempts it makes are
//! counted with their fees; the report is the same whatever the thread count.

mod common;

use common::*;
use salvage_sim::report::{Report, NETWORK_RULES};
use salvage_sim::{Scenario, ScenarioOverrides};

fn shipped(customers: u32) -> Scenario {
    Scenario::load(
        &scenarios_dir().join("network_rules.toml"),
        ScenarioOverrides {
            customers: Some(customers),
            ..Default::default()
        },
    )
    .unwrap()
}

fn run_shipped() -> Report {
    let report = run(&shipped(1500), 2);
    assert_sound(&report);
    report
}

#[test]
fn n1_to_n5_the_guard_blocks_every_rule_and_the_unguarded_variant_none() {
    let r = run_shipped();
    let (on, off) = (&r.variants[0], &r.variants[1]);
    println!("{}", r.network_table());
    assert!(on.network.enabled && !off.network.enabled);

    let blocked = &on.network.blocked;
    for rule in NETWORK_RULES {
        assert!(
            blocked.by_rule[rule] > 0,
            "guard on: nothing blocked by {rule}"
        );
    }
    // Where: a recycle re-attempt under N1 (then Recycle Failed), N2, N3 and N5; a cascade step
    // that cannot wait under N4; re-attempts moved under N4; hand-overs under N1 and N3.
    let reattempts = &blocked.by_attempt["recycle_reattempt"];
    for rule in ["N1", "N2", "N3", "N5"] {
        assert!(reattempts[rule] > 0, "no re-attempt blocked by {rule}");
    }
    assert!(blocked.by_attempt["cascade_step"]["N4"] > 0);
    assert!(on.network.delayed_n4 > 0, "N4 moves re-attempts");
    assert!(
        on.recycle.failed["network_never_retry"] > 0,
        "N1 ends recycling"
    );
    assert!(blocked.orders.values().sum::<u64>() > 0 && blocked.subscriptions["N3"] > 0);
    assert_eq!(
        blocked.total,
        blocked.orders.values().sum::<u64>() + blocked.subscriptions.values().sum::<u64>()
    );
    // N9's default: hand-overs obey N1 and N3 only.
    for kind in ["cascade_flexfactor", "rerun", "recycle_handover"] {
        let b = &blocked.by_attempt[kind];
        assert_eq!(b["N2"] + b["N4"] + b["N5"], 0, "{kind}");
    }
    // Fees avoided: every N1, N2, N5 block on a regular gateway, N3 after MAC 03/21.
    let fees = &blocked.fees.by_rule_minor;
    let regular = |rule: &str| (blocked.by_attempt["cascade_step"][rule] + reattempts[rule]) as i64;
    assert_eq!(fees["N1"], 10 * regular("N1"));
    assert_eq!(fees["N2"], 10 * regular("N2"));
    assert_eq!(fees["N5"], 50 * regular("N5"));
    assert!(fees["N3"] > 0 && fees["N4"] == 0);
    assert_eq!(
        on.network.unguarded.total, 0,
        "the guard makes no forbidden attempt"
    );

    // Guard off: nothing blocked or moved; the forbidden attempts it makes are counted.
    assert_eq!(off.network.blocked.total, 0);
    assert_eq!(off.network.delayed_n4, 0);
    assert_eq!(off.recycle.failed.get("network_never_retry"), None);
    let made = &off.network.unguarded;
    for rule in ["N1", "N2", "N3", "N5"] {
        assert!(
            made.by_rule[rule] > 0,
            "guard off: no forbidden attempt under {rule}"
        );
    }
    assert!(off.network.unguarded_early_n4 > 0);
    assert!(made.fees.total_minor > 0);
    assert_eq!(
        made.fees.by_rule_minor["N1"],
        10 * made.by_attempt["cascade_step"]["N1"] as i64
            + 10 * made.by_attempt["recycle_reattempt"]["N1"] as i64
    );
    // The same traffic: the same sales, declined alike.
    assert_eq!(on.new_sales, off.new_sales);
}

#[test]
fn the_network_report_is_the_same_whatever_the_thread_count() {
    let s = shipped(300);
    let one = run(&s, 1).to_json().unwrap();
    assert_eq!(one, run(&s, 1).to_json().unwrap(), "two runs");
    assert_eq!(one, run(&s, 3).to_json().unwrap(), "1 vs 3 threads");
    assert!(one.contains("\"fees_usd_minor\"") || one.contains("\"by_rule_minor\""));
    let html = salvage_sim::html::render(&run(&s, 2)).unwrap();
    assert_eq!(html, salvage_sim::html::render(&run(&s, 1)).unwrap());
    assert!(html.contains("Card-network rules"));
}

/// N9: a FlexFactor gateway set to `ignore` takes every hand-over, cascade step and rerun;
/// the regular gateways' attempts are still guarded.
#[test]
fn n9_a_flexfactor_gateway_set_to_ignore_is_never_blocked() {
    let text = std::fs::read_to_string(scenarios_dir().join("network_rules.toml")).unwrap()
        + "\n[[variants]]\nname = \"ignore\"\nflexfactor_network_rules = \"ignore\"\n";
    let s = Scenario::from_toml_str(
        &text,
        &scenarios_dir().join("network_rules.toml"),
        ScenarioOverrides {
            customers: Some(600),
            ..Default::default()
        },
    )
    .unwrap();
    let r = run(&s, 2);
    assert_sound(&r);
    let (on, ignore) = (&r.variants[0].network, &r.variants[2].network);
    for kind in ["cascade_flexfactor", "rerun", "recycle_handover"] {
        let n: u64 = ignore.blocked.by_attempt[kind].values().sum();
        assert_eq!(n, 0, "{kind}");
    }
    let handed: u64 = ["cascade_flexfactor", "rerun"]
        .iter()
        .flat_map(|k| on.blocked.by_attempt[k].values())
        .sum();
    assert!(handed > 0, "the default (never_retry) blocks some");
    assert!(ignore.blocked.by_attempt["recycle_reattempt"]["N3"] > 0);
}
