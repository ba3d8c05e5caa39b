//! The reference model's state: per order, per subscription and the clock, and how each
//! transition changes it.

use std::collections::BTreeMap;

use salvage_domain::customer::CredentialKind;
use salvage_domain::order::{OrderStatus, SalvageState};
use salvage_domain::routing::NoCascadeReason;
use salvage_domain::subscription::SubscriptionStatus;
use salvage_domain::OrderType;

use super::vocabulary::{
    Attempt, Card, Decline, Delivery, FfAnswer, GatewayBehaviour, Ip, Product, Sale, Transition,
    GIVE_UP_AFTER_EXPIRY, MAX_ADVANCE, MINUTES_PER_DAY,
};
use crate::model::network::{self, Fact, Network, Verdict, What, Who};
use crate::model::rules::{self, PlanStep};

/// The most seconds the ticks of transitions add (each CRM-facing transition happens one second
/// after the previous one; see [`RefState::tick`]). Below a minute, so minutes stay exact.
pub const MAX_TICK: i64 = 59;

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
    /// The card it was paid with.
    pub card: Card,
    /// N7: the rules that blocked its attempts (cascade steps, reruns), in order.
    pub blocked: Vec<&'static str>,
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
    /// The seconds past `due`'s minute at which it is due (the tick it was scheduled at).
    pub due_tick: i64,
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
    /// The card of the order that created it.
    pub card: Card,
    /// N7: the rules that blocked its re-attempts and hand-overs, in order.
    pub blocked: Vec<&'static str>,
    /// N4: how many times a re-attempt was moved to the advised time.
    pub delayed: u32,
}

