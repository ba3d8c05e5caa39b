//! N1-N5 (with N7-N9): no two attempts on one card break the card-network retry rules, whatever
//! the order of events. proptest-state-machine drives random sequences of sales, rebills,
//! reruns, FlexFactor results, batches of the CRM's own declines, clock moves and restarts on a
//! few shared cards (two Visa, one Mastercard, one American Express), with declines that carry
//! Visa categories, raw codes and Mastercard advice codes, through the real aggregates; after
//! every step the attempts Salvage made on each card (cascade steps, FlexFactor submissions,
//! recycle re-attempts, hand-overs) are checked against the rules by the model's own checker
//! (`salvage_conformance::model::network`, written apart from the domain's guard), and the
//! blocked and delayed attempts against the reference model's prediction.
//!
//! The fixed cases below show that the checker catches a guard that lets forbidden attempts
//! through: the same sequences on the sample setup with `[network_rules] enabled = false` break
//! each rule, and on the real guard break none.
//!
//! `PROPTEST_CASES` overrides the number of cases.

use proptest_state_machine::prop_state_machine;
use salvage_conformance::model::config;
use salvage_conformance::model::fixtures::sample_setup;
use salvage_conformance::model::harness::{Harness, NetworkRules};
use salvage_conformance::model::invariants;
use salvage_conformance::model::reference::{
    Advice, Attempt, Card, Decline, DeclineKind, FfAnswer, GatewayBehaviour, Ip, Product, RefState,
    Sale, Transition, MINUTES_PER_DAY,
};
use salvage_conformance::model::rules;
use salvage_conformance::model::world::World;
use salvage_domain::network::NetworkRulesConfig;

prop_state_machine! {
    #![proptest_config(config(160))]

    /// N1-N5, N7-N9: the attempts made on each card never break the network rules.
    #[test]
    fn model_n1_n5_no_attempt_on_a_card_breaks_the_network_rules(
        sequential 1..30 => Harness<NetworkRules>
    );
}

fn soft(advice: Advice) -> Decline {
    Decline {
        kind: DeclineKind::SoftIssuerUnavailable,
        advice,
    }
}

fn sale(
    order: &str,
    card: Card,
    gateway: &'static str,
    product: Product,
    result: Attempt,
) -> Transition {
    Transition::PlaceSale(Sale {
        order: order.into(),
        product,
        gateway,
        profile: None,
        ip: Ip::Present,
        subscription: Some(format!("{order}-sub")),
        card,
        result,
    })
}

fn declined_sale(order: &str, card: Card, advice: Advice) -> Transition {
    sale(
        order,
        card,
        rules::NMI_MAIN,
        Product::Cleanser,
        Attempt::Declined(soft(advice)),
    )
}

fn crm_declines(prefix: &str, card: Card, count: u32, advice: Advice) -> Transition {
    Transition::CrmDeclines {
        prefix: prefix.into(),
        card,
        count,
        decline: soft(advice),
    }
}

/// One sequence per rule: what a guard that lets everything through would do wrong.
fn cases() -> Vec<(&'static str, Vec<Transition>)> {
    let declining = Transition::SetGateways(GatewayBehaviour::Decline(soft(Advice::None)));
    vec![
        (
            "N1",
            vec![
                declining.clone(),
                declined_sale("o1", Card::VisaA, Advice::VisaCategory(1)),
            ],
        ),
        (
            "N2",
            vec![
                declining.clone(),
                crm_declines("h1", Card::VisaA, 15, Advice::VisaCategory(2)),
                declined_sale("o1", Card::VisaA, Advice::VisaCategory(2)),
            ],
        ),
        (
            "N3",
            vec![
                declining.clone(),
                crm_declines("h1", Card::Mastercard, 1, Advice::Mac("01")),
                Transition::Advance {
                    minutes: 40 * MINUTES_PER_DAY,
                },
                declined_sale("o1", Card::Mastercard, Advice::Mac("02")),
            ],
        ),
        (
            "N4",
            vec![
                sale(
                    "o1",
                    Card::Mastercard,
                    rules::NMI_MAIN,
                    Product::Monthly,
                    Attempt::Approved,
                ),
                declining.clone(),
                Transition::PlaceRebill {
                    order: "r1".into(),
                    subscription: "o1-sub".into(),
                    gateway: rules::NMI_MAIN,
                    card: Card::Mastercard,
                    result: Attempt::Declined(soft(Advice::Mac("29"))),
                },
                Transition::Advance {
                    minutes: 2 * MINUTES_PER_DAY,
                },
            ],
        ),
        (
            "N5",
            vec![
                declining,
                crm_declines("h1", Card::Mastercard, 12, Advice::None),
                crm_declines("h2", Card::Mastercard, 12, Advice::None),
                crm_declines("h3", Card::Mastercard, 12, Advice::None),
                declined_sale("o1", Card::Mastercard, Advice::None),
            ],
        ),
    ]
}

fn run(world: &mut World, model: &mut RefState, steps: &[Transition]) {
    for t in steps {
        assert!(model.admits(t), "{t:?}");
        model.step(t);
        world.apply(t);
    }
}

#[test]
fn model_n1_n5_the_checker_catches_a_guard_that_lets_forbidden_attempts_through() {
    for (rule, steps) in cases() {
        let mut off = sample_setup();
        off.network_rules = NetworkRulesConfig::disabled();
        let mut world = World::with_setup(off, GatewayBehaviour::Approve, FfAnswer::Declined);
        let mut model = RefState::new(GatewayBehaviour::Approve, FfAnswer::Declined);
        run(&mut world, &mut model, &steps);
        let found = invariants::network_violations(&world);
        assert!(
            found.iter().any(|v| v.contains(&format!("[{rule}]"))),
            "{rule}: the guard off must break it; the checker found {found:?}"
        );
    }
}

#[test]
fn model_n1_n5_the_same_sequences_on_the_real_guard_break_nothing_and_match_the_model() {
    for (rule, steps) in cases() {
        let mut world = World::new(GatewayBehaviour::Approve, FfAnswer::Declined);
        let mut model = RefState::new(GatewayBehaviour::Approve, FfAnswer::Declined);
        for t in &steps {
            assert!(model.admits(t), "{t:?}");
            model.step(t);
            world.apply(t);
            if let Err(e) = invariants::verify(&world, &model) {
                panic!("{rule}: after {t:?}:\n{e}");
            }
        }
        let blocked = world
            .order_history
            .values()
            .flatten()
            .filter(|e| e.name() == "AttemptBlocked")
            .count()
            + world
                .sub_history
                .values()
                .flatten()
                .filter(|e| matches!(e.name(), "RecycleAttemptBlocked" | "RecycleAttemptDelayed"))
                .count();
        assert!(blocked > 0, "{rule}: the guard blocked or delayed nothing");
    }
}
