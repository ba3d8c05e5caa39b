//! Card-network retry rules on the aggregates, given/when/then: N1-N5 and N7-N9 on recycle
//! billing (Subscription) and on cascades and reruns (Order).

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use cqrs_es::test::TestFramework;
use salvage_domain::customer::CredentialKind;
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::network::{
    CardFact, CardHistory, CardKey, LoadedLedger, NetworkBlock, NetworkRule,
};
use salvage_domain::order::RecurringTerms;
use salvage_domain::subscription::*;
use salvage_domain::{DeclineFacts, DeclineType, DomainServices, EffectiveDecline, GatewayId};

type SubTest = TestFramework<Subscription>;

const VISA: &str = "411111";
const MASTERCARD: &str = "555555";

fn create(bin: &str) -> SubscriptionCommand {
    SubscriptionCommand::Create(Box::new(CreateSubscription {
        subscription_id: "sub-1".into(),
        origin_order_id: "o-1".into(),
        campaign_id: "skincare".into(),
        product_id: "serum-monthly".into(),
        price: usd(3999),
        billing_gateway: "nmi-main".into(),
        credential: CredentialKind::Token,
        terms: RecurringTerms {
            interval_days: 30,
            trial_days: None,
        },
        card: Some(CardKey::new("tok_1", bin)),
    }))
}

fn facts(category: Option<u8>, mac: Option<&str>) -> DeclineFacts {
    let mut f = decline("nmi-main", "Issuer unavailable", DeclineType::Soft);
    f.visa_category = category.map(VisaCategory);
    f.mastercard_advice_code = mac.map(|m| MastercardAdviceCode(m.into()));
    f
}

fn rebill_declined(f: DeclineFacts) -> SubscriptionCommand {
    SubscriptionCommand::RecordRebill {
        order_id: "r-1".into(),
        outcome: RebillOutcome::Declined {
            facts: f,
            effective: EffectiveDecline {
                decline_type: DeclineType::Soft,
                mapped_by: None,
                customer_message: None,
            },
        },
    }
}

fn run_due(attempt: u32) -> SubscriptionCommand {
    SubscriptionCommand::RunDueRecycleAttempt {
        order_id: "r-1".into(),
        attempt,
    }
}

/// A subscription whose rebill `r-1` on nmi-main (profile recycle-standard: waits 1, 3, 3 days,
/// FlexFactor at 4) was declined with `f` at t0.
fn recycling(bin: &str, f: DeclineFacts) -> Vec<SubscriptionEvent> {
    subscription_history(&services(), vec![create(bin), rebill_declined(f)])
}

fn at_day(days: i64) -> DomainServices {
    services_at(sample_setup(), Duration::days(days))
}

fn when(
    s: DomainServices,
    given: Vec<SubscriptionEvent>,
    cmd: SubscriptionCommand,
) -> Vec<SubscriptionEvent> {
    match SubTest::with(s).given(given).when(cmd).inspect_result() {
        Ok(e) => e,
        Err(e) => panic!("refused: {e}"),
    }
}

#[test]
fn n1_a_visa_category_1_rebill_is_never_reattempted_and_fails_at_once() {
    let given = recycling(VISA, facts(Some(1), None));
    let s = at_day(1);
    SubTest::with(s)
        .given(given)
        .when(run_due(1))
        .then_expect_events(vec![
            SubscriptionEvent::RecycleAttemptBlocked {
                order_id: "r-1".into(),
                attempt: 1,
                reason: NetworkBlock::NetworkNeverRetry,
                rule: NetworkRule::N1,
                at: t0() + Duration::days(1),
            },
            SubscriptionEvent::RecycleFailed {
                order_id: "r-1".into(),
                reason: RecycleFailure::NetworkNeverRetry,
                at: t0() + Duration::days(1),
            },
        ]);
}

