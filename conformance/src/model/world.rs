//! The system under test: the domain's Order and Subscription aggregates and its process
//! manager, run in memory. Commands are decided with `decide` and their events applied with
//! `cqrs_es::Aggregate::apply`; every committed event goes through the process manager, whose
//! follow-ups run at once (commands, effects) or when the manual clock reaches them (timers).
//! Effects are answered by scripted regular gateways and a scripted FlexFactor.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use salvage_domain::customer::OrderItem;
use salvage_domain::order::{
    AttemptResult, FlexFactorResult, Order, OrderCommand, OrderEvent, PlaceOrder, ResultSource,
};
use salvage_domain::ports::{ChargePurpose, ChargeRequest, EvaluateAnswer, GatewayAnswer};
use salvage_domain::process_manager::{
    on_order_event, on_subscription_event, Effect, FollowUp, Notification,
};
use salvage_domain::subscription::{Subscription, SubscriptionCommand, SubscriptionEvent};
use salvage_domain::{
    Clock, DeclineFacts, DomainServices, FlexFactorOrderId, ManualClock, OrderId, OrderType,
    SubscriptionId,
};

use salvage_domain::customer::CardToken;
use salvage_domain::network::{self as domain_network, CardHistory, CardKey, CardLedger};

use super::fixtures::{card, customer, sample_setup, t0, usd};
use super::reference::{
    Attempt, Card, Decline, Delivery, FfAnswer, GatewayBehaviour, Ip, Product, Transition,
    MAX_ADVANCE, MAX_TICK,
};

/// A timer of the process manager.
#[derive(Debug, Clone)]
pub struct Timer {
    pub at: DateTime<Utc>,
    pub then: FollowUp,
}

/// A charge the scripted gateways answered.
#[derive(Debug, Clone)]
pub struct ChargeRecord {
    pub request: ChargeRequest,
    pub approved: bool,
    pub at: DateTime<Utc>,
}

/// An aggregate, as the ordered log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Order(OrderId),
    Subscription(SubscriptionId),
}

/// N8: every order's and subscription's card facts, by card key (fingerprint, else token), as the service's ledger reads
/// them from the views.
#[derive(Debug, Default)]
struct WorldLedger(BTreeMap<String, CardHistory>);

impl CardLedger for WorldLedger {
    fn history(&self, card: &CardKey) -> CardHistory {
        self.0.get(&card.token).cloned().unwrap_or_default()
    }
}

/// The in-memory runtime.
pub struct World {
    pub clock: Arc<ManualClock>,
    pub services: DomainServices,
    pub orders: BTreeMap<OrderId, Order>,
    pub order_history: BTreeMap<OrderId, Vec<OrderEvent>>,
    pub subs: BTreeMap<SubscriptionId, Subscription>,
    pub sub_history: BTreeMap<SubscriptionId, Vec<SubscriptionEvent>>,
    queue: VecDeque<FollowUp>,
    timers: BTreeMap<(DateTime<Utc>, u64), FollowUp>,
    timer_seq: u64,
    pub notifications: Vec<Notification>,
    pub charges: Vec<ChargeRecord>,
    /// `/evaluate` calls: order, attempt, when.
    pub submissions: Vec<(OrderId, u32, DateTime<Utc>)>,
    pub captures: Vec<(OrderId, u32)>,
    pub external_cancels: Vec<(OrderId, u32)>,
    /// Reconciliations that became due and ran: order, attempt, when (O8).
    pub reconciliations: Vec<(OrderId, u32, DateTime<Utc>)>,
    /// Follow-up and timer commands the aggregates refused.
    pub refusals: Vec<String>,
    /// Rule breaks seen while driving (an effect for an order already paid).
    pub violations: Vec<String>,
    /// The answer to the transition's own command: `Ok`, or the refusal's API code.
    pub last: Result<(), &'static str>,
    pub gateways: GatewayBehaviour,
    pub flexfactor: FfAnswer,
    deliveries: u64,
    /// The card each order was placed with (by the transition that placed it).
    pub order_cards: BTreeMap<OrderId, Card>,
    /// Every committed event, in commit order (the ordered log): the aggregate and the index in
    /// its history.
    pub log: Vec<(Source, usize)>,
    /// Seconds added by transitions so far (see `RefState::tick`).
    tick: i64,
}

