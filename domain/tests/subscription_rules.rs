//! Subscription aggregate, given/when/then: rules D4, Y1-Y4, O4, O5, O7 (one advance per
//! rebill) and S8.

mod common;

use chrono::Duration;
use common::*;
use cqrs_es::test::TestFramework;
use salvage_domain::customer::CredentialKind;
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::order::RecurringTerms;
use salvage_domain::ports::GatewayAnswer;
use salvage_domain::routing::{RecycleSlot, RecycleTarget};
use salvage_domain::setup::{RecycleAttempt, RecycleProfile};
use salvage_domain::subscription::*;
use salvage_domain::{DeclineType, DomainServices, EffectiveDecline, OrderId};

type SubTest = TestFramework<Subscription>;

fn create(gateway: &str) -> SubscriptionCommand {
    SubscriptionCommand::Create(Box::new(CreateSubscription {
        subscription_id: "sub-1".into(),
        origin_order_id: "o-1".into(),
        campaign_id: "skincare".into(),
        product_id: "serum-monthly".into(),
        price: usd(3999),
        billing_gateway: gateway.into(),
        credential: CredentialKind::Token,
        terms: RecurringTerms {
            interval_days: 30,
            trial_days: None,
        },
        card: None,
    }))
}

fn declined(gateway: &str, t: DeclineType) -> RebillOutcome {
    RebillOutcome::Declined {
        facts: decline(gateway, "Issuer unavailable", t),
        effective: EffectiveDecline {
            decline_type: t,
            mapped_by: None,
            customer_message: None,
        },
    }
}

fn rebill_declined(order: &str, gateway: &str) -> SubscriptionCommand {
    SubscriptionCommand::RecordRebill {
        order_id: order.into(),
        outcome: declined(gateway, DeclineType::Soft),
    }
}

fn run(
    s: &DomainServices,
    given: Vec<SubscriptionEvent>,
    cmd: SubscriptionCommand,
) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
    SubTest::with(s.clone())
        .given(given)
        .when(cmd)
        .inspect_result()
}

fn events(
    s: &DomainServices,
    given: Vec<SubscriptionEvent>,
    cmd: SubscriptionCommand,
) -> Vec<SubscriptionEvent> {
    match run(s, given, cmd) {
        Ok(e) => e,
        Err(e) => panic!("refused: {e}"),
    }
}

fn run_due(order: &str, attempt: u32) -> SubscriptionCommand {
    SubscriptionCommand::RunDueRecycleAttempt {
        order_id: order.into(),
        attempt,
    }
}

fn result(order: &str, attempt: u32, answer: GatewayAnswer) -> SubscriptionCommand {
    SubscriptionCommand::RecordRecycleAttemptResult {
        order_id: order.into(),
        attempt,
        answer,
    }
}

fn soft_answer() -> GatewayAnswer {
    GatewayAnswer::Declined(decline("nmi-main", "Issuer unavailable", DeclineType::Soft))
}

/// Drives recycling of rebill `r-1` on nmi-main (profile recycle-standard: FlexFactor at 4)
/// through `declines` declined re-attempts; returns the history and the services at that time.
fn recycled(declines: u32) -> (Vec<SubscriptionEvent>, DomainServices) {
    let s0 = services();
    let mut all = subscription_history(
        &s0,
        vec![create("nmi-main"), rebill_declined("r-1", "nmi-main")],
    );
    let mut offset = Duration::zero();
    for attempt in 1..=declines {
        offset += Duration::days(30);
        let s = services_at(sample_setup(), offset);
        all.extend(events(&s, all.clone(), run_due("r-1", attempt)));
        all.extend(events(
            &s,
            all.clone(),
            result("r-1", attempt, soft_answer()),
        ));
    }
    (
        all,
        services_at(sample_setup(), offset + Duration::days(30)),
    )
}

