//! Order aggregate, given/when/then with cqrs-es's TestFramework: rules D1-D3, C1-C6, R1-R5,
//! O1-O3, O7, O8, K1-K3, F3, F5 and the order side of Y3.

mod common;

use chrono::Duration;
use common::*;
use cqrs_es::test::TestFramework;
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::order::*;
use salvage_domain::ports::{EvaluateAnswer, GatewayAnswer, SubmissionMode};
use salvage_domain::routing::{NoCascadeReason, RecycleSlot};
use salvage_domain::setup::Gateway;
use salvage_domain::{DeclineType, DomainServices, OrderType, Setup};

type OrderTest = TestFramework<Order>;

const IP: Option<&str> = Some("203.0.113.7");

fn run(
    services: &DomainServices,
    given: Vec<OrderEvent>,
    cmd: OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    OrderTest::with(services.clone())
        .given(given)
        .when(cmd)
        .inspect_result()
}

fn events(services: &DomainServices, given: Vec<OrderEvent>, cmd: OrderCommand) -> Vec<OrderEvent> {
    match run(services, given, cmd) {
        Ok(e) => e,
        Err(e) => panic!("command refused: {e}"),
    }
}

fn approved() -> EvaluateAnswer {
    EvaluateAnswer::Approved {
        flexfactor_order_id: Some("ff-1".into()),
        confirmation_id: Some("382AB3".into()),
    }
}

fn webhook(id: &str) -> ResultSource {
    ResultSource::Webhook {
        delivery_id: id.into(),
        resent: false,
    }
}

fn completed() -> FlexFactorResult {
    FlexFactorResult::Completed {
        flexfactor_order_id: Some("ff-1".into()),
        confirmation_id: Some("22ACD1D9".into()),
    }
}

/// A declined new sale (no cascade: stripe-eu has no cascade profile) rerun on FlexFactor.
fn rerun_pending(services: &DomainServices) -> Vec<OrderEvent> {
    order_history(
        services,
        vec![
            place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu"))),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
            OrderCommand::RecordFlexFactorAnswer {
                attempt: 1,
                answer: EvaluateAnswer::Submitted {
                    flexfactor_order_id: Some("ff-1".into()),
                },
            },
        ],
    )
}

fn with_flexfactor(
    mut setup: Setup,
    f: impl Fn(&mut salvage_domain::setup::FlexFactorGateway),
) -> Setup {
    for g in &mut setup.gateways {
        if let Gateway::FlexFactor(ff) = g {
            f(ff);
        }
    }
    setup
}

// ------------------------------------------------------------------ D