impl World {
    pub fn new(gateways: GatewayBehaviour, flexfactor: FfAnswer) -> World {
        World::with_setup(sample_setup(), gateways, flexfactor)
    }

    /// A world on another setup (a variant of the sample: the model's rules are the sample's).
    pub fn with_setup(
        setup: salvage_domain::Setup,
        gateways: GatewayBehaviour,
        flexfactor: FfAnswer,
    ) -> World {
        let clock = Arc::new(ManualClock::new(t0()));
        World {
            services: DomainServices::new(Arc::new(setup), clock.clone()),
            clock,
            orders: BTreeMap::new(),
            order_history: BTreeMap::new(),
            subs: BTreeMap::new(),
            sub_history: BTreeMap::new(),
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            notifications: Vec::new(),
            charges: Vec::new(),
            submissions: Vec::new(),
            captures: Vec::new(),
            external_cancels: Vec::new(),
            reconciliations: Vec::new(),
            refusals: Vec::new(),
            violations: Vec::new(),
            last: Ok(()),
            gateways,
            flexfactor,
            deliveries: 0,
            order_cards: BTreeMap::new(),
            log: Vec::new(),
            tick: 0,
        }
    }

    /// The services a command is decided with: the card ledger holds every aggregate's card
    /// facts (N8), as the service reads them from the views.
    fn services(&self) -> DomainServices {
        let mut cards: BTreeMap<String, CardHistory> = BTreeMap::new();
        for (id, o) in &self.orders {
            if let Some(d) = &o.details {
                let source = domain_network::source("order", id.as_str());
                let h = cards.entry(d.card.ledger_key().to_string()).or_default();
                h.facts
                    .extend(o.card_facts.iter().map(|f| (source.clone(), f.clone())));
            }
        }
        for (id, s) in &self.subs {
            if let Some(c) = &s.card {
                let source = domain_network::source("subscription", id.as_str());
                let h = cards.entry(c.token.clone()).or_default();
                h.facts
                    .extend(s.card_facts.iter().map(|f| (source.clone(), f.clone())));
            }
        }
        self.services.with_cards(Arc::new(WorldLedger(cards)))
    }

    /// A restart: every aggregate is loaded again from its stored (JSON) events; the timers,
    /// being stored rows, survive.
    fn restart(&mut self) {
        for (id, history) in &self.order_history {
            let mut o = Order::default();
            for e in history {
                if let Ok(back) =
                    serde_json::to_string(e).and_then(|j| serde_json::from_str::<OrderEvent>(&j))
                {
                    o.apply(back);
                }
            }
            self.orders.insert(id.clone(), o);
        }
        for (id, history) in &self.sub_history {
            let mut s = Subscription::default();
            for e in history {
                if let Ok(back) = serde_json::to_string(e)
                    .and_then(|j| serde_json::from_str::<SubscriptionEvent>(&j))
                {
                    s.apply(back);
                }
            }
            self.subs.insert(id.clone(), s);
        }
    }

    /// The card of subscription `id`: its origin order's.
    pub fn subscription_card(&self, id: &SubscriptionId) -> Option<Card> {
        let origin = self.sub_history.get(id)?.iter().find_map(|e| match e {
            SubscriptionEvent::SubscriptionCreated {
                origin_order_id, ..
            } => Some(origin_order_id.clone()),
            _ => None,
        })?;
        self.order_cards.get(&origin).copied()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Minutes since the start.
    pub fn minutes(&self) -> i64 {
        (self.now() - t0()).num_minutes()
    }

    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.get(&OrderId::new(id))
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subs.get(&SubscriptionId::new(id))
    }