#[test]
fn d4_hard_declined_rebill_is_recycle_failed_at_once() {
    let s = services();
    let given = subscription_history(&s, vec![create("nmi-main")]);
    SubTest::with(s)
        .given(given)
        .when(SubscriptionCommand::RecordRebill {
            order_id: "r-1".into(),
            outcome: declined("nmi-main", DeclineType::Hard),
        })
        .then_expect_events(vec![
            SubscriptionEvent::RebillDeclined {
                order_id: "r-1".into(),
                facts: decline("nmi-main", "Issuer unavailable", DeclineType::Hard),
                effective: EffectiveDecline {
                    decline_type: DeclineType::Hard,
                    mapped_by: None,
                    customer_message: None,
                },
                at: t0(),
            },
            SubscriptionEvent::RecycleFailed {
                order_id: "r-1".into(),
                reason: RecycleFailure::HardDecline,
                at: t0(),
            },
        ]);
}

#[test]
fn y1_soft_declined_rebill_enters_recycle_billing_with_the_first_wait() {
    let s = services();
    let given = subscription_history(&s, vec![create("nmi-main")]);
    let e = events(&s, given.clone(), rebill_declined("r-1", "nmi-main"));
    assert_eq!(
        sub_names(&e),
        vec![
            "RebillDeclined",
            "RecycleBillingStarted",
            "RecycleAttemptScheduled"
        ]
    );
    match &e[2] {
        SubscriptionEvent::RecycleAttemptScheduled {
            attempt,
            target,
            due_at,
            ..
        } => {
            assert_eq!(*attempt, 1);
            assert_eq!(target, &RecycleTarget::BillingGateway);
            assert_eq!(*due_at, t0() + Duration::days(1));
        }
        other => panic!("{other:?}"),
    }
    let mut all = given;
    all.extend(e);
    assert_eq!(
        subscription_state(&all).status,
        Some(SubscriptionStatus::RecycleBilling)
    );
    // Not due yet.
    SubTest::with(s)
        .given(all.clone())
        .when(run_due("r-1", 1))
        .then_expect_error(SubscriptionError::NotDue(1));
    // Due after the wait; the wait of the next one counts from this attempt.
    let s1 = services_at(sample_setup(), Duration::days(1));
    let e = events(&s1, all.clone(), run_due("r-1", 1));
    assert_eq!(
        e,
        vec![SubscriptionEvent::RecycleAttemptStarted {
            order_id: "r-1".into(),
            attempt: 1,
            gateway: "nmi-main".into(),
            idempotency_key: IdempotencyKey::recycle_charge(&OrderId::new("r-1"), 1),
            at: t0() + Duration::days(1),
        }]
    );
    all.extend(e);
    let e = events(&s1, all, result("r-1", 1, soft_answer()));
    assert!(
        matches!(&e[1], SubscriptionEvent::RecycleAttemptScheduled { attempt: 2, due_at, .. } if *due_at == t0() + Duration::days(4))
    );
}

#[test]
fn y1_running_the_same_attempt_twice_charges_once() {
    let s = services_at(sample_setup(), Duration::days(2));
    let mut all = subscription_history(
        &services(),
        vec![create("nmi-main"), rebill_declined("r-1", "nmi-main")],
    );
    all.extend(events(&s, all.clone(), run_due("r-1", 1)));
    SubTest::with(s)
        .given(all)
        .when(run_due("r-1", 1))
        .then_expect_events(vec![]);
}

#[test]
fn y2_approval_on_the_billing_gateway_returns_to_active_next_cycle() {
    let (mut all, s) = recycled(1);
    all.extend(events(&s, all.clone(), run_due("r-1", 2)));
    let e = events(
        &s,
        all.clone(),
        result(
            "r-1",
            2,
            GatewayAnswer::Approved {
                transaction_id: Some("tx".into()),
            },
        ),
    );
    assert_eq!(sub_names(&e), vec!["CycleAdvanced"]);
    assert!(matches!(
        &e[0],
        SubscriptionEvent::CycleAdvanced {
            from_cycle: 1,
            to_cycle: 2,
            via: AdvanceVia::Recycle { attempt: 2 },
            ..
        }
    ));
    all.extend(e);
    let sub = subscription_state(&all);
    assert_eq!(sub.status, Some(SubscriptionStatus::Active));
    assert_eq!(sub.cycle, 2);
}

