//! O7: one FlexFactor outcome, delivered any number of times in any order (webhooks, resent
//! webhooks, status polls, a late `/evaluate` answer, "still pending" polls in between), is
//! applied exactly once: the end state and the CRM notifications are those of a single
//! delivery. The model and every invariant are checked after each step as well.

use std::collections::BTreeMap;

use proptest::prelude::*;
use salvage_domain::process_manager::NotificationKind;

use super::invariants;
use super::reference::{
    Attempt, Card, DeclineKind, Delivery, FfAnswer, GatewayBehaviour, Ip, Product, RefState, Sale,
    Transition, MINUTES_PER_DAY,
};
use super::rules;
use super::world::World;

/// How the salvage under test came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// R2: a declined new sale rerun on FlexFactor; with a recurring product, O6 follows.
    RerunNewSale { recurring: bool },
    /// O3: a trial completion declined, rerun on FlexFactor.
    RerunTrialCompletion,
    /// Y3/O4/O5: a rebill recycled up to its FlexFactor slot, billing on `billing`.
    RecycleHandover { billing: &'static str },
}

/// FlexFactor's final word on the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Completed,
    Declined,
    Expired,
    Cancelled,
}

impl Truth {
    fn delivery(self) -> Delivery {
        match self {
            Truth::Completed => Delivery::Completed,
            Truth::Declined => Delivery::Declined,
            Truth::Expired => Delivery::Expired,
            Truth::Cancelled => Delivery::Cancelled,
        }
    }

    /// The `/evaluate` answer that says the same, arriving late; `None` when there is none.
    fn late_answer(self) -> Option<FfAnswer> {
        match self {
            Truth::Completed => Some(FfAnswer::Approved),
            Truth::Declined => Some(FfAnswer::Declined),
            Truth::Expired | Truth::Cancelled => None,
        }
    }
}

/// One case: a scenario, how FlexFactor first answered (an open state), the truth, whether a
/// refund and a chargeback follow a completion, and the deliveries in the order they arrive.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Scenario,
    pub first_answer: FfAnswer,
    pub truth: Truth,
    pub refund: bool,
    pub chargeback: bool,
    pub deliveries: Vec<Transition>,
}

/// The order the scenario salvages.
pub fn order_of(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::RerunNewSale { .. } => "o1",
        Scenario::RerunTrialCompletion => "t1",
        Scenario::RecycleHandover { .. } => "r1",
    }
}

/// The transitions that lead to an open salvage of [`order_of`] the scenario.
pub fn setup(scenario: Scenario, first_answer: FfAnswer) -> Vec<Transition> {
    let soft = Attempt::Declined(DeclineKind::SoftIssuerUnavailable.into());
    let sale = |order: &str, product, gateway, result| {
        Transition::PlaceSale(Sale {
            order: order.into(),
            product,
            gateway,
            profile: None,
            ip: Ip::Present,
            subscription: Some("s1".into()),
            card: Card::VisaA,
            result,
        })
    };
    let mut t = vec![Transition::SetFlexFactor(first_answer)];
    match scenario {
        Scenario::RerunNewSale { recurring } => {
            let product = if recurring {
                Product::Monthly
            } else {
                Product::Cleanser
            };
            // stripe-eu has no cascade profile: the sale is declined at once.
            t.push(sale("o1", product, rules::STRIPE_EU, soft));
            t.push(Transition::Rerun {
                order: "o1".into(),
                gateway: rules::FLEXFACTOR,
            });
        }
        Scenario::RerunTrialCompletion => {
            t.push(sale(
                "o0",
                Product::Trial,
                rules::NMI_MAIN,
                Attempt::Approved,
            ));
            // "Do not honor" is hard, mapped soft on authnet-1 for trial completions (D2).
            t.push(Transition::PlaceTrialCompletion {
                order: "t1".into(),
                subscription: "s1".into(),
                gateway: rules::AUTHNET,
                card: Card::VisaA,
                result: Attempt::Declined(DeclineKind::HardDoNotHonor.into()),
            });
            t.push(Transition::Rerun {
                order: "t1".into(),
                gateway: rules::FLEXFACTOR,
            });
        }
        Scenario::RecycleHandover { billing } => {
            t.push(sale("o0", Product::Monthly, billing, Attempt::Approved));
            t.push(Transition::SetGateways(GatewayBehaviour::Decline(
                DeclineKind::SoftIssuerUnavailable.into(),
            )));
            t.push(Transition::PlaceRebill {
                order: "r1".into(),
                subscription: "s1".into(),
                gateway: billing,
                card: Card::VisaA,
                result: soft,
            });
            // Every re-attempt soft-declines up to the FlexFactor slot (12 days at most).
            t.push(Transition::Advance {
                minutes: 13 * MINUTES_PER_DAY,
            });
        }
    }
    t
}

/// The same case delivered once, in the natural order.
pub fn canonical(case: &Case) -> Vec<Transition> {
    let order = order_of(case.scenario).to_string();
    let deliver = |delivery| Transition::Deliver {
        order: order.clone(),
        delivery,
        poll: false,
        resent: false,
    };
    let mut t = setup(case.scenario, case.first_answer);
    t.push(deliver(case.truth.delivery()));
    if case.truth == Truth::Completed {
        if case.refund {
            t.push(deliver(Delivery::Refunded));
        }
        if case.chargeback {
            t.push(deliver(Delivery::Chargeback));
        }
    }
    t
}

/// The case as delivered.
pub fn delivered(case: &Case) -> Vec<Transition> {
    let mut t = setup(case.scenario, case.first_answer);
    t.extend(case.deliveries.iter().cloned());
    t
}

