//! The proptest strategies: the initial states and the transitions each test draws, weighted by
//! its focus, and the `ReferenceStateMachine` they make.

use std::marker::PhantomData;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::ReferenceStateMachine;
use salvage_domain::order::OrderStatus;
use salvage_domain::subscription::SubscriptionStatus;
use salvage_domain::OrderType;

use super::state::RefState;
use super::vocabulary::{
    Advice, Attempt, Card, Decline, DeclineKind, Delivery, FfAnswer, GatewayBehaviour, Ip, Product,
    Sale, Transition, MINUTES_PER_DAY,
};
use crate::model::rules;

/// The relative weights of the kinds of transition: each test stresses some rules more.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    pub sale: u32,
    /// Of the sales, how many in ten sell a recurring product.
    pub recurring_sales_in_ten: u32,
    /// Of the first attempts of sales and trial completions, how many in ten are approved.
    pub approved_in_ten: u32,
    /// Of the rebills, how many in ten are approved at once.
    pub rebill_approved_in_ten: u32,
    /// How many times in ten the regular gateways are set to soft-decline (Y1-Y3 reach
    /// FlexFactor only through soft declines).
    pub gateways_soft_in_ten: u32,
    /// How many paid subscriptions the initial state may hold (0 to this).
    pub seed_subscriptions: usize,
    pub trial_completion: u32,
    pub rebill: u32,
    pub rerun: u32,
    pub deliver: u32,
    pub late_answer: u32,
    pub advance: u32,
    pub set_gateways: u32,
    pub set_flexfactor: u32,
    pub cancel: u32,
    /// Of the declines, how many in ten carry network advice (a Visa category, a raw code, a
    /// Mastercard advice code; N1-N6).
    pub advice_in_ten: u32,
    /// The CRM reports a batch of declined sales of one card (N2, N5, N8).
    pub crm_declines: u32,
    /// The service restarts (N8).
    pub restart: u32,
    /// Of the sales, how many in ten are declined-or-approved on nmi-main with an ip address
    /// and no gateway profile, so that a decline cascades through nmi-backup (N1-N5 on cascade
    /// steps); the others are drawn from every gateway and profile.
    pub direct_cascade_in_ten: u32,
}

/// A test's focus: which transitions it favours.
pub trait Focus: 'static {
    fn weights() -> Weights;
}

pub fn decline_kind() -> impl Strategy<Value = DeclineKind> {
    proptest::sample::select(DeclineKind::ALL.to_vec())
}

/// A decline, soft ones more often (they are the ones that go anywhere).
pub fn likely_soft_decline() -> impl Strategy<Value = DeclineKind> {
    prop_oneof![
        4 => Just(DeclineKind::SoftIssuerUnavailable),
        3 => decline_kind(),
    ]
}

/// The network's advice on a decline: Visa categories (1: never retry), raw codes the shipped
/// table reads (41 lost card: 1; 51: 2; 54: 3; zz: unknown, 4), Mastercard advice codes (01:
/// never; 03, 21, 99: not for 30 days; 24-30: wait; 02: none of these).
pub fn advice() -> impl Strategy<Value = Advice> {
    prop_oneof![
        2 => Just(Advice::VisaCategory(1)),
        3 => (2u8..=4).prop_map(Advice::VisaCategory),
        2 => proptest::sample::select(vec!["41", "51", "54", "zz"]).prop_map(Advice::VisaCode),
        1 => Just(Advice::Mac("01")),
        2 => proptest::sample::select(vec!["03", "21", "99"]).prop_map(Advice::Mac),
        3 => proptest::sample::select(vec!["24", "25", "26", "27", "28", "29", "30"])
            .prop_map(Advice::Mac),
        1 => Just(Advice::Mac("02")),
    ]
}

/// A decline, soft ones more often, with network advice `advice_in_ten` times in ten.
pub fn decline(advice_in_ten: u32) -> impl Strategy<Value = Decline> {
    let with = advice_in_ten.min(10);
    let advice = prop_oneof![
        10 - with => Just(Advice::None),
        with => advice(),
    ];
    (likely_soft_decline(), advice).prop_map(|(kind, advice)| Decline { kind, advice })
}

/// The card of a sale: mostly one Visa and one Mastercard, so that orders and subscriptions share
/// them (N8).
pub fn card() -> impl Strategy<Value = Card> {
    prop_oneof![
        4 => Just(Card::VisaA),
        4 => Just(Card::Mastercard),
        1 => Just(Card::VisaB),
        1 => Just(Card::Amex),
    ]
}