#[test]
fn y3_reaching_the_flexfactor_slot_hands_over_once() {
    let (mut all, s) = recycled(3);
    let e = events(&s, all.clone(), run_due("r-1", 4));
    assert_eq!(e.len(), 1);
    assert!(matches!(
        &e[0],
        SubscriptionEvent::RecycleHandedToFlexFactor {
            attempt: 4,
            slot: RecycleSlot::Attempts4To6,
            ..
        }
    ));
    all.extend(e);
    SubTest::with(s.clone())
        .given(all.clone())
        .when(run_due("r-1", 4))
        .then_expect_events(vec![]);
    // Slot 5 is never used.
    assert_eq!(run(&s, all, run_due("r-1", 5)).unwrap(), vec![]);
}

#[test]
fn y3_final_slot_hands_over_at_the_last_attempt() {
    let s0 = services();
    let mut all = subscription_history(
        &s0,
        vec![create("authnet-1"), rebill_declined("r-1", "authnet-1")],
    );
    for attempt in 1..=2 {
        let s = services_at(sample_setup(), Duration::days(10 * attempt as i64));
        all.extend(events(&s, all.clone(), run_due("r-1", attempt)));
        all.extend(events(
            &s,
            all.clone(),
            result("r-1", attempt, soft_answer()),
        ));
    }
    let s = services_at(sample_setup(), Duration::days(60));
    let e = events(&s, all, run_due("r-1", 3));
    assert!(matches!(
        &e[0],
        SubscriptionEvent::RecycleHandedToFlexFactor {
            slot: RecycleSlot::Final,
            ..
        }
    ));
}

#[test]
fn y4_all_attempts_declined_without_flexfactor_is_recycle_failed() {
    let mut setup = sample_setup();
    setup.recycle_profiles.push(RecycleProfile {
        id: "short".into(),
        gateways: vec!["stripe-eu".into()],
        flexfactor_gateway: None,
        attempts: vec![
            RecycleAttempt {
                wait_days: 1,
                flexfactor: false
            };
            2
        ],
    });
    let s = services_at(setup.clone(), Duration::zero());
    let mut all = subscription_history(
        &s,
        vec![create("stripe-eu"), rebill_declined("r-1", "stripe-eu")],
    );
    for attempt in 1..=2 {
        let s = services_at(setup.clone(), Duration::days(5 * attempt as i64));
        all.extend(events(&s, all.clone(), run_due("r-1", attempt)));
        all.extend(events(
            &s,
            all.clone(),
            result("r-1", attempt, soft_answer()),
        ));
    }
    assert!(matches!(
        all.last(),
        Some(SubscriptionEvent::RecycleFailed {
            reason: RecycleFailure::Exhausted,
            ..
        })
    ));
    assert_eq!(
        subscription_state(&all).status,
        Some(SubscriptionStatus::RecycleFailed)
    );
}

#[test]
fn y4_no_recycle_profile_fails_at_once() {
    let s = services();
    let given = subscription_history(&s, vec![create("stripe-eu")]);
    let e = events(&s, given, rebill_declined("r-1", "stripe-eu"));
    assert!(matches!(
        e.last(),
        Some(SubscriptionEvent::RecycleFailed {
            reason: RecycleFailure::NoRecycleProfile,
            ..
        })
    ));
}