    /// Pending timers, in time order.
    pub fn timers(&self) -> impl Iterator<Item = (&DateTime<Utc>, &FollowUp)> {
        self.timers.iter().map(|((at, _), f)| (at, f))
    }

    /// Runs one transition of the model on the real aggregates.
    pub fn apply(&mut self, t: &Transition) {
        self.last = Ok(());
        // Each transition one second after the previous one (see `RefState::tick`).
        if self.tick < MAX_TICK {
            self.tick += 1;
            let to = self.now() + Duration::seconds(1);
            self.advance_to(to);
        }
        let result = match t {
            Transition::PlaceSale(s) => self.place_sale(s),
            Transition::PlaceTrialCompletion {
                order,
                subscription,
                gateway,
                card,
                result,
            } => {
                let cmd = place(
                    order,
                    OrderType::TrialCompletion,
                    Product::Trial,
                    gateway,
                    None,
                    Ip::Present,
                    Some(subscription),
                    *card,
                    *result,
                );
                self.order_cards.insert(OrderId::new(order.as_str()), *card);
                self.run_order(order, OrderCommand::Place(Box::new(cmd)))
            }
            Transition::PlaceRebill {
                order,
                subscription,
                gateway,
                card,
                result,
            } => {
                let cmd = place(
                    order,
                    OrderType::Recurring,
                    Product::Monthly,
                    gateway,
                    None,
                    Ip::Missing,
                    Some(subscription),
                    *card,
                    *result,
                );
                self.order_cards.insert(OrderId::new(order.as_str()), *card);
                self.run_order(order, OrderCommand::Place(Box::new(cmd)))
            }
            Transition::CrmDeclines {
                prefix,
                card,
                count,
                decline,
            } => {
                let mut r = Ok(());
                for i in 1..=*count {
                    let sale = super::reference::Sale {
                        order: format!("{prefix}-{i}"),
                        product: Product::Cleanser,
                        gateway: super::rules::STRIPE_EU,
                        profile: None,
                        ip: Ip::Present,
                        subscription: None,
                        card: *card,
                        result: Attempt::Declined(*decline),
                    };
                    r = r.and(self.place_sale(&sale));
                }
                r
            }
            Transition::Restart => {
                self.restart();
                Ok(())
            }
            Transition::Rerun { order, gateway } => self.run_order(
                order,
                OrderCommand::RequestRerun {
                    gateway: (*gateway).into(),
                },
            ),
            Transition::Deliver {
                order,
                delivery,
                poll,
                resent,
            } => {
                self.deliveries += 1;
                let source = if *poll {
                    ResultSource::StatusPoll
                } else {
                    ResultSource::Webhook {
                        delivery_id: format!("d{}", self.deliveries),
                        resent: *resent,
                    }
                };
                self.run_order(
                    order,
                    OrderCommand::ApplyFlexFactorResult {
                        result: result_of(*delivery),
                        source,
                    },
                )
            }
            Transition::EvaluateAnswerArrives {
                order,
                stale,
                answer,
            } => {
                let current = self
                    .order(order)
                    .and_then(|o| o.salvage.as_ref())
                    .map(|s| s.attempt)
                    .unwrap_or(1);
                let attempt = if *stale { current + 1 } else { current };
                let answer = evaluate_answer(*answer, order, attempt);
                self.run_order(
                    order,
                    OrderCommand::RecordFlexFactorAnswer { attempt, answer },
                )
            }
            Transition::Advance { minutes } => {
                let to = self.now() + Duration::minutes((*minutes).clamp(0, MAX_ADVANCE));
                self.advance_to(to);
                Ok(())
            }
            Transition::SetGateways(b) => {
                self.gateways = *b;
                Ok(())
            }
            Transition::SetFlexFactor(a) => {
                self.flexfactor = *a;
                Ok(())
            }
            Transition::Cancel { subscription } => {
                let id = SubscriptionId::new(subscription.as_str());
                let r = self
                    .exec_sub(
                        &id,
                        SubscriptionCommand::Cancel {
                            reason: "customer asked".into(),
                        },
                    )
                    .map_err(|e| e.code());
                self.drain();
                r
            }
        };
        self.last = result;
    }