#[test]
fn d1_declined_attempt_records_all_decline_facts() {
    let s = services();
    let mut facts = decline("stripe-eu", "Do Not Honor", DeclineType::Soft);
    facts.response_code = "05".into();
    facts.visa_category = Some(VisaCategory(2));
    facts.mastercard_advice_code = Some(MastercardAdviceCode("24".into()));
    let e = events(
        &s,
        vec![],
        place(new_sale(
            "o-1",
            "stripe-eu",
            IP,
            AttemptResult::Declined(facts.clone()),
        )),
    );
    assert_eq!(
        names(&e),
        vec!["OrderPlaced", "AttemptDeclined", "CascadeSkipped"]
    );
    match &e[1] {
        OrderEvent::AttemptDeclined {
            facts: got,
            effective,
            at,
        } => {
            assert_eq!(got, &facts);
            assert_eq!(effective.decline_type, DeclineType::Soft);
            assert_eq!(*at, t0(), "times come from the Clock");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn d2_mapping_turns_a_hard_decline_soft_and_it_cascades() {
    let s = services();
    let facts = decline(
        "nmi-main",
        "DECLINE - Insufficient Funds",
        DeclineType::Hard,
    );
    let e = events(
        &s,
        vec![],
        place(new_sale(
            "o-1",
            "nmi-main",
            IP,
            AttemptResult::Declined(facts),
        )),
    );
    match &e[1] {
        OrderEvent::AttemptDeclined { effective, .. } => {
            assert_eq!(effective.decline_type, DeclineType::Soft);
            assert_eq!(effective.mapped_by.as_deref(), Some("nmi-nsf-is-soft"));
            assert!(effective.customer_message.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(names(&e).contains(&"CascadeStarted"));
}

#[test]
fn d3_hard_decline_is_never_submitted_to_flexfactor() {
    let s = services();
    let e = events(
        &s,
        vec![],
        place(new_sale("o-1", "nmi-main", IP, hard("nmi-main"))),
    );
    assert_eq!(
        names(&e),
        vec!["OrderPlaced", "AttemptDeclined", "CascadeSkipped"]
    );
    assert!(matches!(
        e[2],
        OrderEvent::CascadeSkipped {
            reason: NoCascadeReason::HardDecline,
            ..
        }
    ));
    // Nor by rerun (R3).
    let err = run(
        &s,
        e,
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "hard_decline");
}

#[test]
fn d3_hard_decline_mapped_soft_for_this_mid_only() {
    let s = services();
    // "stolen" is mapped hard for NMI new sales; here the processor says soft, the mapping wins.
    let facts = decline("nmi-main", "Stolen card", DeclineType::Soft);
    let e = events(
        &s,
        vec![],
        place(new_sale(
            "o-1",
            "nmi-main",
            IP,
            AttemptResult::Declined(facts),
        )),
    );
    assert!(matches!(
        e[2],
        OrderEvent::CascadeSkipped {
            reason: NoCascadeReason::HardDecline,
            ..
        }
    ));
}

// ------------------------------------------------------------------ C

#[test]
fn c1_direct_cascade_tries_the_profile_in_order_then_flexfactor() {
    let s = services();
    let given = events(
        &s,
        vec![],
        place(new_sale("o-1", "nmi-main", IP, soft("nmi-main"))),
    );
    assert_eq!(
        names(&given),
        vec![
            "OrderPlaced",
            "AttemptDeclined",
            "CascadeStarted",
            "CascadeStepStarted"
        ]
    );
    match &given[3] {
        OrderEvent::CascadeStepStarted {
            step,
            gateway,
            idempotency_key,
            ..
        } => {
            assert_eq!((*step, gateway.as_str()), (1, "nmi-backup"));
            assert_eq!(
                idempotency_key,
                &IdempotencyKey::cascade_charge(&"o-1".into(), 1)
            );
        }
        other => panic!("{other:?}"),
    }
    let step_declined = events(
        &s,
        given.clone(),
        OrderCommand::RecordCascadeStep {
            step: 1,
            answer: GatewayAnswer::Declined(decline(
                "nmi-backup",
                "Issuer unavailable",
                DeclineType::Soft,
            )),
        },
    );
    assert_eq!(
        names(&step_declined),
        vec!["CascadeStepDeclined", "SalvageSubmitted"]
    );
    let mut history = given;
    history.extend(step_declined);
    let done = events(
        &s,
        history.clone(),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: approved(),
        },
    );
    assert_eq!(
        names(&done),
        vec!["SalvageSucceeded", "CascadeEnded", "FulfillmentRequested"]
    );
    history.extend(done);
    let order = order_state(&history);
    assert_eq!(order.status, Some(OrderStatus::Complete));
    assert_eq!(
        order.paid_by.as_ref().map(|g| g.as_str()),
        Some("flexfactor")
    );
}

#[test]
fn c1_regular_cascade_step_approval_completes_the_order() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "nmi-main", IP, soft("nmi-main")))],
    );
    OrderTest::with(s)
        .given(given)
        .when(OrderCommand::RecordCascadeStep {
            step: 1,
            answer: GatewayAnswer::Approved {
                transaction_id: None,
            },
        })
        .then_expect_events(vec![
            OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Approved {
                    gateway: "nmi-backup".into(),
                },
                at: t0(),
            },
            OrderEvent::FulfillmentRequested { at: t0() },
        ]);
}

#[test]
fn c1_atri_profile_cascade_goes_to_its_cascade_profile() {
    let s = services();
    let mut cmd = new_sale("o-1", "nmi-main", IP, soft("nmi-main"));
    cmd.gateway_profile = Some("atri-us".into());
    let e = events(&s, vec![], place(cmd));
    assert_eq!(
        names(&e),
        vec![
            "OrderPlaced",
            "AttemptDeclined",
            "CascadeStarted",
            "SalvageSubmitted"
        ]
    );
}

