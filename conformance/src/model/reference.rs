//! The reference model: a deliberately small, independent description of what Salvage must do
//! with the sample setup, and the transitions the state-machine tests draw from it.
//!
//! The model keeps, per order, its status, who paid it and where its FlexFactor salvage stands;
//! per subscription, its status, cycle, billing gateway and recycle position; and the clock. It
//! uses the domain's status enums only as labels: every decision is taken here, from
//! [`super::rules`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::ReferenceStateMachine;
use salvage_domain::customer::CredentialKind;
use salvage_domain::order::{OrderStatus, SalvageState};
use salvage_domain::routing::NoCascadeReason;
use salvage_domain::subscription::SubscriptionStatus;
use salvage_domain::{DeclineType, OrderType};

use super::rules::{self, PlanStep};

pub const MINUTES_PER_DAY: i64 = 24 * 60;
/// The longest clock move of one transition (the system under test clamps the same way).
pub const MAX_ADVANCE: i64 = 400 * MINUTES_PER_DAY;
/// O8: reconciliation gives up this long after the expiry.
pub const GIVE_UP_AFTER_EXPIRY: i64 = 3 * MINUTES_PER_DAY;

// ---------------------------------------------------------------------------------------------
// What the transitions talk about
// ---------------------------------------------------------------------------------------------

/// A decline as a processor reports it: its verdict and message (D1); mapping (D2) may turn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineKind {
    /// "Issuer unavailable", soft.
    SoftIssuerUnavailable,
    /// "Pick up card", hard.
    HardPickUpCard,
    /// "Insufficient funds", hard: soft on NMI gateways (nmi-nsf-is-soft).
    HardInsufficientFunds,
    /// "Do not honor", hard: soft on authnet-1 for rebills and trial completions.
    HardDoNotHonor,
    /// "Stolen card", soft: hard on NMI gateways for new sales (stolen-is-hard).
    SoftStolenCard,
}

impl DeclineKind {
    pub const ALL: [DeclineKind; 5] = [
        DeclineKind::SoftIssuerUnavailable,
        DeclineKind::HardPickUpCard,
        DeclineKind::HardInsufficientFunds,
        DeclineKind::HardDoNotHonor,
        DeclineKind::SoftStolenCard,
    ];

    pub fn verdict(self) -> DeclineType {
        match self {
            DeclineKind::SoftIssuerUnavailable | DeclineKind::SoftStolenCard => DeclineType::Soft,
            _ => DeclineType::Hard,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            DeclineKind::SoftIssuerUnavailable => "Issuer unavailable",
            DeclineKind::HardPickUpCard => "Pick up card",
            DeclineKind::HardInsufficientFunds => "DECLINE: Insufficient Funds (51)",
            DeclineKind::HardDoNotHonor => "Do Not Honor",
            DeclineKind::SoftStolenCard => "Stolen card, pick up",
        }
    }

    /// D2/D3 for the sample setup.
    pub fn soft_on(self, gateway: &str, order_type: OrderType) -> bool {
        rules::effective_soft(gateway, self.verdict(), self.message(), order_type)
    }
}

/// The result of an order's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Approved,
    Declined(DeclineKind),
}

/// How the regular gateways answer charges (cascade steps, recycle re-attempts) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBehaviour {
    Approve,
    Decline(DeclineKind),
    /// The answer never comes back (it may have charged).
    Unknown,
}

/// How FlexFactor answers `/evaluate` for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfAnswer {
    Approved,
    Declined,
    Challenge,
    Submitted,
    CaptureRequired,
    /// A 400: not taken.
    Rejected,
    /// A timeout after sending (F3).
    Unknown,
}

/// A result FlexFactor reports later, by webhook or status poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Completed,
    Declined,
    Expired,
    Cancelled,
    CaptureRequired,
    Refunded,
    Chargeback,
    StillPending,
}

/// The products of the sample setup the model sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// skincare, one-time.
    Cleanser,
    /// skincare, 30-day subscription.
    Monthly,
    /// skincare, 30-day subscription with a 14-day trial.
    Trial,
    /// one-click-bundle (Single Transaction), one-time.
    Bundle,
}

impl Product {
    pub fn id(self) -> &'static str {
        match self {
            Product::Cleanser => "cleanser",
            Product::Monthly => "serum-monthly",
            Product::Trial => "serum-trial",
            Product::Bundle => "bundle",
        }
    }

    pub fn price_minor(self) -> i64 {
        match self {
            Product::Cleanser => 1999,
            Product::Monthly => 3999,
            Product::Trial => 499,
            Product::Bundle => 8999,
        }
    }

    pub fn campaign(self) -> &'static str {
        match self {
            Product::Bundle => rules::ONE_CLICK,
            _ => rules::SKINCARE,
        }
    }

    pub fn recurring(self) -> bool {
        matches!(self, Product::Monthly | Product::Trial)
    }
}