    fn place_sale(&mut self, s: &super::reference::Sale) -> Result<(), &'static str> {
        let cmd = place(
            &s.order,
            OrderType::NewSale,
            s.product,
            s.gateway,
            s.profile,
            s.ip,
            s.subscription.as_deref(),
            s.card,
            s.result,
        );
        self.order_cards
            .insert(OrderId::new(s.order.as_str()), s.card);
        self.run_order(&s.order, OrderCommand::Place(Box::new(cmd)))
    }

    /// Runs a command from outside (the CRM, FlexFactor) and everything that follows from it.
    pub fn run_order(&mut self, id: &str, cmd: OrderCommand) -> Result<(), &'static str> {
        let r = self
            .exec_order(&OrderId::new(id), cmd)
            .map_err(|e| e.code());
        self.drain();
        r
    }

    fn exec_order(
        &mut self,
        id: &OrderId,
        cmd: OrderCommand,
    ) -> Result<(), salvage_domain::order::OrderError> {
        let mut order = self.orders.get(id).cloned().unwrap_or_default();
        let events = order.decide(cmd, &self.services())?;
        if events.is_empty() {
            return Ok(());
        }
        let history = self.order_history.entry(id.clone()).or_default();
        for e in events {
            order.apply(e.clone());
            history.push(e.clone());
            self.log
                .push((Source::Order(id.clone()), history.len() - 1));
            let follow = on_order_event(&self.services.setup, id, history.len(), &e, &order);
            self.queue.extend(follow);
        }
        self.orders.insert(id.clone(), order);
        Ok(())
    }

    fn exec_sub(
        &mut self,
        id: &SubscriptionId,
        cmd: SubscriptionCommand,
    ) -> Result<(), salvage_domain::subscription::SubscriptionError> {
        let mut sub = self.subs.get(id).cloned().unwrap_or_default();
        let events = sub.decide(cmd, &self.services())?;
        if events.is_empty() {
            return Ok(());
        }
        let history = self.sub_history.entry(id.clone()).or_default();
        for e in events {
            sub.apply(e.clone());
            history.push(e.clone());
            self.log
                .push((Source::Subscription(id.clone()), history.len() - 1));
            let follow = on_subscription_event(id, history.len(), &e, &sub);
            self.queue.extend(follow);
        }
        self.subs.insert(id.clone(), sub);
        Ok(())
    }

    fn drain(&mut self) {
        // A bound against a runaway loop between aggregates: far above any real chain.
        let mut budget = 10_000u32;
        while let Some(f) = self.queue.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.violations
                    .push("the process manager did not settle within 10000 follow-ups".into());
                self.queue.clear();
                return;
            }
            self.follow(f);
        }
    }

    fn follow(&mut self, f: FollowUp) {
        match f {
            FollowUp::Order { order_id, command } => {
                let what = format!("{command:?}");
                if let Err(e) = self.exec_order(&order_id, command) {
                    self.refusals
                        .push(format!("order {order_id} refused {what}: {e}"));
                }
            }
            FollowUp::Subscription {
                subscription_id,
                command,
            } => {
                let what = format!("{command:?}");
                if let Err(e) = self.exec_sub(&subscription_id, command) {
                    self.refusals.push(format!(
                        "subscription {subscription_id} refused {what}: {e}"
                    ));
                }
            }
            FollowUp::At { at, then } => {
                self.timer_seq += 1;
                self.timers.insert((at, self.timer_seq), *then);
            }
            FollowUp::Effect(e) => self.effect(e),
        }
    }

    fn paid(&self, order: &OrderId) -> bool {
        self.orders.get(order).is_some_and(Order::is_paid)
    }

    fn effect(&mut self, effect: Effect) {
        let now = self.now();
        match effect {
            Effect::SubmitToFlexFactor { order_id, attempt } => {
                if self.paid(&order_id) {
                    self.violations.push(format!(
                        "order {order_id} is paid, yet submission {attempt} goes to FlexFactor"
                    ));
                }
                self.submissions.push((order_id.clone(), attempt, now));
                let answer = evaluate_answer(self.flexfactor, order_id.as_str(), attempt);
                let what = format!("{answer:?}");
                if let Err(e) = self.exec_order(
                    &order_id,
                    OrderCommand::RecordFlexFactorAnswer { attempt, answer },
                ) {
                    self.refusals.push(format!(
                        "order {order_id} refused the answer {what} to submission {attempt}: {e}"
                    ));
                }
            }
            Effect::Charge(request) => {
                if self.paid(&request.order_id) {
                    self.violations.push(format!(
                        "order {} is paid, yet it is charged again ({:?})",
                        request.order_id, request.purpose
                    ));
                }
                let answer = match self.gateways {
                    GatewayBehaviour::Approve => GatewayAnswer::Approved {
                        transaction_id: Some(format!("tx-{}", self.charges.len() + 1)),
                    },
                    GatewayBehaviour::Decline(k) => {
                        GatewayAnswer::Declined(decline_facts(request.gateway.as_str(), k))
                    }
                    GatewayBehaviour::Unknown => GatewayAnswer::Unknown {
                        detail: "read timeout".into(),
                    },
                };
                self.charges.push(ChargeRecord {
                    request: request.clone(),
                    approved: matches!(answer, GatewayAnswer::Approved { .. }),
                    at: now,
                });
                let what = format!("{answer:?}");
                let refused = match request.purpose {
                    ChargePurpose::Cascade { step } => self
                        .exec_order(
                            &request.order_id,
                            OrderCommand::RecordCascadeStep { step, answer },
                        )
                        .err()
                        .map(|e| e.to_string()),
                    ChargePurpose::Recycle { attempt } => match &request.subscription_id {
                        Some(sub) => self
                            .exec_sub(
                                sub,
                                SubscriptionCommand::RecordRecycleAttemptResult {
                                    order_id: request.order_id.clone(),
                                    attempt,
                                    answer,
                                },
                            )
                            .err()
                            .map(|e| e.to_string()),
                        None => Some("a recycle charge without a subscription".into()),
                    },
                    ChargePurpose::Rebill { .. } => None,
                };
                if let Some(e) = refused {
                    self.refusals.push(format!(
                        "the answer {what} to a {:?} charge of {} was refused: {e}",
                        request.purpose, request.order_id
                    ));
                }
            }
            Effect::Capture { order_id, attempt } => self.captures.push((order_id, attempt)),
            Effect::ExternalCancel {
                order_id, attempt, ..
            } => self.external_cancels.push((order_id, attempt)),
            Effect::ReconcileSalvage { order_id, attempt } => {
                self.reconciliations.push((order_id, attempt, now))
            }
            Effect::NotifyCrm(n) => self.notifications.push(n),
            // The CRM bills on its own: the model reports rebills as transitions.
            Effect::BillSubscription { .. } => {}
        }
    }

    /// Moves the clock to `to`, running every timer due on the way, in time order.
    pub fn advance_to(&mut self, to: DateTime<Utc>) {
        while let Some((&(at, n), _)) = self.timers.iter().next() {
            if at > to {
                break;
            }
            let Some(f) = self.timers.remove(&(at, n)) else {
                break;
            };
            if at > self.now() {
                self.clock.set(at);
            }
            self.follow(f);
            self.drain();
        }
        if to > self.now() {
            self.clock.set(to);
        }
    }
}