#[test]
fn c1_wrong_step_answer_is_refused() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "nmi-main", IP, soft("nmi-main")))],
    );
    OrderTest::with(s)
        .given(given)
        .when(OrderCommand::RecordCascadeStep {
            step: 2,
            answer: GatewayAnswer::Approved {
                transaction_id: None,
            },
        })
        .then_expect_error(OrderError::UnexpectedCascadeStep(2));
}

#[test]
fn c2_cascade_all_sends_every_soft_decline_straight_to_flexfactor() {
    let setup = with_flexfactor(sample_setup(), |ff| ff.cascade_all = true);
    let s = services_at(setup, Duration::zero());
    // stripe-eu has no cascade profile at all; nmi-main's own profile is overridden.
    for gw in ["stripe-eu", "nmi-main"] {
        let e = events(&s, vec![], place(new_sale("o-1", gw, IP, soft(gw))));
        assert_eq!(
            names(&e),
            vec![
                "OrderPlaced",
                "AttemptDeclined",
                "CascadeStarted",
                "SalvageSubmitted"
            ],
            "{gw}"
        );
    }
}

#[test]
fn c3_no_cascade_to_flexfactor_without_ip_address() {
    let s = services();
    let e = order_history(
        &s,
        vec![place({
            let mut c = new_sale("o-1", "nmi-main", None, soft("nmi-main"));
            c.gateway_profile = Some("atri-us".into());
            c
        })],
    );
    assert_eq!(
        names(&e),
        vec!["OrderPlaced", "AttemptDeclined", "CascadeSkipped"]
    );
    assert!(matches!(
        e[2],
        OrderEvent::CascadeSkipped {
            reason: NoCascadeReason::MissingIpAddress,
            ..
        }
    ));
    assert_eq!(order_state(&e).status, Some(OrderStatus::Declined));
    // With cascade_all too.
    let s2 = services_at(
        with_flexfactor(sample_setup(), |ff| ff.cascade_all = true),
        Duration::zero(),
    );
    let e = events(
        &s2,
        vec![],
        place(new_sale("o-1", "stripe-eu", None, soft("stripe-eu"))),
    );
    assert!(matches!(
        e[2],
        OrderEvent::CascadeSkipped {
            reason: NoCascadeReason::MissingIpAddress,
            ..
        }
    ));
}

#[test]
fn c4_single_transaction_campaign_never_cascades_to_flexfactor() {
    let s = services();
    let mut cmd = new_sale("o-1", "nmi-main", IP, soft("nmi-main"));
    cmd.campaign_id = "one-click-bundle".into();
    cmd.gateway_profile = Some("atri-us".into());
    cmd.items[0].product_id = "bundle".into();
    let e = events(&s, vec![], place(cmd));
    assert!(matches!(
        e[2],
        OrderEvent::CascadeSkipped {
            reason: NoCascadeReason::SingleTransactionCampaign,
            ..
        }
    ));
    assert!(!names(&e).contains(&"SalvageSubmitted"));
}

#[test]
fn c5_cascade_is_one_customer_initiated_evaluate_with_ip_and_no_expiry() {
    let s = services();
    let mut cmd = new_sale("o-1", "nmi-main", IP, soft("nmi-main"));
    cmd.gateway_profile = Some("atri-us".into());
    let e = events(&s, vec![], place(cmd));
    match &e[3] {
        OrderEvent::SalvageSubmitted {
            attempt,
            route,
            mode,
            idempotency_key,
            amount,
            ..
        } => {
            assert_eq!(*attempt, 1);
            assert_eq!(route, &SalvageRoute::Cascade { step: 1 });
            assert_eq!(
                mode,
                &SubmissionMode::Cit {
                    customer_ip: "203.0.113.7".into()
                }
            );
            assert_eq!(idempotency_key, &IdempotencyKey::salvage(&"o-1".into(), 1));
            assert_eq!(amount, &usd(1999));
        }
        other => panic!("{other:?}"),
    }
}

fn cascade_to_flexfactor(s: &DomainServices) -> Vec<OrderEvent> {
    let mut cmd = new_sale("o-1", "nmi-main", IP, soft("nmi-main"));
    cmd.gateway_profile = Some("atri-us".into());
    order_history(s, vec![place(cmd)])
}