/// A first attempt: approved `approved_in_ten` times in ten.
pub fn attempt(approved_in_ten: u32, advice_in_ten: u32) -> impl Strategy<Value = Attempt> {
    let approved = approved_in_ten.clamp(1, 9);
    prop_oneof![
        approved => Just(Attempt::Approved),
        10 - approved => decline(advice_in_ten).prop_map(Attempt::Declined),
    ]
}

/// How the regular gateways answer, soft declines `soft_in_ten` times in ten on top of the mix.
pub fn gateway_behaviour(
    soft_in_ten: u32,
    advice_in_ten: u32,
) -> impl Strategy<Value = GatewayBehaviour> {
    let soft = soft_in_ten.min(9);
    let mix = prop_oneof![
        2 => Just(GatewayBehaviour::Approve),
        5 => decline(advice_in_ten).prop_map(GatewayBehaviour::Decline),
        1 => Just(GatewayBehaviour::Unknown),
    ];
    prop_oneof![
        10 - soft => mix,
        soft.max(1) - 1 + u32::from(soft > 0) => Just(GatewayBehaviour::Decline(DeclineKind::SoftIssuerUnavailable.into())),
    ]
}

pub fn ff_answer() -> impl Strategy<Value = FfAnswer> {
    prop_oneof![
        3 => Just(FfAnswer::Approved),
        2 => Just(FfAnswer::Declined),
        1 => Just(FfAnswer::Challenge),
        4 => Just(FfAnswer::Submitted),
        1 => Just(FfAnswer::CaptureRequired),
        1 => Just(FfAnswer::Rejected),
        2 => Just(FfAnswer::Unknown),
    ]
}

pub fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        4 => Just(Delivery::Completed),
        2 => Just(Delivery::Declined),
        2 => Just(Delivery::Expired),
        1 => Just(Delivery::Cancelled),
        1 => Just(Delivery::CaptureRequired),
        2 => Just(Delivery::Refunded),
        2 => Just(Delivery::Chargeback),
        2 => Just(Delivery::StillPending),
    ]
}

/// A regular gateway, or now and then FlexFactor itself (S3: refused).
fn first_attempt_gateway() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => proptest::sample::select(rules::REGULAR.to_vec()),
        1 => Just(rules::FLEXFACTOR),
    ]
}

fn advance_minutes() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => 1i64..=(6 * 60),
        4 => (1i64..=6).prop_map(|d| d * MINUTES_PER_DAY),
        1 => (20i64..=26).prop_map(|d| d * MINUTES_PER_DAY),
        // Past the networks' 30-day windows, and exactly to their end (N2, N3, N5).
        1 => prop_oneof![
            (27i64..=45).prop_map(|d| d * MINUTES_PER_DAY),
            Just(30 * MINUTES_PER_DAY),
        ],
    ]
}

fn sale(counter: u32, w: &Weights) -> impl Strategy<Value = Transition> {
    let (recurring_in_ten, approved_in_ten, advice_in_ten) =
        (w.recurring_sales_in_ten, w.approved_in_ten, w.advice_in_ten);
    let direct = proptest::bool::weighted(f64::from(w.direct_cascade_in_ten.min(10)) / 10.0);
    let order = format!("o{counter}");
    let sub = format!("s{counter}");
    let product = prop_oneof![
        (10 - recurring_in_ten.min(10)) * 2 => proptest::sample::select(vec![Product::Cleanser, Product::Bundle]),
        recurring_in_ten.min(10) * 2 => proptest::sample::select(vec![Product::Monthly, Product::Trial]),
    ];
    let profile = prop_oneof![
        3 => Just(None),
        2 => Just(Some(rules::ATRI_US)),
        1 => Just(Some(rules::ATRI_EU)),
    ];
    let ip = prop_oneof![4 => Just(Ip::Present), 1 => Just(Ip::Missing), 1 => Just(Ip::Blank)];
    let subscription = prop_oneof![3 => Just(Some(sub)), 1 => Just(None)];
    (
        product,
        first_attempt_gateway(),
        profile,
        ip,
        subscription,
        card(),
        attempt(approved_in_ten, advice_in_ten),
        direct,
    )
        .prop_map(
            move |(product, gateway, profile, ip, subscription, card, result, direct)| {
                let (gateway, profile, ip) = if direct {
                    (rules::NMI_MAIN, None, Ip::Present)
                } else {
                    (gateway, profile, ip)
                };
                Transition::PlaceSale(Sale {
                    order: order.clone(),
                    product,
                    gateway,
                    profile,
                    ip,
                    subscription,
                    card,
                    result,
                })
            },
        )
}