#[test]
fn y_unknown_charge_outcome_is_not_a_decline() {
    let (mut all, s) = recycled(0);
    all.extend(events(&s, all.clone(), run_due("r-1", 1)));
    let e = events(
        &s,
        all.clone(),
        result(
            "r-1",
            1,
            GatewayAnswer::Unknown {
                detail: "timeout".into(),
            },
        ),
    );
    assert_eq!(sub_names(&e), vec!["RecycleAttemptOutcomeUnknown"]);
    all.extend(e);
    // The reconciled answer later settles the same attempt.
    let e = events(
        &s,
        all,
        result(
            "r-1",
            1,
            GatewayAnswer::Approved {
                transaction_id: None,
            },
        ),
    );
    assert_eq!(sub_names(&e), vec!["CycleAdvanced"]);
}

fn handed_over() -> (Vec<SubscriptionEvent>, DomainServices) {
    let (mut all, s) = recycled(3);
    all.extend(events(&s, all.clone(), run_due("r-1", 4)));
    (all, s)
}

fn salvage_outcome(succeeded: bool) -> SubscriptionCommand {
    SubscriptionCommand::ApplySalvageOutcome {
        order_id: "r-1".into(),
        succeeded,
        declined_gateway: "nmi-main".into(),
    }
}

#[test]
fn o4_recurring_success_advances_exactly_one_cycle_and_reverts_the_gateway() {
    let (all, s) = handed_over();
    let e = events(&s, all.clone(), salvage_outcome(true));
    assert_eq!(e.len(), 1);
    match &e[0] {
        SubscriptionEvent::CycleAdvanced {
            from_cycle,
            to_cycle,
            billing_gateway,
            via,
            ..
        } => {
            assert_eq!((*from_cycle, *to_cycle), (1, 2));
            assert_eq!(billing_gateway.as_str(), "nmi-main");
            assert_eq!(via, &AdvanceVia::FlexFactor);
        }
        other => panic!("{other:?}"),
    }
    let mut after = all;
    after.extend(e);
    // O7: the same result again advances nothing.
    let again = events(&s, after.clone(), salvage_outcome(true));
    assert_eq!(sub_names(&again), vec!["SalvageResultIgnored"]);
    after.extend(again);
    assert_eq!(subscription_state(&after).cycle, 2);
}

#[test]
fn o5_recurring_failure_is_recycle_failed() {
    let (all, s) = handed_over();
    SubTest::with(s)
        .given(all)
        .when(salvage_outcome(false))
        .then_expect_events(vec![SubscriptionEvent::RecycleFailed {
            order_id: "r-1".into(),
            reason: RecycleFailure::FlexFactorFailed,
            at: t0() + Duration::days(120),
        }]);
}

#[test]
fn s8_billing_gateway_is_never_flexfactor() {
    let s = services();
    SubTest::with(s.clone())
        .given_no_previous_events()
        .when(create("flexfactor"))
        .then_expect_error(SubscriptionError::BillingOnFlexFactor("flexfactor".into()));
    let (all, s) = handed_over();
    let e = events(
        &s,
        all,
        SubscriptionCommand::ApplySalvageOutcome {
            order_id: "r-1".into(),
            succeeded: true,
            declined_gateway: "flexfactor".into(),
        },
    );
    assert!(
        matches!(&e[0], SubscriptionEvent::CycleAdvanced { billing_gateway, .. } if billing_gateway.as_str() == "nmi-main")
    );
}

#[test]
fn trial_subscription_starts_in_trial_and_bills_after_the_trial() {
    let s = services();
    let e = events(
        &s,
        vec![],
        SubscriptionCommand::Create(Box::new(CreateSubscription {
            subscription_id: "sub-t".into(),
            origin_order_id: "o-1".into(),
            campaign_id: "skincare".into(),
            product_id: "serum-trial".into(),
            price: usd(499),
            billing_gateway: "nmi-main".into(),
            credential: CredentialKind::CardNumberWithoutCvv,
            terms: RecurringTerms {
                interval_days: 30,
                trial_days: Some(14),
            },
            card: None,
        })),
    );
    assert!(
        matches!(&e[0], SubscriptionEvent::SubscriptionCreated { status: SubscriptionStatus::Trial, next_bill_at, .. } if *next_bill_at == t0() + Duration::days(14))
    );
}