#[test]
fn c5_any_answer_but_approved_declines_the_cascade() {
    let s = services();
    for (answer, cancel) in [
        (
            EvaluateAnswer::Declined {
                flexfactor_order_id: None,
            },
            false,
        ),
        (
            EvaluateAnswer::Challenge {
                flexfactor_order_id: Some("ff-1".into()),
            },
            true,
        ),
        (
            EvaluateAnswer::Rejected {
                reason: "ExpiryDateUtc invalid".into(),
            },
            false,
        ),
        (
            EvaluateAnswer::Submitted {
                flexfactor_order_id: None,
            },
            true,
        ),
        (
            EvaluateAnswer::Unrecognized {
                raw_status: "WEIRD".into(),
                flexfactor_order_id: None,
            },
            true,
        ),
    ] {
        let given = cascade_to_flexfactor(&s);
        let e = events(
            &s,
            given.clone(),
            OrderCommand::RecordFlexFactorAnswer {
                attempt: 1,
                answer: answer.clone(),
            },
        );
        let n = names(&e);
        assert_eq!(n.first(), Some(&"SalvageFailed"), "{answer:?}");
        assert_eq!(n.contains(&"ExternalCancelRequested"), cancel, "{answer:?}");
        assert_eq!(n.last(), Some(&"CascadeEnded"));
        let mut all = given;
        all.extend(e);
        assert_eq!(
            order_state(&all).status,
            Some(OrderStatus::Declined),
            "{answer:?}"
        );
    }
}

#[test]
fn c5_unknown_outcome_declines_and_cancels_at_flexfactor() {
    let s = services();
    let e = events(
        &s,
        cascade_to_flexfactor(&s),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: EvaluateAnswer::Unknown {
                detail: "timeout after sending".into(),
            },
        },
    );
    assert_eq!(
        names(&e),
        vec!["SalvageFailed", "ExternalCancelRequested", "CascadeEnded"]
    );
    assert!(matches!(
        &e[0],
        OrderEvent::SalvageFailed {
            reason: SalvageFailure::OutcomeUnknown,
            ..
        }
    ));
}

#[test]
fn c5_approved_completes_and_requests_fulfillment() {
    let s = services();
    let e = events(
        &s,
        cascade_to_flexfactor(&s),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: approved(),
        },
    );
    assert_eq!(
        names(&e),
        vec!["SalvageSucceeded", "CascadeEnded", "FulfillmentRequested"]
    );
}

#[test]
fn c6_cascade_answer_is_final_with_no_wait_period() {
    let s = services();
    let mut all = cascade_to_flexfactor(&s);
    assert_eq!(
        order_state(&all).status,
        Some(OrderStatus::Pending),
        "during the call"
    );
    all.extend(events(
        &s,
        all.clone(),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: approved(),
        },
    ));
    let o = order_state(&all);
    assert_eq!(o.status, Some(OrderStatus::Complete));
    assert!(
        o.salvage.as_ref().unwrap().expires_at().is_none(),
        "no expiry for a cascade"
    );
    assert!(!all
        .iter()
        .any(|e| matches!(e, OrderEvent::SalvageAccepted { .. })));
}

// ------------------------------------------------------------------ R

#[test]
fn r1_rerun_on_an_atri_gateway_profile_is_rejected() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu")))],
    );
    let err = run(
        &s,
        given,
        OrderCommand::RequestRerun {
            gateway: "atri-us".into(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "rerun_on_gateway_profile");
    assert!(err.to_string().contains("R1"));
}

#[test]
fn r2_rerun_is_an_asynchronous_mit_with_expiry_and_the_order_is_salvage_pending() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu")))],
    );
    OrderTest::with(s.clone())
        .given(given.clone())
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .then_expect_events(vec![OrderEvent::SalvageSubmitted {
            attempt: 1,
            route: SalvageRoute::Rerun,
            flexfactor_gateway: "flexfactor".into(),
            idempotency_key: IdempotencyKey::salvage(&"o-1".into(), 1),
            mode: SubmissionMode::Mit {
                expires_at: t0() + Duration::days(21),
                recurring: false,
            },
            amount: usd(1999),
            at: t0(),
        }]);
    let all = rerun_pending(&s);
    assert_eq!(order_state(&all).status, Some(OrderStatus::SalvagePending));
}