/// Up to `max` paid sales of recurring products on regular gateways (`seed-*` orders).
fn seed_sales(max: usize) -> impl Strategy<Value = Vec<Transition>> {
    let one = (
        proptest::sample::select(vec![Product::Monthly, Product::Monthly, Product::Trial]),
        proptest::sample::select(vec![
            rules::NMI_MAIN,
            rules::NMI_MAIN,
            rules::NMI_BACKUP,
            rules::AUTHNET,
        ]),
        card(),
    );
    proptest::collection::vec(one, 0..=max).prop_map(|sales| {
        sales
            .into_iter()
            .enumerate()
            .map(|(i, (product, gateway, card))| {
                Transition::PlaceSale(Sale {
                    order: format!("seed-{i}"),
                    product,
                    gateway,
                    profile: None,
                    ip: Ip::Present,
                    subscription: Some(format!("seed-s{i}")),
                    card,
                    result: Attempt::Approved,
                })
            })
            .collect()
    })
}

/// The transitions that may follow `state`, weighted by `w`.
pub fn transitions(state: &RefState, w: &Weights) -> BoxedStrategy<Transition> {
    let mut arms: Vec<(u32, BoxedStrategy<Transition>)> = Vec::new();
    let mut arm = |weight: u32, s: BoxedStrategy<Transition>| {
        if weight > 0 {
            arms.push((weight, s));
        }
    };
    arm(w.sale, sale(state.counter, w).boxed());
    let prefix = format!("h{}", state.counter);
    // Batches of any size, or of the size that brings the card to its network's limit (N2's 15
    // reattempts, N5's 35 attempts) give or take two, so that Salvage's next attempt on it is
    // the last allowed or the first forbidden.
    let batch = |card: Card| {
        let near: Vec<u32> = match state.left_before_limit(card) {
            Some(left) => (0..=4)
                .filter_map(|k| (left + k).checked_sub(2))
                .filter(|n| (1..=40).contains(n))
                .map(|n| n as u32)
                .collect(),
            None => Vec::new(),
        };
        let any = 1u32..=24;
        if near.is_empty() {
            any.boxed()
        } else {
            prop_oneof![2 => any, 3 => proptest::sample::select(near)].boxed()
        }
    };
    arm(
        w.crm_declines,
        (
            prop_oneof![
                batch(Card::VisaA).prop_map(|n| (Card::VisaA, n)),
                batch(Card::Mastercard).prop_map(|n| (Card::Mastercard, n)),
            ],
            // Less advice than elsewhere: never-retry advice would hide the counts (N2, N5).
            decline(w.advice_in_ten / 2),
        )
            .prop_map(move |((card, count), decline)| Transition::CrmDeclines {
                prefix: prefix.clone(),
                card,
                count,
                decline,
            })
            .boxed(),
    );
    arm(w.restart, Just(Transition::Restart).boxed());
    let in_trial: Vec<(String, Card)> = state
        .subs
        .iter()
        .filter(|(_, s)| s.status == SubscriptionStatus::Trial && !s.trial_completion)
        .map(|(id, s)| (id.clone(), s.card))
        .collect();
    if !in_trial.is_empty() {
        let order = format!("t{}", state.counter);
        arm(
            w.trial_completion,
            (
                proptest::sample::select(in_trial),
                first_attempt_gateway(),
                attempt(w.approved_in_ten, w.advice_in_ten),
            )
                .prop_map(move |((subscription, card), gateway, result)| {
                    Transition::PlaceTrialCompletion {
                        order: order.clone(),
                        subscription,
                        gateway,
                        card,
                        result,
                    }
                })
                .boxed(),
        );
    }
    let active: Vec<(String, &'static str, Card)> = state
        .subs
        .iter()
        .filter(|(_, s)| s.status == SubscriptionStatus::Active)
        .map(|(id, s)| (id.clone(), s.billing, s.card))
        .collect();
    if !active.is_empty() {
        let order = format!("r{}", state.counter);
        // Mostly on the billing gateway; sometimes elsewhere (O4: the declining gateway wins).
        let gateway = prop_oneof![
            3 => Just(None),
            1 => first_attempt_gateway().prop_map(Some),
        ];
        arm(
            w.rebill,
            (
                proptest::sample::select(active),
                gateway,
                attempt(w.rebill_approved_in_ten, w.advice_in_ten),
            )
                .prop_map(move |((subscription, billing, card), gateway, result)| {
                    Transition::PlaceRebill {
                        order: order.clone(),
                        subscription,
                        gateway: gateway.unwrap_or(billing),
                        card,
                        result,
                    }
                })
                .boxed(),
        );
    }
    let orders: Vec<String> = state.orders.keys().cloned().collect();
    let salvaged: Vec<String> = state
        .orders
        .iter()
        .filter(|(_, o)| o.salvage.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    let declined: Vec<String> = state
        .orders
        .iter()
        .filter(|(_, o)| o.status == OrderStatus::Declined || o.kind == OrderType::TrialCompletion)
        .map(|(id, _)| id.clone())
        .collect();
    if !orders.is_empty() {
        let rerun_target = if declined.is_empty() {
            proptest::sample::select(orders.clone()).boxed()
        } else {
            prop_oneof![
                4 => proptest::sample::select(declined),
                1 => proptest::sample::select(orders.clone()),
            ]
            .boxed()
        };
        let gateway = prop_oneof![
            8 => Just(rules::FLEXFACTOR),
            1 => Just(rules::ATRI_US),
            1 => Just(rules::NMI_MAIN),
        ];
        arm(
            w.rerun,
            (rerun_target, gateway)
                .prop_map(|(order, gateway)| Transition::Rerun { order, gateway })
                .boxed(),
        );
        // Mostly to orders FlexFactor has; now and then to any (W4-like: nothing to apply).
        let (target, weight) = if salvaged.is_empty() {
            (
                proptest::sample::select(orders.clone()).boxed(),
                w.deliver.min(1),
            )
        } else {
            (
                prop_oneof![
                    8 => proptest::sample::select(salvaged.clone()),
                    1 => proptest::sample::select(orders.clone()),
                ]
                .boxed(),
                w.deliver,
            )
        };
        arm(
            weight,
            (
                target,
                delivery(),
                proptest::bool::weighted(0.2),
                proptest::bool::weighted(0.3),
            )
                .prop_map(|(order, delivery, poll, resent)| Transition::Deliver {
                    order,
                    delivery,
                    poll,
                    resent,
                })
                .boxed(),
        );
    }
    if !salvaged.is_empty() {
        arm(
            w.late_answer,
            (
                proptest::sample::select(salvaged),
                proptest::bool::weighted(0.2),
                ff_answer(),
            )
                .prop_map(|(order, stale, answer)| Transition::EvaluateAnswerArrives {
                    order,
                    stale,
                    answer,
                })
                .boxed(),
        );
    }
    // While a rebill is being recycled, time is what moves it on (Y1-Y3).
    let recycling = state
        .subs
        .values()
        .any(|s| s.status == SubscriptionStatus::RecycleBilling);
    arm(
        if recycling { w.advance * 3 } else { w.advance },
        advance_minutes()
            .prop_map(|minutes| Transition::Advance { minutes })
            .boxed(),
    );
    arm(
        w.set_gateways,
        gateway_behaviour(w.gateways_soft_in_ten, w.advice_in_ten)
            .prop_map(Transition::SetGateways)
            .boxed(),
    );
    arm(
        w.set_flexfactor,
        ff_answer().prop_map(Transition::SetFlexFactor).boxed(),
    );
    if !state.subs.is_empty() {
        let subs: Vec<String> = state.subs.keys().cloned().collect();
        arm(
            w.cancel,
            proptest::sample::select(subs)
                .prop_map(|subscription| Transition::Cancel { subscription })
                .boxed(),
        );
    }
    Union::new_weighted(arms).boxed()
}

/// The reference state machine of a test with focus `F`.
pub struct Reference<F>(PhantomData<F>);

impl<F: Focus> ReferenceStateMachine for Reference<F> {
    type State = RefState;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<RefState> {
        let w = F::weights();
        (
            gateway_behaviour(w.gateways_soft_in_ten, w.advice_in_ten),
            ff_answer(),
            seed_sales(w.seed_subscriptions),
        )
            .prop_map(|(g, f, seed)| RefState::seeded(g, f, seed))
            .boxed()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Transition> {
        transitions(state, &F::weights())
    }

    fn apply(mut state: RefState, transition: &Transition) -> RefState {
        state.step(transition);
        state
    }

    fn preconditions(state: &RefState, transition: &Transition) -> bool {
        state.admits(transition)
    }
}