/// The facts of decline `d` on `gateway` (D1), with its network advice.
pub fn decline_facts(gateway: &str, d: Decline) -> DeclineFacts {
    DeclineFacts {
        gateway: gateway.into(),
        response_code: d.advice.response_code().into(),
        response_message: d.kind.message().into(),
        processor_verdict: d.kind.verdict(),
        visa_category: d
            .advice
            .visa_category()
            .map(salvage_domain::decline::VisaCategory),
        mastercard_advice_code: d
            .advice
            .mastercard_advice_code()
            .map(|m| salvage_domain::decline::MastercardAdviceCode(m.into())),
    }
}

/// The domain's form of a model card.
pub fn card_token(c: Card) -> CardToken {
    CardToken {
        token: c.token().into(),
        bin: c.bin().into(),
        last4: c.last4().into(),
        ..card()
    }
}

/// FlexFactor's `/evaluate` answer of kind `a` for submission `attempt` of `order`.
pub fn evaluate_answer(a: FfAnswer, order: &str, attempt: u32) -> EvaluateAnswer {
    let id = Some(FlexFactorOrderId::new(format!("ff-{order}-{attempt}")));
    match a {
        FfAnswer::Approved => EvaluateAnswer::Approved {
            flexfactor_order_id: id,
            confirmation_id: Some(format!("C-{order}-{attempt}")),
        },
        FfAnswer::Declined => EvaluateAnswer::Declined {
            flexfactor_order_id: id,
        },
        FfAnswer::Challenge => EvaluateAnswer::Challenge {
            flexfactor_order_id: id,
        },
        FfAnswer::Submitted => EvaluateAnswer::Submitted {
            flexfactor_order_id: id,
        },
        FfAnswer::CaptureRequired => EvaluateAnswer::CaptureRequired {
            flexfactor_order_id: id,
        },
        FfAnswer::Rejected => EvaluateAnswer::Rejected {
            reason: "400: invalid request".into(),
        },
        FfAnswer::Unknown => EvaluateAnswer::Unknown {
            detail: "timed out after sending".into(),
        },
    }
}