#[test]
fn r2_expiry_follows_expiry_days() {
    let s = services_at(
        with_flexfactor(sample_setup(), |ff| ff.expiry_days = 7),
        Duration::zero(),
    );
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu")))],
    );
    let e = events(
        &s,
        given,
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    );
    assert!(
        matches!(&e[0], OrderEvent::SalvageSubmitted { mode: SubmissionMode::Mit { expires_at, .. }, .. } if *expires_at == t0() + Duration::days(7))
    );
}

#[test]
fn r3_hard_declined_sale_cannot_be_rerun() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "stripe-eu", IP, hard("stripe-eu")))],
    );
    OrderTest::with(s)
        .given(given)
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .then_expect_error(OrderError::RerunRefused(
            salvage_domain::routing::RerunRefusal::HardDecline,
        ));
}

#[test]
fn r4_new_sale_with_recurring_products_may_be_rerun() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(recurring_sale("o-1", "stripe-eu", soft("stripe-eu")))],
    );
    assert_eq!(
        order_state(&given).details.unwrap().recurring_lines.len(),
        1
    );
    let e = events(
        &s,
        given,
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    );
    assert_eq!(names(&e), vec!["SalvageSubmitted"]);
}

#[test]
fn r5_rerunning_a_pending_complete_or_salvaged_order_is_rejected() {
    let s = services();
    // Complete (approved at once).
    let given = order_history(
        &s,
        vec![place(new_sale(
            "o-1",
            "stripe-eu",
            IP,
            AttemptResult::Approved,
        ))],
    );
    assert_eq!(
        run(
            &s,
            given,
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into()
            }
        )
        .unwrap_err()
        .code(),
        "not_declined"
    );
    // Pending: the cascade's regular step has not answered.
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "nmi-main", IP, soft("nmi-main")))],
    );
    assert_eq!(
        run(
            &s,
            given,
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into()
            }
        )
        .unwrap_err()
        .code(),
        "not_declined"
    );
    // Salvaged.
    let mut all = rerun_pending(&s);
    all.extend(events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: webhook("d1"),
        },
    ));
    // The same rerun again is a no-op; a rerun on another FlexFactor id is refused.
    OrderTest::with(s.clone())
        .given(all.clone())
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .then_expect_events(vec![]);
    assert!(run(
        &s,
        all,
        OrderCommand::RequestRerun {
            gateway: "atri-us".into()
        }
    )
    .is_err());
}

#[test]
fn r5_repeating_the_same_rerun_is_idempotent() {
    let s = services();
    OrderTest::with(s.clone())
        .given(rerun_pending(&s))
        .when(OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn r5_after_a_failed_rerun_a_new_rerun_is_a_new_attempt_with_a_new_key() {
    let s = services();
    let mut all = rerun_pending(&s);
    all.extend(events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Expired,
            source: webhook("d1"),
        },
    ));
    let e = events(
        &s,
        all,
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    );
    match &e[0] {
        OrderEvent::SalvageSubmitted {
            attempt,
            idempotency_key,
            ..
        } => {
            assert_eq!(*attempt, 2);
            assert_eq!(idempotency_key, &IdempotencyKey::salvage(&"o-1".into(), 2));
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ O

#[test]
fn o1_new_sale_success_is_complete_and_fulfilled() {
    let s = services();
    let given = rerun_pending(&s);
    let e = events(
        &s,
        given.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: webhook("d1"),
        },
    );
    assert_eq!(names(&e), vec!["SalvageSucceeded", "FulfillmentRequested"]);
    let mut all = given;
    all.extend(e);
    let o = order_state(&all);
    assert_eq!(o.status, Some(OrderStatus::Complete));
    assert!(o.fulfillment_requested);
}

#[test]
fn o2_new_sale_failure_is_declined() {
    let s = services();
    for result in [
        FlexFactorResult::Declined,
        FlexFactorResult::Expired,
        FlexFactorResult::Cancelled,
    ] {
        let mut all = rerun_pending(&s);
        all.extend(events(
            &s,
            all.clone(),
            OrderCommand::ApplyFlexFactorResult {
                result: result.clone(),
                source: webhook("d1"),
            },
        ));
        assert_eq!(
            order_state(&all).status,
            Some(OrderStatus::Declined),
            "{result:?}"
        );
    }
}

#[test]
fn o3_trial_completion_failure_leaves_the_status_exactly_as_it_was() {
    let s = services();
    let mut cmd = rebill("o-t", "sub-1", "stripe-eu", soft("stripe-eu"));
    cmd.order_type = OrderType::TrialCompletion;
    let mut all = order_history(
        &s,
        vec![
            place(cmd),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
        ],
    );
    let before = order_state(&all).status;
    assert_eq!(before, Some(OrderStatus::Declined));
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Expired,
            source: webhook("d1"),
        },
    );
    assert_eq!(
        names(&e),
        vec!["SalvageFailed"],
        "the failure is recorded in its history"
    );
    all.extend(e);
    assert_eq!(order_state(&all).status, before);
    // The submission is a recurring MIT (billing after a trial).
    assert!(all.iter().any(|e| matches!(
        e,
        OrderEvent::SalvageSubmitted {
            mode: SubmissionMode::Mit {
                recurring: true,
                ..
            },
            ..
        }
    )));
}