/// What the transition's own command should answer: accepted, or refused with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Refused(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// Minutes since [`crate::model::fixtures::t0`].
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
    /// Every transition happens one second after the previous one (up to [`MAX_TICK`]): on a
    /// real clock two CRM requests never share an instant, and the card-network rules read a
    /// card's history in time order. The seconds past `now`'s minute.
    pub tick: i64,
    /// The seconds past `now`'s minute of the instant being modelled: `tick`, or while timers
    /// run, the due time's.
    sec: i64,
    /// N1-N5: each card's history, in the order things happened.
    pub cards: BTreeMap<Card, Vec<Fact>>,
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
            tick: 0,
            sec: 0,
            cards: BTreeMap::new(),
        }
    }

    /// The instant being modelled, in seconds since the start.
    pub fn instant(&self) -> i64 {
        self.now * 60 + self.sec
    }

    /// Records a fact about `card`.
    fn fact(&mut self, card: Card, what: What, source: String) {
        let at = self.instant();
        self.cards
            .entry(card)
            .or_default()
            .push(Fact::new(at, what, source));
    }

    /// A decline of `card` on `gateway` as the network rules read it (N6: the category from the
    /// code when none is given).
    fn declined_fact(&mut self, card: Card, d: Decline, source: String) {
        let category = d
            .advice
            .visa_category()
            .unwrap_or_else(|| rules::visa_category(d.advice.response_code()));
        let mac = d
            .advice
            .mastercard_advice_code()
            .and_then(|m| m.trim().parse().ok());
        self.fact(card, What::Decline { category, mac }, source);
    }

    /// What the card network allows for an attempt of `who` on `card` now.
    fn network_verdict(&self, card: Card, who: Who) -> Verdict {
        let history = self.cards.get(&card).map(Vec::as_slice).unwrap_or(&[]);
        network::verdict(card.network(), history, self.instant(), who)
    }

    /// How many attempts `card` still has before its network's limit (N2: Visa reattempts, N5:
    /// Mastercard attempts, in the last 30 days); `None` for other networks.
    pub fn left_before_limit(&self, card: Card) -> Option<usize> {
        let history = self.cards.get(&card).map(Vec::as_slice).unwrap_or(&[]);
        let (reattempts, attempts) = network::counts(history, self.instant());
        match card.network() {
            Network::Visa => Some(network::VISA_REATTEMPTS.saturating_sub(reattempts)),
            Network::Mastercard => Some(network::MASTERCARD_ATTEMPTS.saturating_sub(attempts)),
            Network::Other => None,
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
            Transition::CrmDeclines { prefix, count, .. } => {
                (1..=*count).all(|i| !self.orders.contains_key(&format!("{prefix}-{i}")))
            }
            Transition::Advance { .. }
            | Transition::SetGateways(_)
            | Transition::SetFlexFactor(_)
            | Transition::Restart => true,
        }
    }

    /// Applies a transition.
    pub fn step(&mut self, t: &Transition) {
        self.last = Expect::Ok;
        if self.tick < MAX_TICK {
            self.tick += 1;
        }
        self.sec = self.tick;
        match t {
            Transition::PlaceSale(s) => {
                self.counter += 1;
                self.place_sale(s)
            }
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                card,
                result,
            } => {
                self.counter += 1;
                self.place_billing(
                    order,
                    OrderType::TrialCompletion,
                    subscription,
                    gateway,
                    *card,
                    *result,
                )
            }
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                card,
                result,
            } => {
                self.counter += 1;
                self.place_billing(
                    order,
                    OrderType::Recurring,
                    subscription,
                    gateway,
                    *card,
                    *result,
                )
            }
            Transition::CrmDeclines {
                prefix,
                card,
                count,
                decline,
            } => {
                self.counter += 1;
                for i in 1..=*count {
                    self.place_sale(&Sale {
                        order: format!("{prefix}-{i}"),
                        product: Product::Cleanser,
                        gateway: rules::STRIPE_EU,
                        profile: None,
                        ip: Ip::Present,
                        subscription: None,
                        card: *card,
                        result: Attempt::Declined(*decline),
                    });
                }
            }
            // Nothing the model knows is kept in memory only.
            Transition::Restart => {}
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
                s.card,
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
        card: Card,
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
                card,
            ),
        );
        match result {
            Attempt::Approved => self.paid_at_first_attempt(order, gateway),
            Attempt::Declined(k) => self.declined_at_first_attempt(order, gateway, k),
        }
    }

    fn paid_at_first_attempt(&mut self, id: &str, gateway: &'static str) {
        let Some(card) = self.orders.get(id).map(|o| o.card) else {
            return;
        };
        self.fact(card, What::Attempt(Who::Crm), format!("order {id}"));
        self.fact(card, What::Approval, format!("order {id}"));
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

    fn declined_at_first_attempt(&mut self, id: &str, gateway: &'static str, k: Decline) {
        let Some(card) = self.orders.get(id).map(|o| o.card) else {
            return;
        };
        self.fact(card, What::Attempt(Who::Crm), format!("order {id}"));
        self.declined_fact(card, k, format!("order {id}"));
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
        let card = o.card;
        let source = format!("order {id} cascade step {step} on {gateway}");
        // N1-N5, N9: a step the network forbids is recorded and the cascade moves on (N7); a
        // cascade cannot wait (N4).
        let who = if rules::is_flexfactor(gateway) {
            Who::HandOver
        } else {
            Who::CascadeStep
        };
        let blocked = match self.network_verdict(card, who) {
            Verdict::Allow => None,
            Verdict::Block(rule) => Some(rule),
            Verdict::Wait { .. } => Some("N4"),
        };
        if let Some(rule) = blocked {
            if let Some(o) = self.orders.get_mut(id) {
                o.blocked.push(rule);
            }
            self.cascade_step(id, step + 1);
            return;
        }
        self.fact(card, What::Attempt(who), source.clone());
        let Some(o) = self.orders.get_mut(id) else {
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
                self.fact(card, What::Approval, source);
                self.create_subscription(id, gateway, CredentialKind::Token);
            }
            GatewayBehaviour::Decline(k) => {
                let soft = k.soft_on(gateway, OrderType::NewSale);
                o.last_soft = Some(soft);
                if !soft {
                    o.status = OrderStatus::Declined;
                }
                self.declined_fact(card, k, source);
                if soft {
                    self.cascade_step(id, step + 1);
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
        let card = o.card;
        o.paid_by = Some(rules::FLEXFACTOR);
        o.status = OrderStatus::Complete;
        o.fulfilled = true;
        let declining = o.first_decline.unwrap_or(o.gateway);
        let (kind, sub) = (o.kind, o.subscription.clone());
        self.fact(card, What::Approval, format!("order {id} salvage"));
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
        // N1, N3 (N9): a rerun the network forbids is recorded, not sent (N7).
        let card = o.card;
        match self.network_verdict(card, Who::HandOver) {
            Verdict::Allow => {}
            Verdict::Block(rule) => {
                if let Some(o) = self.orders.get_mut(id) {
                    o.blocked.push(rule);
                }
                return;
            }
            Verdict::Wait { .. } => {
                if let Some(o) = self.orders.get_mut(id) {
                    o.blocked.push("N4");
                }
                return;
            }
        }
        self.fact(
            card,
            What::Attempt(Who::HandOver),
            format!("order {id} rerun"),
        );
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
        let card = o.card;
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
                card,
                blocked: Vec::new(),
                delayed: 0,
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
        let sec = self.sec;
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
                            due_tick: sec,
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
                .filter_map(|(id, m)| {
                    let r = m.recycle.as_ref()?;
                    Some(((r.due?, r.due_tick), id.clone()))
                })
                .filter(|((due, _), _)| *due <= to)
                .min();
            let next_stale = self.stale_timers.iter().copied().filter(|d| *d <= to).min();
            match (next_attempt, next_stale) {
                (Some(((due, _), _)), Some(stale)) if stale <= due => self.fire_stale(stale),
                (None, Some(stale)) => self.fire_stale(stale),
                (Some(((due, due_tick), sub)), _) => {
                    if due > self.now || (due == self.now && due_tick > self.sec) {
                        self.now = due;
                        self.sec = due_tick;
                    }
                    self.run_recycle_attempt(&sub);
                }
                (None, None) => break,
            }
        }
        self.now = to;
        self.sec = self.tick;
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
        let sec = self.sec;
        let gateways = self.gateways;
        let Some(m) = self.subs.get(sub) else {
            return;
        };
        let (billing, card) = (m.billing, m.card);
        let Some(r) = m.recycle.as_ref() else {
            return;
        };
        let n = r.next;
        let Some(step) = r.plan.get(n as usize - 1).copied() else {
            return;
        };
        let order = r.order.clone();
        let who = if step.flexfactor {
            Who::HandOver
        } else {
            Who::ReAttempt
        };
        // N1-N5, N9: the network may forbid the re-attempt (recycling moves on, N7) or move it
        // to the advised time (N4).
        let verdict = self.network_verdict(card, who);
        let Some(m) = self.subs.get_mut(sub) else {
            return;
        };
        let Some(r) = m.recycle.as_mut() else {
            return;
        };
        r.due = None;
        match verdict {
            Verdict::Allow => {}
            Verdict::Wait { until } => {
                m.delayed += 1;
                r.due = Some(until.div_euclid(60));
                r.due_tick = until.rem_euclid(60);
                return;
            }
            Verdict::Block(rule) => {
                m.blocked.push(rule);
                match r.plan.get(n as usize).copied() {
                    Some(next) if rule != "N1" => {
                        r.next = n + 1;
                        r.due = Some(now + next.wait_days * MINUTES_PER_DAY);
                        r.due_tick = sec;
                    }
                    // N1: no later attempt can be allowed; or none is left (Y4).
                    _ => recycle_failed(m, &order),
                }
                return;
            }
        }
        let source = format!("subscription {sub} re-attempt {n} of {order}");
        if step.flexfactor {
            // Y3: once.
            r.handed_over = true;
            self.fact(card, What::Attempt(Who::HandOver), source);
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
                self.fact(card, What::Attempt(Who::ReAttempt), source.clone());
                self.fact(card, What::Approval, source);
            }
            GatewayBehaviour::Decline(k) => {
                if !k.soft_on(billing, OrderType::Recurring) {
                    recycle_failed(m, &order);
                } else if let Some(next) = r.plan.get(n as usize).copied() {
                    r.next = n + 1;
                    r.due = Some(now + next.wait_days * MINUTES_PER_DAY);
                    r.due_tick = sec;
                    r.in_flight = None;
                } else {
                    recycle_failed(m, &order); // Y4
                }
                self.fact(card, What::Attempt(Who::ReAttempt), source.clone());
                self.declined_fact(card, k, source);
            }
            // Awaits reconciliation; never charged again.
            GatewayBehaviour::Unknown => self.fact(card, What::Attempt(Who::ReAttempt), source),
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
        card: Card,
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
            card,
            blocked: Vec::new(),
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