/// The domain's form of a delivery.
pub fn result_of(d: Delivery) -> FlexFactorResult {
    match d {
        Delivery::Completed => FlexFactorResult::Completed {
            flexfactor_order_id: None,
            confirmation_id: Some("CONF".into()),
        },
        Delivery::Declined => FlexFactorResult::Declined,
        Delivery::Expired => FlexFactorResult::Expired,
        Delivery::Cancelled => FlexFactorResult::Cancelled,
        Delivery::CaptureRequired => FlexFactorResult::CaptureRequired,
        Delivery::Refunded => FlexFactorResult::Refunded,
        Delivery::Chargeback => FlexFactorResult::Chargeback,
        Delivery::StillPending => FlexFactorResult::StillPending,
    }
}

/// The CRM's report of an order and its first attempt.
#[allow(clippy::too_many_arguments)]
pub fn place(
    order: &str,
    order_type: OrderType,
    product: Product,
    gateway: &str,
    profile: Option<&str>,
    ip: Ip,
    subscription: Option<&str>,
    card: Card,
    result: Attempt,
) -> PlaceOrder {
    PlaceOrder {
        order_id: order.into(),
        order_type,
        campaign_id: product.campaign().into(),
        subscription_id: subscription.map(Into::into),
        ip_address: match ip {
            Ip::Present => Some("203.0.113.7".into()),
            Ip::Missing => None,
            Ip::Blank => Some("  ".into()),
        },
        amount: usd(product.price_minor()),
        customer: customer(),
        card: card_token(card),
        items: vec![OrderItem {
            product_id: product.id().into(),
            quantity: 1,
            price_minor: product.price_minor(),
        }],
        gateway: gateway.into(),
        gateway_profile: profile.map(Into::into),
        result: match result {
            Attempt::Approved => AttemptResult::Approved,
            Attempt::Declined(k) => AttemptResult::Declined(decline_facts(gateway, k)),
        },
    }
}