#[test]
fn o7_the_same_result_twice_is_a_recorded_no_op() {
    let s = services();
    let mut all = rerun_pending(&s);
    all.extend(events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: webhook("d1"),
        },
    ));
    let status = order_state(&all).status;
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: ResultSource::Webhook {
                delivery_id: "d1-resent".into(),
                resent: true,
            },
        },
    );
    assert_eq!(names(&e), vec!["ResultIgnored"]);
    assert!(matches!(
        &e[0],
        OrderEvent::ResultIgnored {
            reason: IgnoredBecause::AlreadyResolved,
            ..
        }
    ));
    all.extend(e);
    assert_eq!(order_state(&all).status, status);
}

#[test]
fn o7_results_in_any_order_apply_once() {
    let s = services();
    // A late "expired" after "completed", and a poll racing the webhook.
    let mut all = rerun_pending(&s);
    for (result, source) in [
        (completed(), webhook("d1")),
        (FlexFactorResult::Expired, webhook("d2")),
        (completed(), ResultSource::StatusPoll),
    ] {
        all.extend(events(
            &s,
            all.clone(),
            OrderCommand::ApplyFlexFactorResult { result, source },
        ));
    }
    let successes = all
        .iter()
        .filter(|e| matches!(e, OrderEvent::SalvageSucceeded { .. }))
        .count();
    let fulfil = all
        .iter()
        .filter(|e| matches!(e, OrderEvent::FulfillmentRequested { .. }))
        .count();
    assert_eq!((successes, fulfil), (1, 1));
    assert_eq!(order_state(&all).status, Some(OrderStatus::Complete));
    // And a late evaluate answer after the webhook changes nothing.
    OrderTest::with(s)
        .given(all)
        .when(OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: EvaluateAnswer::Declined {
                flexfactor_order_id: None,
            },
        })
        .then_expect_events(vec![]);
}

#[test]
fn o8_pending_salvage_is_reconciled_and_never_stays_pending_forever() {
    let s = services();
    let given = rerun_pending(&s);
    // Before the give-up time, an inconclusive poll is recorded and retried later.
    let later = services_at(sample_setup(), Duration::days(21) + Duration::hours(2));
    let e = events(
        &later,
        given.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::StillPending,
            source: ResultSource::StatusPoll,
        },
    );
    assert_eq!(names(&e), vec!["ReconciliationInconclusive"]);
    // After it, the salvage fails.
    let much_later = services_at(sample_setup(), Duration::days(21 + RECONCILE_GIVE_UP_DAYS));
    let e = events(
        &much_later,
        given.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::StillPending,
            source: ResultSource::StatusPoll,
        },
    );
    assert!(matches!(
        &e[0],
        OrderEvent::SalvageFailed {
            reason: SalvageFailure::ExpiredUnreconciled,
            ..
        }
    ));
    // A poll with a final answer resolves it like a webhook.
    let e = events(
        &later,
        given,
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Expired,
            source: ResultSource::StatusPoll,
        },
    );
    assert_eq!(names(&e), vec!["SalvageFailed"]);
}