/// The `ip_address` of a sale (C3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    Present,
    Missing,
    /// Present but blank: as good as missing.
    Blank,
}

/// A new sale reported by the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub order: String,
    pub product: Product,
    pub gateway: &'static str,
    pub profile: Option<&'static str>,
    pub ip: Ip,
    /// The CRM's subscription id; without it a recurring product's subscription is
    /// `{order}-{product}`.
    pub subscription: Option<String>,
    pub result: Attempt,
}

/// One step of a model test.
#[derive(Clone, PartialEq, Eq)]
pub enum Transition {
    /// `POST /v1/orders` for a new sale (C1-C6, S3).
    PlaceSale(Sale),
    /// The first billing after a trial, reported by the CRM.
    PlaceTrialCompletion {
        order: String,
        subscription: String,
        gateway: &'static str,
        result: Attempt,
    },
    /// A rebill from the CRM's own billing (Y1, D4).
    PlaceRebill {
        order: String,
        subscription: String,
        gateway: &'static str,
        result: Attempt,
    },
    /// R1-R5.
    Rerun {
        order: String,
        gateway: &'static str,
    },
    /// A webhook (possibly resent) or a status poll (O1-O8, K1-K3).
    Deliver {
        order: String,
        delivery: Delivery,
        poll: bool,
        resent: bool,
    },
    /// FlexFactor's answer to `/evaluate` arriving late (after a timeout), for the current
    /// submission or, `stale`, for one that is not awaited (F3, O7).
    EvaluateAnswerArrives {
        order: String,
        stale: bool,
        answer: FfAnswer,
    },
    /// The clock moves on; due timers run (Y1-Y3, O8).
    Advance {
        minutes: i64,
    },
    SetGateways(GatewayBehaviour),
    SetFlexFactor(FfAnswer),
    Cancel {
        subscription: String,
    },
}