/// What a CRM and an auditor see at the end: states, payments and notifications (without
/// event ids and times, which depend on the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub orders: Vec<String>,
    pub subscriptions: Vec<String>,
    pub notifications: BTreeMap<String, usize>,
    pub submissions: usize,
}

/// Runs transitions on the system and on the model, checking everything after each step.
pub fn run(transitions: &[Transition]) -> Result<Snapshot, String> {
    let mut model = RefState::new(GatewayBehaviour::Approve, FfAnswer::Submitted);
    let mut world = World::new(GatewayBehaviour::Approve, FfAnswer::Submitted);
    for (i, t) in transitions.iter().enumerate() {
        if !model.admits(t) {
            return Err(format!("step {i}: {t:?} is not admissible"));
        }
        model.step(t);
        world.apply(t);
        invariants::verify(&world, &model).map_err(|e| format!("after step {i} {t:?}:\n{e}"))?;
    }
    Ok(snapshot(&world))
}

pub fn snapshot(w: &World) -> Snapshot {
    let orders = w
        .orders
        .iter()
        .map(|(id, o)| {
            format!(
                "{id}: {:?} paid by {:?}, salvage {:?}, fulfilled {}, refunded {}, chargeback {}",
                o.status,
                o.paid_by,
                o.salvage.as_ref().map(|s| (s.attempt, s.state)),
                o.fulfillment_requested,
                o.refunded,
                o.chargeback
            )
        })
        .collect();
    let subscriptions = w
        .subs
        .iter()
        .map(|(id, s)| {
            format!(
                "{id}: {:?} cycle {} on {:?} ({:?})",
                s.status, s.cycle, s.billing_gateway, s.credential
            )
        })
        .collect();
    let mut notifications = BTreeMap::new();
    for n in &w.notifications {
        let kind = match &n.kind {
            NotificationKind::SubscriptionAdvanced {
                billing_gateway,
                cycle,
            } => format!("advanced to {cycle} on {billing_gateway}"),
            other => format!("{other:?}"),
        };
        let key = format!("{kind} {:?} {:?}", n.order_id, n.subscription_id);
        *notifications.entry(key).or_default() += 1;
    }
    Snapshot {
        orders,
        subscriptions,
        notifications,
        submissions: w.submissions.len(),
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop_oneof![
        Just(Scenario::RerunNewSale { recurring: false }),
        Just(Scenario::RerunNewSale { recurring: true }),
        Just(Scenario::RerunTrialCompletion),
        Just(Scenario::RecycleHandover {
            billing: rules::NMI_MAIN
        }),
        Just(Scenario::RecycleHandover {
            billing: rules::AUTHNET
        }),
    ]
}

fn truth() -> impl Strategy<Value = Truth> {
    prop_oneof![
        3 => Just(Truth::Completed),
        1 => Just(Truth::Declined),
        1 => Just(Truth::Expired),
        1 => Just(Truth::Cancelled),
    ]
}

/// Cases whose deliveries are shuffled freely: a refund or chargeback may come before the
/// completion it follows (it is deferred until then).
pub fn cases() -> impl Strategy<Value = Case> {
    let open = prop_oneof![
        Just(FfAnswer::Submitted),
        Just(FfAnswer::Challenge),
        Just(FfAnswer::Unknown),
        Just(FfAnswer::CaptureRequired),
    ];
    (
        scenario(),
        open,
        truth(),
        // After a completion: nothing, a refund (K3) or a chargeback (K1); not both, whose
        // final status depends on their order (see the report in docs).
        prop_oneof![
            Just((false, false)),
            Just((true, false)),
            Just((false, true))
        ],
        1usize..=4,
        0usize..=2,
        0usize..=3,
        any::<bool>(),
        proptest::collection::vec(1i64..=(6 * 60), 0..=3),
    )
        .prop_flat_map(
            move |(
                scenario,
                first_answer,
                truth,
                (refund, chargeback),
                webhooks,
                polls,
                pending,
                late,
                waits,
            )| {
                let order = order_of(scenario).to_string();
                let mut items = Vec::new();
                for i in 0..webhooks {
                    items.push(Transition::Deliver {
                        order: order.clone(),
                        delivery: truth.delivery(),
                        poll: false,
                        resent: i > 0,
                    });
                }
                for _ in 0..polls {
                    items.push(Transition::Deliver {
                        order: order.clone(),
                        delivery: truth.delivery(),
                        poll: true,
                        resent: false,
                    });
                }
                for _ in 0..pending {
                    items.push(Transition::Deliver {
                        order: order.clone(),
                        delivery: Delivery::StillPending,
                        poll: true,
                        resent: false,
                    });
                }
                if let (true, Some(answer)) = (late, truth.late_answer()) {
                    items.push(Transition::EvaluateAnswerArrives {
                        order: order.clone(),
                        stale: false,
                        answer,
                    });
                }
                let completed = truth == Truth::Completed;
                for (wanted, delivery) in [
                    (refund, Delivery::Refunded),
                    (chargeback, Delivery::Chargeback),
                ] {
                    if completed && wanted {
                        // Twice: a resend must not apply twice either.
                        for resent in [false, true] {
                            items.push(Transition::Deliver {
                                order: order.clone(),
                                delivery,
                                poll: false,
                                resent,
                            });
                        }
                    }
                }
                for minutes in waits {
                    items.push(Transition::Advance { minutes });
                }
                Just(items).prop_shuffle().prop_map(move |deliveries| Case {
                    scenario,
                    first_answer,
                    truth,
                    refund: refund && completed,
                    chargeback: chargeback && completed,
                    deliveries,
                })
            },
        )
}