// ------------------------------------------------------------------ K

fn salvaged(s: &DomainServices) -> Vec<OrderEvent> {
    let mut all = rerun_pending(s);
    all.extend(events(
        s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: webhook("d1"),
        },
    ));
    all
}

#[test]
fn k1_chargeback_with_include_chargebacks_marks_the_order() {
    let s = services();
    let mut all = salvaged(&s);
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Chargeback,
            source: webhook("cb"),
        },
    );
    assert_eq!(names(&e), vec!["ChargebackRecorded"]);
    all.extend(e);
    assert_eq!(order_state(&all).status, Some(OrderStatus::Chargeback));
    // Once.
    let e = events(
        &s,
        all,
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Chargeback,
            source: webhook("cb2"),
        },
    );
    assert_eq!(names(&e), vec!["ResultIgnored"]);
}

#[test]
fn k2_chargeback_without_include_chargebacks_is_recorded_as_ignored() {
    let s = services_at(
        with_flexfactor(sample_setup(), |ff| ff.include_chargebacks = false),
        Duration::zero(),
    );
    let all = salvaged(&s);
    let status = order_state(&all).status;
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Chargeback,
            source: webhook("cb"),
        },
    );
    assert!(matches!(
        &e[0],
        OrderEvent::ResultIgnored {
            reason: IgnoredBecause::ChargebacksNotIncluded,
            ..
        }
    ));
    let mut after = all;
    after.extend(e);
    assert_eq!(order_state(&after).status, status);
}

#[test]
fn k3_refund_marks_the_salvaged_order_refunded() {
    let s = services();
    let mut all = salvaged(&s);
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Refunded,
            source: webhook("rf"),
        },
    );
    assert_eq!(names(&e), vec!["OrderRefunded"]);
    all.extend(e);
    assert_eq!(order_state(&all).status, Some(OrderStatus::Refunded));
    // A refund for an order FlexFactor did not salvage (no salvage at all) changes nothing.
    let declined = order_history(
        &s,
        vec![place(new_sale("o-2", "stripe-eu", IP, soft("stripe-eu")))],
    );
    let e = events(
        &s,
        declined,
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Refunded,
            source: webhook("rf"),
        },
    );
    assert!(matches!(
        &e[0],
        OrderEvent::ResultIgnored {
            reason: IgnoredBecause::NoSalvage,
            ..
        }
    ));
}

#[test]
fn o7_k3_a_refund_delivered_before_its_completion_is_applied_after_it() {
    let s = services();
    let mut all = rerun_pending(&s);
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Refunded,
            source: webhook("rf"),
        },
    );
    assert_eq!(names(&e), vec!["ResultDeferred"], "kept, not applied yet");
    all.extend(e);
    assert_eq!(order_state(&all).status, Some(OrderStatus::SalvagePending));
    let e = events(
        &s,
        all.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: completed(),
            source: webhook("d1"),
        },
    );
    assert_eq!(
        names(&e),
        vec!["SalvageSucceeded", "FulfillmentRequested", "OrderRefunded"]
    );
    all.extend(e);
    assert_eq!(order_state(&all).status, Some(OrderStatus::Refunded));
    // A deferred refund for a salvage that then fails has nothing to apply to.
    let mut other = rerun_pending(&s);
    other.extend(events(
        &s,
        other.clone(),
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Chargeback,
            source: webhook("cb"),
        },
    ));
    let e = events(
        &s,
        other,
        OrderCommand::ApplyFlexFactorResult {
            result: FlexFactorResult::Expired,
            source: webhook("ex"),
        },
    );
    assert_eq!(names(&e), vec!["SalvageFailed", "ResultIgnored"]);
}

// ------------------------------------------------------------------ F, Y (order side), placement