impl fmt::Debug for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::PlaceSale(s) => write!(
                f,
                "PlaceSale({} {:?} on {}{} ip={:?} sub={:?} {:?})",
                s.order,
                s.product,
                s.gateway,
                s.profile.map(|p| format!(" via {p}")).unwrap_or_default(),
                s.ip,
                s.subscription,
                s.result
            ),
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                result,
            } => write!(
                f,
                "PlaceTrialCompletion({order} of {subscription} on {gateway} {result:?})"
            ),
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                result,
            } => write!(
                f,
                "PlaceRebill({order} of {subscription} on {gateway} {result:?})"
            ),
            Transition::Rerun { order, gateway } => write!(f, "Rerun({order} on {gateway})"),
            Transition::Deliver {
                order,
                delivery,
                poll,
                resent,
            } => write!(
                f,
                "Deliver({order} {delivery:?}{}{})",
                if *poll { " by poll" } else { " by webhook" },
                if *resent { " resent" } else { "" }
            ),
            Transition::EvaluateAnswerArrives {
                order,
                stale,
                answer,
            } => write!(
                f,
                "EvaluateAnswerArrives({order} {answer:?}{})",
                if *stale { " for a stale attempt" } else { "" }
            ),
            Transition::Advance { minutes } => {
                write!(
                    f,
                    "Advance({}d {}m)",
                    minutes / MINUTES_PER_DAY,
                    minutes % MINUTES_PER_DAY
                )
            }
            Transition::SetGateways(b) => write!(f, "SetGateways({b:?})"),
            Transition::SetFlexFactor(a) => write!(f, "SetFlexFactor({a:?})"),
            Transition::Cancel { subscription } => write!(f, "Cancel({subscription})"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model's state
// ---------------------------------------------------------------------------------------------

/// How a salvage reached FlexFactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Cascade { step: u32 },
    Rerun,
    Recycle { subscription: String, attempt: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MSalvage {
    pub attempt: u32,
    pub route: Route,
    pub state: SalvageState,
    /// Minutes since the start; `None` for a cascade (CIT).
    pub expires: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MOrder {
    pub kind: OrderType,
    pub campaign: &'static str,
    pub product: Product,
    /// The gateway of the first attempt.
    pub gateway: &'static str,
    pub profile: Option<&'static str>,
    pub ip: bool,
    /// The subscription it belongs to (rebills, trial completions) or creates (new sales with a
    /// recurring product).
    pub subscription: Option<String>,
    pub status: OrderStatus,
    pub paid_by: Option<&'static str>,
    /// D1: the gateway of the first decline ("the declining gateway" of O4/O6).
    pub first_decline: Option<&'static str>,
    /// Whether the latest decline is effective-soft (D2).
    pub last_soft: Option<bool>,
    /// C3/C4...: why the sale did not cascade.
    pub skipped: Option<NoCascadeReason>,
    /// C3/C4: why FlexFactor was left out of a cascade that still ran.
    pub flexfactor_left_out: Option<NoCascadeReason>,
    pub cascade: Vec<&'static str>,
    pub salvage: Option<MSalvage>,
    pub attempts: u32,
    pub fulfilled: bool,
    pub refunded: bool,
    pub chargeback: bool,
    /// O7: refunds and chargebacks that arrived before the salvage's result, in arrival order;
    /// applied when it succeeds, dropped when it fails.
    pub deferred: Vec<Delivery>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MRecycle {
    pub order: String,
    pub declined_gateway: &'static str,
    pub plan: Vec<PlanStep>,
    /// The next re-attempt (1-based).
    pub next: u32,
    /// When it is due (minutes); `None` once it ran.
    pub due: Option<i64>,
    pub in_flight: Option<u32>,
    pub handed_over: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MSub {
    pub status: SubscriptionStatus,
    pub cycle: u32,
    pub billing: &'static str,
    pub credential: CredentialKind,
    pub recycle: Option<MRecycle>,
    /// Rebills whose outcome was applied.
    pub settled: Vec<String>,
    /// A trial completion was reported (the model reports one per subscription).
    pub trial_completion: bool,
}

/// What the transition's own command should answer: accepted, or refused with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Refused(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// Minutes since [`super::fixtures::t0`].
    pub now: i64,
    pub gateways: GatewayBehaviour,
    pub flexfactor: FfAnswer,
    pub orders: BTreeMap<String, MOrder>,
    pub subs: BTreeMap<String, MSub>,
    /// Makes order and subscription ids unique.
    pub counter: u32,
    pub last: Expect,
    /// Follow-up or timer commands the domain refuses (a recycle timer of a cancelled
    /// subscription): counted, not failures.
    pub refusals: u32,
    /// Recycle timers still pending for subscriptions cancelled since (minutes).
    pub stale_timers: Vec<i64>,
    /// The transitions that made the initial state (paid sales with subscriptions): the system
    /// under test replays them before the test's own.
    pub seed: Vec<Transition>,
}

impl RefState {
    pub fn new(gateways: GatewayBehaviour, flexfactor: FfAnswer) -> Self {
        RefState {
            now: 0,
            gateways,
            flexfactor,
            orders: BTreeMap::new(),
            subs: BTreeMap::new(),
            counter: 0,
            last: Expect::Ok,
            refusals: 0,
            stale_timers: Vec::new(),
            seed: Vec::new(),
        }
    }

    /// A state that starts with the given transitions already applied.
    pub fn seeded(gateways: GatewayBehaviour, flexfactor: FfAnswer, seed: Vec<Transition>) -> Self {
        let mut state = RefState::new(gateways, flexfactor);
        for t in &seed {
            if state.admits(t) {
                state.step(t);
            }
        }
        state.last = Expect::Ok;
        state.seed = seed;
        state
    }

    /// Whether a transition may run in this state (checked again while shrinking).
    pub fn admits(&self, t: &Transition) -> bool {
        match t {
            Transition::PlaceSale(s) => !self.orders.contains_key(&s.order),
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                ..
            } => {
                !self.orders.contains_key(order)
                    && self.subs.get(subscription).is_some_and(|s| {
                        s.status == SubscriptionStatus::Trial && !s.trial_completion
                    })
            }
            Transition::PlaceRebill {
                order,
                subscription,
                ..
            } => {
                !self.orders.contains_key(order)
                    && self
                        .subs
                        .get(subscription)
                        .is_some_and(|s| s.status == SubscriptionStatus::Active)
            }
            Transition::Rerun { order, .. }
            | Transition::Deliver { order, .. }
            | Transition::EvaluateAnswerArrives { order, .. } => self.orders.contains_key(order),
            Transition::Cancel { subscription } => self.subs.contains_key(subscription),
            Transition::Advance { .. }
            | Transition::SetGateways(_)
            | Transition::SetFlexFactor(_) => true,
        }
    }

    /// Applies a transition.
    pub fn step(&mut self, t: &Transition) {
        self.last = Expect::Ok;
        match t {
            Transition::PlaceSale(s) => {
                self.counter += 1;
                self.place_sale(s)
            }
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                result,
            } => {
                self.counter += 1;
                self.place_billing(
                    order,
                    OrderType::TrialCompletion,
                    subscription,
                    gateway,
                    *result,
                )
            }
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                result,
            } => {
                self.counter += 1;
                self.place_billing(order, OrderType::Recurring, subscription, gateway, *result)
            }
            Transition::Rerun { order, gateway } => self.rerun(order, gateway),
            Transition::Deliver {
                order, delivery, ..
            } => self.deliver(order, *delivery),
            Transition::EvaluateAnswerArrives {
                order,
                stale,
                answer,
            } => self.late_answer(order, *stale, *answer),
            Transition::Advance { minutes } => self.advance(*minutes),
            Transition::SetGateways(b) => self.gateways = *b,
            Transition::SetFlexFactor(a) => self.flexfactor = *a,
            Transition::Cancel { subscription } => self.cancel(subscription),
        }
    }

    // ----------------------------------------------------------------------------- orders

    fn place_sale(&mut self, s: &Sale) {
        if rules::is_flexfactor(s.gateway) {
            // S3: a first attempt is never on FlexFactor.
            self.last = Expect::Refused("invalid_request");
            return;
        }
        let subscription = s.product.recurring().then(|| {
            s.subscription
                .clone()
                .unwrap_or_else(|| format!("{}-{}", s.order, s.product.id()))
        });
        self.orders.insert(
            s.order.clone(),
            MOrder::new(
                OrderType::NewSale,
                s.product,
                s.gateway,
                s.profile,
                s.ip == Ip::Present,
                subscription,
            ),
        );
        match s.result {
            Attempt::Approved => self.paid_at_first_attempt(&s.order, s.gateway),
            Attempt::Declined(k) => {
                self.declined_at_first_attempt(&s.order, s.gateway, k);
                self.start_cascade(&s.order);
            }
        }
    }

    fn place_billing(
        &mut self,
        order: &str,
        kind: OrderType,
        subscription: &str,
        gateway: &'static str,
        result: Attempt,
    ) {
        if rules::is_flexfactor(gateway) {
            self.last = Expect::Refused("invalid_request");
            return;
        }
        let product = if kind == OrderType::TrialCompletion {
            Product::Trial
        } else {
            Product::Monthly
        };
        if kind == OrderType::TrialCompletion {
            if let Some(s) = self.subs.get_mut(subscription) {
                s.trial_completion = true;
            }
        }
        self.orders.insert(
            order.to_string(),
            MOrder::new(
                kind,
                product,
                gateway,
                None,
                true,
                Some(subscription.to_string()),
            ),
        );
        match result {
            Attempt::Approved => self.paid_at_first_attempt(order, gateway),
            Attempt::Declined(k) => self.declined_at_first_attempt(order, gateway, k),
        }
    }

    fn paid_at_first_attempt(&mut self, id: &str, gateway: &'static str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        o.paid_by = Some(gateway);
        o.status = OrderStatus::Complete;
        o.fulfilled = true;
        let (kind, sub) = (o.kind, o.subscription.clone());
        match kind {
            OrderType::NewSale => self.create_subscription(id, gateway, CredentialKind::Token),
            OrderType::TrialCompletion | OrderType::Recurring => {
                if let Some(sub) = sub {
                    self.record_rebill(&sub, id, Ok(gateway));
                }
            }
        }
    }

    fn declined_at_first_attempt(&mut self, id: &str, gateway: &'static str, k: DeclineKind) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let soft = k.soft_on(gateway, o.kind);
        o.first_decline = Some(gateway);
        o.last_soft = Some(soft);
        o.status = OrderStatus::Declined;
        if o.kind == OrderType::Recurring {
            if let Some(sub) = o.subscription.clone() {
                self.record_rebill(&sub, id, Err((gateway, soft)));
            }
        }
    }

    /// C1-C4.
    fn start_cascade(&mut self, id: &str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        if o.kind != OrderType::NewSale {
            return;
        }
        if o.last_soft != Some(true) {
            o.skipped = Some(NoCascadeReason::HardDecline);
            return;
        }
        let Some(gateways) = rules::cascade_profile_gateways(o.gateway, o.profile) else {
            o.skipped = Some(NoCascadeReason::NoCascadeProfile);
            return;
        };
        let block = if rules::is_single_transaction(o.campaign) {
            Some(NoCascadeReason::SingleTransactionCampaign)
        } else if !o.ip {
            Some(NoCascadeReason::MissingIpAddress)
        } else {
            None
        };
        let mut steps: Vec<&'static str> = Vec::new();
        let mut left_out = None;
        for g in gateways {
            if g == o.gateway || steps.contains(&g) {
                continue;
            }
            if rules::is_flexfactor(g) && block.is_some() {
                left_out = block;
                continue;
            }
            steps.push(g);
        }
        if steps.is_empty() {
            o.skipped = Some(left_out.unwrap_or(NoCascadeReason::NoCascadeProfile));
            return;
        }
        o.cascade = steps;
        o.flexfactor_left_out = left_out;
        o.status = OrderStatus::Pending;
        self.cascade_step(id, 1);
    }

    fn cascade_step(&mut self, id: &str, step: u32) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let Some(gateway) = o.cascade.get(step as usize - 1).copied() else {
            o.status = OrderStatus::Declined;
            return;
        };
        if rules::is_flexfactor(gateway) {
            self.submit(id, Route::Cascade { step }, false);
            let answer = self.flexfactor;
            self.evaluate_answer(id, answer);
            return;
        }
        match self.gateways {
            GatewayBehaviour::Approve => {
                o.paid_by = Some(gateway);
                o.status = OrderStatus::Complete;
                o.fulfilled = true;
                self.create_subscription(id, gateway, CredentialKind::Token);
            }
            GatewayBehaviour::Decline(k) => {
                let soft = k.soft_on(gateway, OrderType::NewSale);
                o.last_soft = Some(soft);
                if soft {
                    self.cascade_step(id, step + 1);
                } else {
                    o.status = OrderStatus::Declined;
                }
            }
            GatewayBehaviour::Unknown => o.status = OrderStatus::Pending,
        }
    }

    fn submit(&mut self, id: &str, route: Route, mit: bool) {
        let now = self.now;
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        o.attempts += 1;
        if !matches!(route, Route::Cascade { .. }) && o.kind != OrderType::TrialCompletion {
            // R2; O3 leaves a trial completion's status as it is.
            o.status = OrderStatus::SalvagePending;
        }
        o.salvage = Some(MSalvage {
            attempt: o.attempts,
            route,
            state: SalvageState::Submitted,
            expires: mit.then_some(now + rules::EXPIRY_DAYS * MINUTES_PER_DAY),
        });
    }

    /// FlexFactor's answer to the open submission of order `id` (C5 for a cascade).
    fn evaluate_answer(&mut self, id: &str, answer: FfAnswer) {
        let Some(s) = self.orders.get_mut(id).and_then(|o| o.salvage.as_mut()) else {
            return;
        };
        let cascade = matches!(s.route, Route::Cascade { .. });
        match answer {
            FfAnswer::Approved => self.succeed(id),
            FfAnswer::CaptureRequired => s.state = SalvageState::CaptureRequired,
            _ if cascade => self.fail(id),
            FfAnswer::Submitted | FfAnswer::Challenge => s.state = SalvageState::Accepted,
            FfAnswer::Declined | FfAnswer::Rejected => self.fail(id),
            FfAnswer::Unknown => s.state = SalvageState::OutcomeUnknown,
        }
    }

    fn succeed(&mut self, id: &str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let Some(s) = o.salvage.as_mut() else {
            return;
        };
        s.state = SalvageState::Succeeded;
        let route = s.route.clone();
        let deferred = std::mem::take(&mut o.deferred);
        o.paid_by = Some(rules::FLEXFACTOR);
        o.status = OrderStatus::Complete;
        o.fulfilled = true;
        let declining = o.first_decline.unwrap_or(o.gateway);
        let (kind, sub) = (o.kind, o.subscription.clone());
        match route {
            // O6: no token on the original gateway: card number without CVV.
            Route::Cascade { .. } => {
                self.create_subscription(id, declining, CredentialKind::CardNumberWithoutCvv)
            }
            Route::Rerun if kind == OrderType::NewSale => {
                self.create_subscription(id, declining, CredentialKind::CardNumberWithoutCvv)
            }
            Route::Rerun => {
                if let Some(sub) = sub {
                    self.salvage_outcome(&sub, id, true, declining);
                }
            }
            Route::Recycle { subscription, .. } => {
                self.salvage_outcome(&subscription, id, true, declining)
            }
        }
        // O7: what came before the result applies now, in the order it came.
        for delivery in deferred {
            self.deliver(id, delivery);
        }
    }

    fn fail(&mut self, id: &str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let Some(s) = o.salvage.as_mut() else {
            return;
        };
        s.state = SalvageState::Failed;
        let route = s.route.clone();
        // A refund or chargeback that came first has nothing to apply to.
        o.deferred.clear();
        let declining = o.first_decline.unwrap_or(o.gateway);
        match &route {
            Route::Cascade { step } => self.cascade_step(id, step + 1),
            // O3: a trial completion keeps its status.
            _ if o.kind == OrderType::TrialCompletion => {}
            // O2, O5.
            _ => o.status = OrderStatus::Declined,
        }
        if let Route::Recycle { subscription, .. } = route {
            self.salvage_outcome(&subscription, id, false, declining);
        }
    }

    /// R1-R5.
    fn rerun(&mut self, id: &str, gateway: &'static str) {
        let Some(o) = self.orders.get(id) else {
            return;
        };
        if let Some(s) = &o.salvage {
            if s.route == Route::Rerun
                && rules::is_flexfactor(gateway)
                && s.state != SalvageState::Failed
            {
                return; // R5: idempotent
            }
        }
        let declined = match o.kind {
            OrderType::TrialCompletion => o.last_soft.is_some() && o.paid_by.is_none(),
            _ => o.status == OrderStatus::Declined,
        };
        let open = o.salvage.as_ref().is_some_and(|s| s.state.is_open());
        let refusal = if rules::PROFILES.contains(&gateway) {
            Some("rerun_on_gateway_profile")
        } else if !rules::is_flexfactor(gateway) {
            Some("not_flexfactor_gateway")
        } else if o.kind == OrderType::Recurring {
            Some("recurring_order")
        } else if open {
            Some("salvage_pending")
        } else if o.paid_by.is_some() || !declined {
            Some("not_declined")
        } else if o.last_soft != Some(true) {
            Some("hard_decline")
        } else {
            None
        };
        if let Some(code) = refusal {
            self.last = Expect::Refused(code);
            return;
        }
        self.submit(id, Route::Rerun, true);
        let answer = self.flexfactor;
        self.evaluate_answer(id, answer);
    }

    /// O1-O8, K1-K3.
    fn deliver(&mut self, id: &str, delivery: Delivery) {
        let now = self.now;
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let Some(s) = o.salvage.as_mut() else {
            return; // ignored: no salvage
        };
        let open = s.state.is_open();
        match delivery {
            Delivery::Completed if open => self.succeed(id),
            Delivery::Declined | Delivery::Expired | Delivery::Cancelled if open => self.fail(id),
            Delivery::CaptureRequired if open && s.state != SalvageState::CaptureRequired => {
                s.state = SalvageState::CaptureRequired
            }
            // O8: never pending forever (before the give-up time: inconclusive, nothing).
            Delivery::StillPending
                if open && s.expires.is_some_and(|e| now >= e + GIVE_UP_AFTER_EXPIRY) =>
            {
                self.fail(id)
            }
            // O7: before the salvage's own result: kept until it arrives.
            Delivery::Refunded | Delivery::Chargeback if open => o.deferred.push(delivery),
            Delivery::Refunded if s.state == SalvageState::Succeeded && !o.refunded => {
                o.refunded = true;
                o.status = OrderStatus::Refunded;
            }
            // K1 (K2: ignored when include_chargebacks is off).
            Delivery::Chargeback
                if s.state == SalvageState::Succeeded
                    && !o.chargeback
                    && rules::INCLUDE_CHARGEBACKS =>
            {
                o.chargeback = true;
                o.status = OrderStatus::Chargeback;
            }
            _ => {} // O7: ignored
        }
    }

    fn late_answer(&mut self, id: &str, stale: bool, answer: FfAnswer) {
        let Some(s) = self.orders.get(id).and_then(|o| o.salvage.as_ref()) else {
            self.last = Expect::Refused("conflict");
            return;
        };
        if stale {
            self.last = Expect::Refused("conflict");
            return;
        }
        if s.state.is_open() {
            self.evaluate_answer(id, answer);
        }
    }

    // ----------------------------------------------------------------------------- subscriptions

    fn create_subscription(&mut self, id: &str, billing: &'static str, credential: CredentialKind) {
        let Some(o) = self.orders.get(id) else {
            return;
        };
        let (Some(sub), OrderType::NewSale) = (o.subscription.clone(), o.kind) else {
            return;
        };
        if self.subs.contains_key(&sub) {
            self.refusals += 1;
            return;
        }
        let status = if o.product == Product::Trial {
            SubscriptionStatus::Trial
        } else {
            SubscriptionStatus::Active
        };
        self.subs.insert(
            sub,
            MSub {
                status,
                cycle: 1,
                billing,
                credential,
                recycle: None,
                settled: Vec::new(),
                trial_completion: false,
            },
        );
    }

    /// A rebill's (or an approved trial completion's) first attempt: `Ok(gateway)` approved,
    /// `Err((gateway, soft))` declined.
    fn record_rebill(
        &mut self,
        sub: &str,
        order: &str,
        outcome: Result<&'static str, (&'static str, bool)>,
    ) {
        let now = self.now;
        let Some(m) = self.subs.get_mut(sub) else {
            self.refusals += 1;
            return;
        };
        if m.settled.iter().any(|o| o == order) {
            return;
        }
        if m.status == SubscriptionStatus::RecycleBilling
            && m.recycle.as_ref().is_some_and(|r| r.order == order)
        {
            return;
        }
        if matches!(
            m.status,
            SubscriptionStatus::Cancelled
                | SubscriptionStatus::RecycleFailed
                | SubscriptionStatus::RecycleBilling
        ) {
            self.refusals += 1;
            return;
        }
        match outcome {
            Ok(gateway) => advance(m, order, gateway),
            Err((_, false)) => recycle_failed(m, order), // D4
            Err((gateway, true)) => {
                let plan = rules::recycle_plan(m.billing);
                match plan.first() {
                    None => recycle_failed(m, order), // Y4: no profile
                    Some(first) => {
                        let due = now + first.wait_days * MINUTES_PER_DAY;
                        m.status = SubscriptionStatus::RecycleBilling;
                        m.recycle = Some(MRecycle {
                            order: order.to_string(),
                            declined_gateway: gateway,
                            plan,
                            next: 1,
                            due: Some(due),
                            in_flight: None,
                            handed_over: false,
                        });
                    }
                }
            }
        }
    }

    /// O4, O5 (and a salvaged trial completion).
    fn salvage_outcome(&mut self, sub: &str, order: &str, succeeded: bool, declined: &'static str) {
        let Some(m) = self.subs.get_mut(sub) else {
            self.refusals += 1;
            return;
        };
        let recycling_this = m.status == SubscriptionStatus::RecycleBilling
            && m.recycle.as_ref().is_some_and(|r| r.order == order);
        let in_trial = m.status == SubscriptionStatus::Trial;
        if m.settled.iter().any(|o| o == order) {
            return;
        }
        if succeeded && (recycling_this || in_trial) {
            let billing = if rules::is_flexfactor(declined) {
                m.billing
            } else {
                declined
            };
            advance(m, order, billing);
        } else if !succeeded && recycling_this {
            recycle_failed(m, order);
        }
    }

    fn cancel(&mut self, sub: &str) {
        let Some(m) = self.subs.get_mut(sub) else {
            return;
        };
        if m.status == SubscriptionStatus::Cancelled {
            return;
        }
        if let Some(r) = &m.recycle {
            if m.status == SubscriptionStatus::RecycleBilling {
                if let Some(due) = r.due {
                    self.stale_timers.push(due);
                }
            }
        }
        m.status = SubscriptionStatus::Cancelled;
        m.recycle = None;
    }

    /// The clock moves on by `minutes`; due re-attempts run in time order (Y1-Y3).
    fn advance(&mut self, minutes: i64) {
        let to = self.now + minutes.clamp(0, MAX_ADVANCE);
        loop {
            let next_attempt = self
                .subs
                .iter()
                .filter(|(_, m)| m.status == SubscriptionStatus::RecycleBilling)
                .filter_map(|(id, m)| Some((m.recycle.as_ref()?.due?, id.clone())))
                .filter(|(due, _)| *due <= to)
                .min();
            let next_stale = self.stale_timers.iter().copied().filter(|d| *d <= to).min();
            match (next_attempt, next_stale) {
                (Some((due, _)), Some(stale)) if stale <= due => self.fire_stale(stale),
                (None, Some(stale)) => self.fire_stale(stale),
                (Some((due, sub)), _) => {
                    self.now = self.now.max(due);
                    self.run_recycle_attempt(&sub);
                }
                (None, None) => break,
            }
        }
        self.now = to;
    }

    fn fire_stale(&mut self, at: i64) {
        self.now = self.now.max(at);
        if let Some(i) = self.stale_timers.iter().position(|d| *d == at) {
            self.stale_timers.remove(i);
        }
        self.refusals += 1; // NotRecycling: the subscription was cancelled
    }

    fn run_recycle_attempt(&mut self, sub: &str) {
        let now = self.now;
        let gateways = self.gateways;
        let Some(m) = self.subs.get_mut(sub) else {
            return;
        };
        let billing = m.billing;
        let Some(r) = m.recycle.as_mut() else {
            return;
        };
        r.due = None;
        let n = r.next;
        let Some(step) = r.plan.get(n as usize - 1).copied() else {
            return;
        };
        let order = r.order.clone();
        if step.flexfactor {
            // Y3: once.
            r.handed_over = true;
            self.handover(&order, sub, n);
            return;
        }
        r.in_flight = Some(n);
        match gateways {
            GatewayBehaviour::Approve => {
                advance(m, &order, billing);
                if let Some(o) = self.orders.get_mut(&order) {
                    if o.paid_by.is_none() {
                        o.paid_by = Some(billing);
                        o.status = OrderStatus::Complete;
                        o.fulfilled = true;
                    }
                }
            }
            GatewayBehaviour::Decline(k) => {
                if !k.soft_on(billing, OrderType::Recurring) {
                    recycle_failed(m, &order);
                } else if let Some(next) = r.plan.get(n as usize).copied() {
                    r.next = n + 1;
                    r.due = Some(now + next.wait_days * MINUTES_PER_DAY);
                    r.in_flight = None;
                } else {
                    recycle_failed(m, &order); // Y4
                }
            }
            GatewayBehaviour::Unknown => {} // awaits reconciliation; never charged again
        }
    }

    fn handover(&mut self, order: &str, sub: &str, attempt: u32) {
        let Some(o) = self.orders.get(order) else {
            return;
        };
        let already = o.salvage.as_ref().is_some_and(
            |s| matches!(&s.route, Route::Recycle { attempt: a, .. } if *a == attempt),
        );
        let open = o.salvage.as_ref().is_some_and(|s| s.state.is_open());
        if already || open || o.paid_by.is_some() {
            return;
        }
        self.submit(
            order,
            Route::Recycle {
                subscription: sub.to_string(),
                attempt,
            },
            true,
        );
        let answer = self.flexfactor;
        self.evaluate_answer(order, answer);
    }
}

