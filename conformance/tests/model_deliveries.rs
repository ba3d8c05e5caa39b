//! O7 (with O1-O6, K1, K3, F3): a FlexFactor outcome delivered any number of times in any
//! order — webhooks, resent webhooks, status polls, a late `/evaluate` answer, "still pending"
//! polls and time passing in between — ends exactly as one delivery would: same order and
//! subscription states, same payments, same CRM notifications, once each. The reference model
//! and every invariant are checked after each step too.
//!
//! `PROPTEST_CASES` overrides the number of cases.

use proptest::prelude::*;
use salvage_conformance::model::config;
use salvage_conformance::model::deliveries::{
    canonical, cases, delivered, run, Case, Scenario, Truth,
};
use salvage_conformance::model::reference::{Delivery, FfAnswer, Transition};

fn check(case: &Case) -> Result<(), TestCaseError> {
    let once = run(&canonical(case)).map_err(TestCaseError::fail)?;
    let any = run(&delivered(case)).map_err(TestCaseError::fail)?;
    prop_assert_eq!(any, once, "delivered as {:?}", case.deliveries);
    Ok(())
}

proptest! {
    #![proptest_config(config(160))]

    /// O7: any order (a refund or chargeback even before the completion), any number of
    /// copies: applied once.
    #[test]
    fn model_o7_results_apply_once_in_any_order(case in cases()) {
        check(&case)?;
    }
}

/// The same, spelled out for one case of each scenario: the completion comes three times
/// (webhook, resent webhook, status poll) around a "still pending" poll.
#[test]
fn model_o7_triple_completion_is_one_payment_one_notification_each_scenario() {
    for scenario in [
        Scenario::RerunNewSale { recurring: true },
        Scenario::RerunTrialCompletion,
        Scenario::RecycleHandover {
            billing: "nmi-main",
        },
    ] {
        let order = salvage_conformance::model::deliveries::order_of(scenario).to_string();
        let d = |delivery, poll, resent| Transition::Deliver {
            order: order.clone(),
            delivery,
            poll,
            resent,
        };
        let case = Case {
            scenario,
            first_answer: FfAnswer::Submitted,
            truth: Truth::Completed,
            refund: false,
            chargeback: false,
            deliveries: vec![
                d(Delivery::StillPending, true, false),
                d(Delivery::Completed, false, false),
                d(Delivery::Completed, false, true),
                d(Delivery::Completed, true, false),
            ],
        };
        if let Err(e) = check(&case) {
            panic!("{scenario:?}: {e}");
        }
    }
}

/// K1, K3, O7: a refund and a chargeback of the same salvaged order, each delivered twice, in
/// either order: each is applied once (one flag, one notification each). Which of the two
/// statuses the order ends in is the later one's (the rules do not say which should win).
#[test]
fn model_k1_k3_refund_and_chargeback_each_apply_once_in_either_order() {
    let d = |delivery, resent| Transition::Deliver {
        order: "o1".into(),
        delivery,
        poll: false,
        resent,
    };
    for first in [Delivery::Refunded, Delivery::Chargeback] {
        let second = if first == Delivery::Refunded {
            Delivery::Chargeback
        } else {
            Delivery::Refunded
        };
        let case = Case {
            scenario: Scenario::RerunNewSale { recurring: false },
            first_answer: FfAnswer::Submitted,
            truth: Truth::Completed,
            refund: true,
            chargeback: true,
            deliveries: vec![
                d(Delivery::Completed, false),
                d(first, false),
                d(second, false),
                d(first, true),
                d(second, true),
            ],
        };
        let snap = match run(&delivered(&case)) {
            Ok(s) => s,
            Err(e) => panic!("{first:?} first: {e}"),
        };
        assert!(
            snap.orders[0].contains("refunded true, chargeback true"),
            "{first:?} first: {:?}",
            snap.orders
        );
        for kind in ["Refunded", "Chargeback", "OrderCompleted"] {
            let n: usize = snap
                .notifications
                .iter()
                .filter(|(k, _)| k.starts_with(kind))
                .map(|(_, n)| n)
                .sum();
            assert_eq!(n, 1, "{first:?} first: {kind} notified {n} times");
        }
    }
}

/// O7, K3: a refund delivered before the completion it follows (a reordered or redelivered
/// webhook) is deferred, then applied once the completion arrives: the order ends refunded and
/// the CRM is told once. (Found by this suite: it used to be ignored and lost.)
#[test]
fn model_o7_k3_refund_delivered_before_completion_is_not_lost() {
    let d = |delivery| Transition::Deliver {
        order: "o1".into(),
        delivery,
        poll: false,
        resent: false,
    };
    let case = Case {
        scenario: Scenario::RerunNewSale { recurring: false },
        first_answer: FfAnswer::Submitted,
        truth: Truth::Completed,
        refund: true,
        chargeback: false,
        deliveries: vec![d(Delivery::Refunded), d(Delivery::Completed)],
    };
    let once = run(&canonical(&case)).unwrap();
    let reordered = run(&delivered(&case)).unwrap();
    assert_eq!(reordered, once);
    assert!(
        once.orders[0].contains("Some(Refunded)"),
        "{:?}",
        once.orders
    );
}