#[test]
fn f3_an_unknown_outcome_is_reconciled_under_the_same_key() {
    let s = services();
    let given = order_history(
        &s,
        vec![
            place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu"))),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
        ],
    );
    let e = events(
        &s,
        given.clone(),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: EvaluateAnswer::Unknown {
                detail: "timeout".into(),
            },
        },
    );
    assert_eq!(names(&e), vec!["SalvageOutcomeUnknown"]);
    let mut all = given;
    all.extend(e);
    let o = order_state(&all);
    assert_eq!(o.salvage_attempts, 1, "no new submission");
    assert_eq!(
        o.salvage.unwrap().idempotency_key,
        IdempotencyKey::salvage(&"o-1".into(), 1)
    );
    // The replay's answer (same key) resolves the same attempt.
    let e = events(
        &s,
        all,
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: EvaluateAnswer::Submitted {
                flexfactor_order_id: Some("ff-1".into()),
            },
        },
    );
    assert_eq!(names(&e), vec!["SalvageAccepted"]);
}

#[test]
fn f5_an_unrecognized_answer_is_neither_success_nor_pending() {
    let s = services();
    let given = order_history(
        &s,
        vec![
            place(new_sale("o-1", "stripe-eu", IP, soft("stripe-eu"))),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
        ],
    );
    let e = events(
        &s,
        given.clone(),
        OrderCommand::RecordFlexFactorAnswer {
            attempt: 1,
            answer: EvaluateAnswer::Unrecognized {
                raw_status: "MYSTERY".into(),
                flexfactor_order_id: None,
            },
        },
    );
    assert_eq!(names(&e), vec!["SalvageAnswerUnrecognized"]);
    let mut all = given;
    all.extend(e);
    let o = order_state(&all);
    assert_eq!(
        o.salvage.as_ref().unwrap().state,
        SalvageState::Unrecognized
    );
    assert!(!o.is_paid());
}

#[test]
fn y3_recycle_handover_submits_the_rebill_once_as_recurring_mit() {
    let s = services();
    let given = order_history(
        &s,
        vec![place(rebill("r-1", "sub-1", "nmi-main", soft("nmi-main")))],
    );
    assert_eq!(
        names(&given),
        vec!["OrderPlaced", "AttemptDeclined"],
        "rebills do not cascade"
    );
    let cmd = OrderCommand::SubmitRecycleHandover {
        subscription_id: "sub-1".into(),
        recycle_attempt: 4,
        slot: RecycleSlot::Attempts4To6,
        flexfactor_gateway: "flexfactor".into(),
    };
    let e = events(&s, given.clone(), cmd.clone());
    match &e[0] {
        OrderEvent::SalvageSubmitted { route, mode, .. } => {
            assert!(matches!(
                route,
                SalvageRoute::Recycle {
                    recycle_attempt: 4,
                    ..
                }
            ));
            assert_eq!(
                mode,
                &SubmissionMode::Mit {
                    expires_at: t0() + Duration::days(21),
                    recurring: true
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let mut all = given;
    all.extend(e);
    assert_eq!(order_state(&all).status, Some(OrderStatus::SalvagePending));
    OrderTest::with(s)
        .given(all)
        .when(cmd)
        .then_expect_events(vec![]);
}

#[test]
fn placement_refusals() {
    let s = services();
    let e = run(
        &s,
        vec![],
        place(new_sale("o-1", "flexfactor", IP, soft("flexfactor"))),
    )
    .unwrap_err();
    assert!(matches!(e, OrderError::FirstAttemptOnFlexFactor(_)));
    let e = run(
        &s,
        vec![],
        place(new_sale("o-1", "ghost", IP, soft("ghost"))),
    )
    .unwrap_err();
    assert!(matches!(e, OrderError::UnknownGateway(_)));
    let mut c = new_sale("o-1", "nmi-main", IP, soft("nmi-main"));
    c.campaign_id = "nope".into();
    assert!(matches!(
        run(&s, vec![], place(c)).unwrap_err(),
        OrderError::UnknownCampaign(_)
    ));
    let mut c = rebill("r-1", "sub-1", "nmi-main", soft("nmi-main"));
    c.subscription_id = None;
    assert!(matches!(
        run(&s, vec![], place(c)).unwrap_err(),
        OrderError::MissingSubscription(_)
    ));
    let given = order_history(
        &s,
        vec![place(new_sale("o-1", "nmi-main", IP, soft("nmi-main")))],
    );
    assert_eq!(
        run(
            &s,
            given,
            place(new_sale("o-1", "nmi-main", IP, soft("nmi-main")))
        )
        .unwrap_err()
        .code(),
        "conflict"
    );
}