impl MOrder {
    fn new(
        kind: OrderType,
        product: Product,
        gateway: &'static str,
        profile: Option<&'static str>,
        ip: bool,
        subscription: Option<String>,
    ) -> Self {
        MOrder {
            kind,
            campaign: product.campaign(),
            product,
            gateway,
            profile,
            ip,
            subscription,
            status: OrderStatus::Pending,
            paid_by: None,
            first_decline: None,
            last_soft: None,
            skipped: None,
            flexfactor_left_out: None,
            cascade: Vec::new(),
            salvage: None,
            attempts: 0,
            fulfilled: false,
            refunded: false,
            chargeback: false,
            deferred: Vec::new(),
        }
    }
}

fn advance(m: &mut MSub, order: &str, billing: &'static str) {
    m.cycle += 1;
    m.billing = billing;
    m.status = SubscriptionStatus::Active;
    m.recycle = None;
    m.settled.push(order.to_string());
}

fn recycle_failed(m: &mut MSub, order: &str) {
    m.status = SubscriptionStatus::RecycleFailed;
    if let Some(r) = m.recycle.as_mut() {
        r.due = None;
        r.in_flight = None;
    }
    m.settled.push(order.to_string());
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

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

/// A first attempt: approved `approved_in_ten` times in ten.
pub fn attempt(approved_in_ten: u32) -> impl Strategy<Value = Attempt> {
    let approved = approved_in_ten.clamp(1, 9);
    prop_oneof![
        approved => Just(Attempt::Approved),
        10 - approved => likely_soft_decline().prop_map(Attempt::Declined),
    ]
}

/// How the regular gateways answer, soft declines `soft_in_ten` times in ten on top of the mix.
pub fn gateway_behaviour(soft_in_ten: u32) -> impl Strategy<Value = GatewayBehaviour> {
    let soft = soft_in_ten.min(9);
    let mix = prop_oneof![
        2 => Just(GatewayBehaviour::Approve),
        5 => likely_soft_decline().prop_map(GatewayBehaviour::Decline),
        1 => Just(GatewayBehaviour::Unknown),
    ];
    prop_oneof![
        10 - soft => mix,
        soft.max(1) - 1 + u32::from(soft > 0) => Just(GatewayBehaviour::Decline(DeclineKind::SoftIssuerUnavailable)),
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
    ]
}

fn sale(
    counter: u32,
    recurring_in_ten: u32,
    approved_in_ten: u32,
) -> impl Strategy<Value = Transition> {
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
        attempt(approved_in_ten),
    )
        .prop_map(
            move |(product, gateway, profile, ip, subscription, result)| {
                Transition::PlaceSale(Sale {
                    order: order.clone(),
                    product,
                    gateway,
                    profile,
                    ip,
                    subscription,
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
    );
    proptest::collection::vec(one, 0..=max).prop_map(|sales| {
        sales
            .into_iter()
            .enumerate()
            .map(|(i, (product, gateway))| {
                Transition::PlaceSale(Sale {
                    order: format!("seed-{i}"),
                    product,
                    gateway,
                    profile: None,
                    ip: Ip::Present,
                    subscription: Some(format!("seed-s{i}")),
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
    arm(
        w.sale,
        sale(state.counter, w.recurring_sales_in_ten, w.approved_in_ten).boxed(),
    );
    let in_trial: Vec<String> = state
        .subs
        .iter()
        .filter(|(_, s)| s.status == SubscriptionStatus::Trial && !s.trial_completion)
        .map(|(id, _)| id.clone())
        .collect();
    if !in_trial.is_empty() {
        let order = format!("t{}", state.counter);
        arm(
            w.trial_completion,
            (
                proptest::sample::select(in_trial),
                first_attempt_gateway(),
                attempt(w.approved_in_ten),
            )
                .prop_map(
                    move |(subscription, gateway, result)| Transition::PlaceTrialCompletion {
                        order: order.clone(),
                        subscription,
                        gateway,
                        result,
                    },
                )
                .boxed(),
        );
    }
    let active: Vec<(String, &'static str)> = state
        .subs
        .iter()
        .filter(|(_, s)| s.status == SubscriptionStatus::Active)
        .map(|(id, s)| (id.clone(), s.billing))
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
                attempt(w.rebill_approved_in_ten),
            )
                .prop_map(move |((subscription, billing), gateway, result)| {
                    Transition::PlaceRebill {
                        order: order.clone(),
                        subscription,
                        gateway: gateway.unwrap_or(billing),
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
        gateway_behaviour(w.gateways_soft_in_ten)
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
            gateway_behaviour(w.gateways_soft_in_ten),
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
