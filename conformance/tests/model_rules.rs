//! Model-based property tests (proptest-state-machine): random sequences of CRM commands,
//! FlexFactor answers and results (duplicated, resent, reordered, late) and clock moves, run on
//! the domain's Order and Subscription aggregates and process manager, and checked after every
//! step against the reference model and the rule invariants (see
//! `salvage_conformance::model::invariants`):
//!
//! - O3: a trial completion's status never moves on a FlexFactor submission or failure;
//! - O4, S8: after a recurring salvage the billing gateway is the one that declined, never
//!   FlexFactor; exactly one cycle advance per salvaged rebill;
//! - O7: at most one successful charge per order and per cycle, one resolution per submission,
//!   no second notification, whatever the order and number of deliveries;
//! - D2, D3: every decline is mapped as the sample's rules say; no submission of a hard decline;
//! - C3, C4, C5: no cascade to FlexFactor without ip_address or on a Single Transaction
//!   campaign; a cascade submission is a CIT with the customer's ip;
//! - O8: an expired pending salvage is reconciled; F3: one `/evaluate` per submission;
//! - rebuilding any aggregate from its events (as stored, through JSON) gives its live state, and
//!   the state itself round-trips through JSON (the views keep it so; background rounds start
//!   from it).
//!
//! Each test favours some transitions. `PROPTEST_CASES` overrides the number of cases.

use proptest_state_machine::prop_state_machine;
use salvage_conformance::model::config;
use salvage_conformance::model::harness::{
    AllRules, Deliveries, Harness, NewSales, Recurring, TrialCompletions,
};

prop_state_machine! {
    #![proptest_config(config(96))]

    /// Every rule at once: sales, trial completions, rebills, reruns, results, clock, cancels.
    #[test]
    fn model_all_rules_o3_o4_o7_s8_d3_c3_c4_hold_on_random_sequences(
        sequential 1..30 => Harness<AllRules>
    );

    /// C1-C5, R1-R5, D2, D3, O1, O2, O6: new sales, their cascades and reruns.
    #[test]
    fn model_c3_c4_d3_r1_r5_new_sales_cascade_and_rerun_as_modelled(
        sequential 1..30 => Harness<NewSales>
    );

    /// Y1-Y4, D4, O4, O5, S8: rebills, recycle billing, the FlexFactor hand-over and its result:
    /// one cycle per salvaged rebill, billing back on the declining gateway, never FlexFactor.
    #[test]
    fn model_o4_s8_y1_y3_salvaged_rebill_advances_one_cycle_on_the_declining_gateway(
        sequential 1..30 => Harness<Recurring>
    );

    /// O3: a trial completion that FlexFactor fails keeps its status.
    #[test]
    fn model_o3_trial_completion_keeps_its_status_when_flexfactor_fails(
        sequential 1..30 => Harness<TrialCompletions>
    );

    /// O7, O8, F3: duplicated, resent, contradicting and late results, polls and late
    /// `/evaluate` answers are applied at most once; expired salvages are reconciled.
    #[test]
    fn model_o7_o8_duplicate_resent_and_late_results_apply_once(
        sequential 1..30 => Harness<Deliveries>
    );
}

/// The reference model's hand-written rules (`model::rules`) still describe
/// `examples/salvage.toml`: compared with the setup's data, not with the domain's routing.
#[test]
fn model_rules_match_the_sample_setup() {
    use salvage_conformance::model::fixtures::sample_setup;
    use salvage_conformance::model::rules;
    use salvage_domain::setup::Gateway;

    let setup = sample_setup();
    let mut regular: Vec<&str> = Vec::new();
    for g in &setup.gateways {
        match g {
            Gateway::Regular(r) => {
                regular.push(r.id.as_str());
                assert_eq!(rules::processor(r.id.as_str()), Some(r.processor.as_str()));
                let cascade: Option<Vec<&str>> = r.cascade_profile.as_ref().map(|cp| {
                    setup
                        .cascade_profile(cp)
                        .map(|p| p.gateways.iter().map(|g| g.as_str()).collect())
                        .unwrap_or_default()
                });
                assert_eq!(
                    cascade,
                    rules::cascade_profile_gateways(r.id.as_str(), None),
                    "direct cascade of {}",
                    r.id
                );
                let plan: Vec<rules::PlanStep> = setup
                    .recycle_profile_for(&r.id)
                    .map(|p| {
                        let mut steps = Vec::new();
                        for a in &p.attempts {
                            steps.push(rules::PlanStep {
                                wait_days: a.wait_days,
                                flexfactor: a.flexfactor,
                            });
                            if a.flexfactor {
                                break;
                            }
                        }
                        steps
                    })
                    .unwrap_or_default();
                assert_eq!(
                    plan,
                    rules::recycle_plan(r.id.as_str()),
                    "recycle plan of {}",
                    r.id
                );
            }
            Gateway::FlexFactor(ff) => {
                assert_eq!(ff.id.as_str(), rules::FLEXFACTOR);
                assert_eq!(ff.expiry_days, rules::EXPIRY_DAYS);
                assert_eq!(ff.include_chargebacks, rules::INCLUDE_CHARGEBACKS);
                assert!(!ff.cascade_all, "the model has no cascade_all");
            }
        }
    }
    assert_eq!(regular, rules::REGULAR.to_vec());
    let profiles: Vec<&str> = setup
        .gateway_profiles
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(profiles, rules::PROFILES.to_vec());
    for p in &setup.gateway_profiles {
        let cascade: Option<Vec<&str>> = p.cascade_profile.as_ref().map(|cp| {
            setup
                .cascade_profile(cp)
                .map(|c| c.gateways.iter().map(|g| g.as_str()).collect())
                .unwrap_or_default()
        });
        assert_eq!(
            cascade,
            rules::cascade_profile_gateways("any", Some(p.id.as_str())),
            "cascade of {}",
            p.id
        );
    }
    for c in &setup.campaigns {
        assert_eq!(
            c.single_transaction,
            rules::is_single_transaction(c.id.as_str())
        );
    }
    let mappings: Vec<String> = setup
        .decline_mappings
        .iter()
        .map(|m| {
            format!(
                "{} {:?} {:?} {:?} {} {:?}",
                m.name, m.gateway_type, m.gateway, m.order_type, m.message_contains, m.map_to
            )
        })
        .collect();
    assert_eq!(
        mappings,
        vec![
            "nmi-nsf-is-soft Some(\"nmi\") None All insufficient funds Soft",
            "authnet-do-not-honor-rebills-soft None Some(GatewayId(\"authnet-1\")) Recurring do not honor Soft",
            "stolen-is-hard Some(\"nmi\") None NewSales stolen Hard",
        ],
        "the decline mappings rules::effective_soft encodes"
    );
}