#[test]
fn n6_a_visa_decline_without_category_takes_it_from_the_table() {
    // 41 (lost card) is category 1 in the shipped table.
    let mut f = facts(None, None);
    f.response_code = "41".into();
    let e = when(at_day(1), recycling(VISA, f), run_due(1));
    assert!(
        matches!(
            &e[0],
            SubscriptionEvent::RecycleAttemptBlocked {
                rule: NetworkRule::N1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn n3_a_mastercard_mac_03_blocks_each_reattempt_within_30_days_and_recycling_moves_on() {
    let given = recycling(MASTERCARD, facts(None, Some("03")));
    let e = when(at_day(1), given, run_due(1));
    assert_eq!(
        e,
        vec![
            SubscriptionEvent::RecycleAttemptBlocked {
                order_id: "r-1".into(),
                attempt: 1,
                reason: NetworkBlock::NetworkNeverRetry,
                rule: NetworkRule::N3,
                at: t0() + Duration::days(1),
            },
            // N7: the next re-attempt of the plan, checked in its turn.
            SubscriptionEvent::RecycleAttemptScheduled {
                order_id: "r-1".into(),
                attempt: 2,
                target: salvage_domain::routing::RecycleTarget::BillingGateway,
                due_at: t0() + Duration::days(4),
                at: t0() + Duration::days(1),
            },
        ]
    );
}

#[test]
fn n4_a_mastercard_wait_advice_moves_the_reattempt_not_drops_it() {
    // MAC 29: not before 8 days; the plan's first re-attempt is due after 1 day.
    let given = recycling(MASTERCARD, facts(None, Some("29")));
    let e = when(at_day(1), given.clone(), run_due(1));
    let until = t0() + Duration::days(8);
    assert_eq!(
        e,
        vec![
            SubscriptionEvent::RecycleAttemptDelayed {
                order_id: "r-1".into(),
                attempt: 1,
                until,
                rule: NetworkRule::N4,
                at: t0() + Duration::days(1),
            },
            SubscriptionEvent::RecycleAttemptScheduled {
                order_id: "r-1".into(),
                attempt: 1,
                target: salvage_domain::routing::RecycleTarget::BillingGateway,
                due_at: until,
                at: t0() + Duration::days(1),
            },
        ]
    );
    // At the advised time the re-attempt is made.
    let mut later = given;
    later.extend(e);
    let e = when(at_day(8), later, run_due(1));
    assert!(
        matches!(
            &e[0],
            SubscriptionEvent::RecycleAttemptStarted { attempt: 1, .. }
        ),
        "{e:?}"
    );
}

/// The card's history from other orders: `n` declined attempts, an hour apart, from t0.
fn other_orders(bin: &str, n: i64, f: &DeclineFacts) -> Arc<LoadedLedger> {
    let mut h = CardHistory::default();
    for i in 0..n {
        let at = t0() - Duration::days(2) + Duration::hours(i);
        let source = format!("order:other-{i}");
        h.facts.push((
            source.clone(),
            CardFact::Attempt {
                at,
                gateway: GatewayId::new("nmi-backup"),
                flexfactor: false,
            },
        ));
        h.facts.push((source, CardFact::declined(f, at)));
    }
    Arc::new(LoadedLedger {
        card: Some(CardKey::new("tok_1", bin)),
        history: h,
    })
}

#[test]
fn n2_n8_reattempts_on_other_orders_count_and_the_16th_is_not_made() {
    let f = facts(Some(2), None);
    let given = recycling(VISA, f.clone());
    // 14 earlier declined attempts on other orders: the first and 13 reattempts; the rebill's
    // own attempt (its order's fact, in the ledger) is the 14th reattempt; one more allowed.
    let mut ledger = (*other_orders(VISA, 14, &f)).clone();
    ledger.history.facts.push((
        "order:r-1".into(),
        CardFact::Attempt {
            at: t0(),
            gateway: GatewayId::new("nmi-main"),
            flexfactor: false,
        },
    ));
    let s = at_day(1).with_cards(Arc::new(ledger.clone()));
    let e = when(s, given.clone(), run_due(1));
    assert!(
        matches!(&e[0], SubscriptionEvent::RecycleAttemptStarted { .. }),
        "{e:?}"
    );
    // One more reattempt elsewhere: the limit is reached.
    ledger.history.facts.push((
        "order:r-0".into(),
        CardFact::Attempt {
            at: t0() + Duration::hours(1),
            gateway: GatewayId::new("nmi-main"),
            flexfactor: false,
        },
    ));
    let s = at_day(1).with_cards(Arc::new(ledger));
    let e = when(s, given, run_due(1));
    assert_eq!(
        &e[0],
        &SubscriptionEvent::RecycleAttemptBlocked {
            order_id: "r-1".into(),
            attempt: 1,
            reason: NetworkBlock::NetworkRetryLimit,
            rule: NetworkRule::N2,
            at: t0() + Duration::days(1),
        }
    );
}

#[test]
fn n5_n8_a_mastercard_with_35_attempts_in_30_days_is_not_attempted_again() {
    let f = facts(None, Some("02"));
    let given = recycling(MASTERCARD, f.clone());
    let s = at_day(1).with_cards(other_orders(MASTERCARD, 35, &f));
    let e = when(s, given, run_due(1));
    assert!(
        matches!(
            &e[0],
            SubscriptionEvent::RecycleAttemptBlocked {
                rule: NetworkRule::N5,
                reason: NetworkBlock::NetworkRetryLimit,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn n9_a_hand_over_to_flexfactor_obeys_never_retry_but_not_the_limits_by_default() {
    // Drive recycling to the FlexFactor slot (attempt 4) with soft declines.
    let f = facts(Some(2), None);
    let mut given = recycling(VISA, f.clone());
    let mut day = 0;
    for attempt in 1..=3 {
        day += [1, 3, 3][attempt as usize - 1];
        given.extend(when(at_day(day), given.clone(), run_due(attempt)));
        let answer = salvage_domain::ports::GatewayAnswer::Declined(f.clone());
        given.extend(when(
            at_day(day),
            given.clone(),
            SubscriptionCommand::RecordRecycleAttemptResult {
                order_id: "r-1".into(),
                attempt,
                answer,
            },
        ));
    }
    day += 5;
    // Far past Visa's 15 reattempts elsewhere: a hand-over is still made (N9 default).
    let s = at_day(day).with_cards(other_orders(VISA, 30, &f));
    let e = when(s, given.clone(), run_due(4));
    assert!(
        matches!(&e[0], SubscriptionEvent::RecycleHandedToFlexFactor { .. }),
        "{e:?}"
    );
    // A category 1 decline on another order stops it (N1 holds for hand-overs too).
    let s = at_day(day).with_cards(other_orders(VISA, 1, &facts(Some(1), None)));
    let e = when(s, given, run_due(4));
    assert!(
        matches!(
            &e[0],
            SubscriptionEvent::RecycleAttemptBlocked {
                rule: NetworkRule::N1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn n8_the_guard_reads_only_the_card_of_the_subscription() {
    // A category 1 decline of another card changes nothing.
    let f = facts(Some(2), None);
    let given = recycling(VISA, f);
    let mut ledger = (*other_orders(VISA, 1, &facts(Some(1), None))).clone();
    ledger.card = Some(CardKey::new("tok_other", VISA));
    let e = when(at_day(1).with_cards(Arc::new(ledger)), given, run_due(1));
    assert!(
        matches!(&e[0], SubscriptionEvent::RecycleAttemptStarted { .. }),
        "{e:?}"
    );
}

#[test]
fn n7_the_guard_off_makes_every_attempt() {
    let mut setup = sample_setup();
    setup.network_rules = salvage_domain::network::NetworkRulesConfig::disabled();
    let given = recycling(VISA, facts(Some(1), None));
    let e = when(services_at(setup, Duration::days(1)), given, run_due(1));
    assert!(
        matches!(&e[0], SubscriptionEvent::RecycleAttemptStarted { .. }),
        "{e:?}"
    );
}

// ------------------------------------------------------------------ the Order: cascades, reruns

use salvage_domain::order::{AttemptResult, Order, OrderCommand, OrderEvent, PlaceOrder};

type OrderTest = TestFramework<Order>;

const IP: Option<&str> = Some("203.0.113.7");

fn sale_declined(bin: &str, f: DeclineFacts) -> PlaceOrder {
    let mut p = new_sale("o-1", "nmi-main", IP, AttemptResult::Declined(f));
    p.card.bin = bin.into();
    p
}

fn placed(s: DomainServices, p: PlaceOrder) -> Vec<OrderEvent> {
    match OrderTest::with(s)
        .given_no_previous_events()
        .when(place(p))
        .inspect_result()
    {
        Ok(e) => e,
        Err(e) => panic!("refused: {e}"),
    }
}

fn event_names(e: &[OrderEvent]) -> Vec<&'static str> {
    e.iter().map(OrderEvent::name).collect()
}

#[test]
fn n1_a_visa_category_1_sale_cascades_nowhere_each_step_is_recorded_blocked() {
    // cascade-main: nmi-backup, then FlexFactor.
    let e = placed(services(), sale_declined(VISA, facts(Some(1), None)));
    assert_eq!(
        event_names(&e),
        vec![
            "OrderPlaced",
            "AttemptDeclined",
            "CascadeStarted",
            "AttemptBlocked",
            "AttemptBlocked",
            "CascadeEnded"
        ]
    );
    assert_eq!(
        e[3],
        OrderEvent::AttemptBlocked {
            gateway: "nmi-backup".into(),
            step: Some(1),
            reason: NetworkBlock::NetworkNeverRetry,
            rule: NetworkRule::N1,
            at: t0(),
        }
    );
    assert!(matches!(
        &e[4],
        OrderEvent::AttemptBlocked {
            step: Some(2),
            rule: NetworkRule::N1,
            ..
        }
    ));
}

#[test]
fn n4_a_cascade_step_cannot_wait_so_it_is_blocked_with_network_wait() {
    // MAC 24 (wait 1 h) blocks the regular step; FlexFactor (N9 default: N1 and N3 only) is
    // still tried.
    let e = placed(
        services(),
        sale_declined(MASTERCARD, facts(None, Some("24"))),
    );
    assert_eq!(
        e[3],
        OrderEvent::AttemptBlocked {
            gateway: "nmi-backup".into(),
            step: Some(1),
            reason: NetworkBlock::NetworkWait,
            rule: NetworkRule::N4,
            at: t0(),
        }
    );
    assert_eq!(e[4].name(), "SalvageSubmitted");
}

#[test]
fn n3_a_mac_21_sale_is_not_handed_to_flexfactor_either() {
    let e = placed(
        services(),
        sale_declined(MASTERCARD, facts(None, Some("21"))),
    );
    assert_eq!(
        event_names(&e),
        vec![
            "OrderPlaced",
            "AttemptDeclined",
            "CascadeStarted",
            "AttemptBlocked",
            "AttemptBlocked",
            "CascadeEnded"
        ]
    );
}

#[test]
fn n2_n8_a_cascade_step_past_visas_15_reattempts_is_skipped_for_the_next() {
    let f = facts(Some(2), None);
    // 16 declined attempts elsewhere: 15 reattempts.
    let s = services().with_cards(other_orders(VISA, 16, &f));
    let e = placed(s, sale_declined(VISA, f));
    assert_eq!(
        e[3],
        OrderEvent::AttemptBlocked {
            gateway: "nmi-backup".into(),
            step: Some(1),
            reason: NetworkBlock::NetworkRetryLimit,
            rule: NetworkRule::N2,
            at: t0(),
        }
    );
    // N9: the hand-over to FlexFactor is not held to the limit by default.
    assert_eq!(e[4].name(), "SalvageSubmitted");
}

#[test]
fn n7_a_rerun_the_network_forbids_is_recorded_not_submitted() {
    let mut p = sale_declined(VISA, facts(Some(1), None));
    p.gateway = "stripe-eu".into();
    let s = services();
    let given = order_history(&s, vec![place(p)]);
    OrderTest::with(s)
        .given(given)
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .then_expect_events(vec![OrderEvent::AttemptBlocked {
            gateway: "flexfactor".into(),
            step: None,
            reason: NetworkBlock::NetworkNeverRetry,
            rule: NetworkRule::N1,
            at: t0(),
        }]);
}

#[test]
fn n9_a_flexfactor_gateway_set_to_ignore_takes_the_rerun() {
    let mut setup = sample_setup();
    for g in &mut setup.gateways {
        if let salvage_domain::setup::Gateway::FlexFactor(ff) = g {
            ff.network_rules = salvage_domain::network::FlexFactorNetworkRules::Ignore;
        }
    }
    let s = services_at(setup, Duration::zero());
    let mut p = sale_declined(VISA, facts(Some(1), None));
    p.gateway = "stripe-eu".into();
    let given = order_history(&s, vec![place(p)]);
    let e = match OrderTest::with(s)
        .given(given)
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .inspect_result()
    {
        Ok(e) => e,
        Err(e) => panic!("refused: {e}"),
    };
    assert_eq!(event_names(&e), vec!["SalvageSubmitted"]);
}

#[test]
fn n8_an_orders_facts_are_what_the_ledger_counts() {
    let s = services();
    let h = order_history(&s, vec![place(sale_declined(VISA, facts(Some(2), None)))]);
    let mut o = Order::default();
    for e in h {
        cqrs_es::Aggregate::apply(&mut o, e);
    }
    // The CRM's attempt and its decline, the cascade step on nmi-backup.
    let kinds: Vec<&str> = o
        .card_facts
        .iter()
        .map(|f| match f {
            CardFact::Attempt { .. } => "attempt",
            CardFact::Decline { .. } => "decline",
            CardFact::Approval { .. } => "approval",
        })
        .collect();
    assert_eq!(kinds, vec!["attempt", "decline", "attempt"]);
}

#[test]
fn n7_the_guard_is_on_by_default_and_turning_it_off_is_warned_about() {
    let setup = sample_setup();
    assert!(setup.network_rules.enabled);
    assert!(setup.warnings().is_empty());
    let off = format!("{SAMPLE}\n[network_rules]\nenabled = false\n");
    let setup = match salvage_domain::Setup::from_toml_str(&off) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(!setup.network_rules.enabled);
    assert!(
        setup.warnings()[0].contains("enabled = false"),
        "{:?}",
        setup.warnings()
    );
}

#[test]
fn n6_a_setup_table_with_a_bad_category_is_refused_at_load() {
    let bad = format!("{SAMPLE}\n[network_rules.visa_categories.nmi]\n\"200\" = 9\n");
    let e = match salvage_domain::Setup::from_toml_str(&bad) {
        Ok(_) => panic!("a category 9 must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("[N6]") && e.contains("category 9"), "{e}");
}
